// End to end: sockets spread over several replicas (a small connection limit), a live-tail
// subscriber on one of them, two tenants; then the materialized views. Real `ws` clients against
// the bundled Worker under Miniflare.
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../helpers/eventually";
// @ts-expect-error plain .mjs helper without types
import { buildWorker, startWorker } from "../helpers/miniflare.mjs";
import { type Frame, WsClient } from "../helpers/ws-client";

const KEYS = {
  "acme-admin": { tenant: "acme", scope: "admin" },
  "other-admin": { tenant: "other", scope: "admin" },
};
const VARS = { DUCKTAIL_KEYS: JSON.stringify(KEYS), REPLICA_CONNECTION_LIMIT: "2" };
const TYPES = ["pageview", "click", "error", "request"];
const PATHS = ["/", "/pricing", "/docs", "/blog"];

interface Sent {
  id: string;
  type: string;
  source: string;
  userId: string;
  data: Record<string, unknown>;
}

/** Event `i` of a producer; every field the filter and the views look at varies with `i`. */
function event(tenant: string, producer: number, i: number): Sent {
  const type = TYPES[(i + producer) % TYPES.length] as string;
  const data: Record<string, unknown> =
    type === "error"
      ? { name: "TypeError", message: `bad ${i % 3}`, stack: "TypeError\n    at run (app.js:10:5)" }
      : type === "request"
        ? { route: `/api/${i % 2}`, duration: 5 + ((i * 37) % 400) }
        : { path: PATHS[i % PATHS.length], status: (i * 7) % 600 };
  return {
    id: `${tenant}-${producer}-${i}`,
    type,
    source: producer % 2 ? "web-app" : "api",
    userId: `u${i % 11}`,
    data,
  };
}

describe("gossip end to end: live tail and materialized views across replicas", () => {
  let bundle: string;
  let mf: Miniflare;
  let url: string;
  const sockets: WsClient[] = [];
  const open = async (key: string) => {
    const ws = await WsClient.open(url, `?key=${key}`);
    sockets.push(ws);
    return ws;
  };

  beforeAll(async () => {
    bundle = buildWorker();
    ({ mf, url } = await startWorker(bundle, { vars: VARS }));
  });

  afterAll(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await mf?.dispose();
  });

  it("tails exactly the matching events from every replica and merges views equal to a brute-force count", async () => {
    const subscriber = await open("acme-admin"); // shard 0
    const producers = [];
    for (let i = 0; i < 7; i++) producers.push(await open("acme-admin")); // with the subscriber: shards 0..3
    const stranger = await open("other-admin");

    const filter = {
      type: ["page*", "click"],
      source: "web-*",
      where: [{ path: "data.status", op: "gte", value: 100 }],
    };
    const subscribed = await subscriber.request({ type: "subscribe", filter });
    expect(subscribed).toMatchObject({ type: "subscribed", replicas: 4 });
    const subscription = subscribed.subscription as string;

    // Stats name the replica of each socket: the producers must cover at least 4 replicas.
    const replicas = new Set<string>();
    for (const p of producers) replicas.add((await p.request({ type: "stats" })).replica as string);
    expect(replicas.size).toBeGreaterThanOrEqual(4);

    const sent: Sent[] = [];
    await Promise.all(
      producers.map(async (p, n) => {
        for (let b = 0; b < 5; b++) {
          const batch = Array.from({ length: 20 }, (_, k) => event("acme", n, b * 20 + k));
          sent.push(...batch);
          expect(await p.events(batch, "confirmed")).toMatchObject({ stored: 20 });
        }
      }),
    );
    for (let b = 0; b < 5; b++) {
      await stranger.events(Array.from({ length: 20 }, (_, k) => event("other", 0, b * 20 + k)));
    }

    const expected = sent
      .filter((e) => (e.type === "pageview" || e.type === "click") && e.source === "web-app")
      .filter((e) => typeof e.data.status === "number" && e.data.status >= 100)
      .map((e) => e.id)
      .sort();
    expect(expected.length).toBeGreaterThan(50);
    const got: Frame[] = [];
    while (got.length < expected.length) {
      const f = await subscriber.waitFor((x) => x.type === "tail", 10_000, "tail frame");
      got.push(...(f.events as Frame[]));
      subscriber.send({ type: "tailAck", subscription, seq: f.seq });
    }
    expect(got.map((e) => e.id).sort()).toEqual(expected);
    expect(got.every((e) => String(e.id).startsWith("acme-"))).toBe(true);
    await expect(subscriber.waitFor((x) => x.type === "tail", 300)).rejects.toThrow(/no frame/);
    expect(new Set(got.map((e) => e.replica)).size).toBeGreaterThanOrEqual(3);

    // Views: merged over all replicas by the tenant's view aggregator, equal to counting what was sent.
    const mv = async (name: string) =>
      (await (await fetch(`${url}/buffer/mv/${name}?window=1h&limit=1000&key=acme-admin`)).json()) as {
        replicas: { asked: number; missing: unknown[] };
        rows: Record<string, unknown>[];
      };
    const pageviews = sent.filter((e) => e.type === "pageview");
    // Replicas push within about a second of ingest.
    const pv = await eventually(async () => {
      const answer = await mv("pageviews");
      return answer.rows.reduce((n, r) => n + (r.views as number), 0) === pageviews.length ? answer : null;
    });
    expect(pv.replicas.missing).toEqual([]);
    expect(pv.replicas.asked).toBeGreaterThanOrEqual(4);
    for (const path of PATHS) {
      const mine = pageviews.filter((e) => e.data.path === path);
      const row = pv.rows.find((r) => r.path === path);
      expect(row, path).toMatchObject({ views: mine.length, uniques: new Set(mine.map((e) => e.userId)).size });
    }
    const errors = await mv("errors");
    const byMessage = new Map<string, number>();
    for (const e of sent.filter((x) => x.type === "error")) {
      byMessage.set(e.data.message as string, (byMessage.get(e.data.message as string) ?? 0) + 1);
    }
    expect(Object.fromEntries(errors.rows.map((r) => [r.message, r.count]))).toEqual(Object.fromEntries(byMessage));
    const latency = await mv("latency");
    for (const route of ["/api/0", "/api/1"]) {
      const mine = sent.filter((e) => e.type === "request" && e.data.route === route);
      const durations = mine.map((e) => e.data.duration as number).sort((a, b) => a - b);
      const row = latency.rows.find((r) => r.route === route);
      expect(row, route).toMatchObject({ count: mine.length, min: durations[0], max: durations.at(-1) });
      const p50 = durations[Math.ceil(0.5 * durations.length) - 1] as number;
      expect(Math.abs((row?.p50 as number) - p50) / p50).toBeLessThanOrEqual(0.01);
    }
    // The other tenant's views hold only its own events.
    const theirs = Array.from({ length: 100 }, (_, i) => event("other", 0, i)).filter((e) => e.type === "pageview");
    await eventually(async () => {
      const answer = (await (await fetch(`${url}/buffer/mv/pageviews?window=1h&key=other-admin`)).json()) as {
        rows: { views: number }[];
      };
      return answer.rows.reduce((a, r) => a + r.views, 0) === theirs.length;
    });
  });
});
