// End to end: `ducktail/client` (sdk/) against the bundled Worker under Miniflare, with keys:
// acks in every storage mode, per-event rejections, batching, reconnects (a real scale-down and an
// abrupt drop), HTTP fallback, the bounded offline queue and the flow-controlled live tail.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  type ClientOptions,
  DuckTailClient,
  type DuckTailClientError,
  type Importance,
  type StorageMode,
  type WebSocketConstructor,
} from "../../sdk/index";
import { duplicates, lakeRows } from "../helpers/lake";
// @ts-expect-error plain .mjs helper without types
import { buildWorker, startWorker } from "../helpers/miniflare.mjs";
import { TcpProxy } from "../helpers/tcp-proxy";

const MODES: StorageMode[] = ["fire-and-forget", "buffered", "confirmed", "durable"];
const KEYS = {
  wk: { tenant: "acme", scope: "write" },
  rk: { tenant: "acme", scope: "read" },
  ak: { tenant: "acme", scope: "admin" },
};

// A broken ack or re-send shows as a promise that never settles: fail in seconds, not minutes.
describe("ducktail/client end to end", { timeout: 20_000 }, () => {
  let bundle: string;
  let persist: string;
  let mf: Miniflare;
  let url: string;
  const clients: DuckTailClient[] = [];
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    bundle = buildWorker();
    persist = mkdtempSync(join(tmpdir(), "ducktail-client-"));
    ({ mf, url } = await startWorker(bundle, { persistDir: persist, vars: { DUCKTAIL_KEYS: JSON.stringify(KEYS) } }));
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(0)));
    await Promise.all(proxies.map((p) => p.down()));
    await mf?.dispose();
    for (const dir of [bundle, persist]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function client(options: Partial<ClientOptions> = {}): DuckTailClient {
    const c = new DuckTailClient({ url, key: "wk", batchInterval: 5, ...options });
    clients.push(c);
    return c;
  }

  async function admin(path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${url}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: "Bearer ak" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    expect(res.status, `${path} answered`).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  }

  /** Flushes every shard, then the ids of the lake's rows (each once per time it was stored). */
  async function lakeIds(prefix: string, flush = true): Promise<string[]> {
    if (flush) await admin("/flush", {});
    const { rows } = await lakeRows(mf);
    return rows.map((r) => r.id).filter((id) => id.startsWith(prefix));
  }

  /** One number summed over every shard's stats. */
  async function shardTotal(counter: "requests" | "subscriptions"): Promise<number> {
    const stats = (await admin("/buffer/stats")) as { shards: { stats: Record<string, number> | null }[] };
    return stats.shards.reduce((n, s) => n + (s.stats?.[counter] ?? 0), 0);
  }

  async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("resolves track() with the event id once acked, in every storage mode", async () => {
    for (const storageMode of MODES) {
      const c = client({ storageMode, source: "e2e" });
      const acks = await Promise.all([0, 1, 2].map((i) => c.track("mode", { i }, { id: `mode-${storageMode}-${i}` })));
      expect(acks).toEqual([0, 1, 2].map((i) => ({ id: `mode-${storageMode}-${i}` })));
      expect(c.connectedVia).toBe("websocket");
    }
    // A durable ack means "inside a Parquet object in R2": no flush needed to see those.
    const durable = [0, 1, 2].map((i) => `mode-durable-${i}`);
    expect(await lakeIds("mode-", false)).toEqual(expect.arrayContaining(durable));
    await admin("/flush", {});
    const rows = (await lakeRows(mf)).rows.filter((r) => r.id.startsWith("mode-"));
    const ids = rows.map((r) => r.id);
    expect(duplicates(ids)).toEqual([]);
    expect(ids.sort()).toEqual(MODES.flatMap((m) => [0, 1, 2].map((i) => `mode-${m}-${i}`)).sort());
    expect(new Set(rows.map((r) => r.source))).toEqual(new Set(["e2e"]));
  });

  it("rejects only the event the server refused, with its code, while its batch-mates resolve", async () => {
    const errors: DuckTailClientError[] = [];
    const c = client({ storageMode: "confirmed", batchInterval: 60_000, onError: (e) => errors.push(e) });
    await c.connect();
    const before = await shardTotal("requests");
    const first = c.track("mate", {}, { id: "mate-1" });
    const bad = c.track("mate", {}, { id: "mate-urgent", importance: "urgent" as Importance });
    const last = c.track("mate", {}, { id: "mate-2" });
    await c.flush();
    await expect(first).resolves.toEqual({ id: "mate-1" });
    await expect(last).resolves.toEqual({ id: "mate-2" });
    await expect(bad).rejects.toMatchObject({
      name: "DuckTailClientError",
      code: "invalid_field",
      eventId: "mate-urgent",
    });
    expect(errors.map((e) => [e.code, e.eventId])).toEqual([["invalid_field", "mate-urgent"]]);
    expect(await shardTotal("requests"), "the three went as one frame").toBe(before + 1);
  });

  it("sends identify() and page() as conventional events, and later events carry the identified user", async () => {
    const c = client({ source: "identity" });
    await c.identify("u-42", { plan: "pro" });
    await c.page("/pricing", { ref: "ad" });
    const at = new Date("2025-01-02T03:04:05.678Z");
    await c.track(
      "click",
      { button: "buy" },
      { importance: "high", sessionId: "s-1", anonymousId: "a-1", timestamp: at },
    );
    const res = await fetch(`${url}/events?source=identity`, { headers: { authorization: "Bearer rk" } });
    const { events } = (await res.json()) as { events: Record<string, unknown>[] };
    const byType = Object.fromEntries(events.map((e) => [e.type, e]));
    expect(byType.identify).toMatchObject({ userId: "u-42", data: { plan: "pro" } });
    expect(byType.pageview).toMatchObject({ userId: "u-42", data: { path: "/pricing", ref: "ad" } });
    expect(byType.click).toMatchObject({
      userId: "u-42",
      importance: "high",
      sessionId: "s-1",
      anonymousId: "a-1",
      ts: at.getTime(),
      data: { button: "buy" },
    });
  });

  it("rejects every event of a frame the server answered with an error frame", async () => {
    const reader = client({ key: "rk" }); // a read key may not ingest
    const results = await Promise.allSettled([reader.track("nope"), reader.track("nope")]);
    expect(results.map((r) => r.status === "rejected" && (r.reason as DuckTailClientError).code)).toEqual([
      "forbidden",
      "forbidden",
    ]);
  });

  it("sends a batch as soon as it holds maxBatchSize events, the rest after batchInterval or flush()", async () => {
    const c = client({ maxBatchSize: 10, batchInterval: 60_000 });
    await c.connect();
    const before = await shardTotal("requests");
    const acks = Array.from({ length: 25 }, (_, i) => c.track("split", { i }));
    await Promise.all(acks.slice(0, 20)); // two full frames went without waiting a minute
    expect(await shardTotal("requests")).toBe(before + 2);
    await c.flush();
    await Promise.all(acks);
    expect(await shardTotal("requests")).toBe(before + 3);

    const timed = client({ batchInterval: 50 });
    await expect(timed.track("timed")).resolves.toEqual({ id: expect.any(String) });
  });

  it("reconnects when its shard drains on scale-down: tracks during and after resolve, none is lost", async () => {
    const holder = client(); // keeps a socket on shard 0 so the next one lands elsewhere
    await holder.connect();
    await admin("/buffer/scale", { tier: 2 });
    const errors: DuckTailClientError[] = [];
    const c = client({ storageMode: "confirmed", onError: (e) => errors.push(e) });
    await c.connect();
    const ids: string[] = [];
    const acks: Promise<unknown>[] = [];
    const track = (phase: string) => {
      const id = `scale-${phase}-${ids.length}`;
      ids.push(id);
      acks.push(c.track("scale", {}, { id }));
    };
    for (let i = 0; i < 10; i++) track("before");
    await Promise.all(acks);

    let stop = false;
    const during = (async () => {
      while (!stop) {
        track("during");
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    await admin("/buffer/scale", { tier: 1 });
    await until(() => c.reconnects > 0, "the client to reconnect");
    stop = true;
    await during;
    for (let i = 0; i < 10; i++) track("after");
    await Promise.all(acks);
    expect(errors).toEqual([]);

    await admin("/flush", {});
    const { rows } = await lakeRows(mf);
    const copies = new Map<string, string[]>(); // id → the replica of each stored copy
    for (const r of rows) if (r.id.startsWith("scale-")) copies.set(r.id, [...(copies.get(r.id) ?? []), r.replica]);
    expect([...copies.keys()].sort(), "every acked event is stored").toEqual([...ids].sort());
    const [drained, ...others] = new Set(ids.filter((id) => id.includes("-before-")).flatMap((id) => copies.get(id)!));
    expect(others).toEqual([]);
    expect(drained, "it started on a shard that drained").not.toBe("acme-0");
    for (const id of ids.filter((id) => id.includes("-after-"))) expect(copies.get(id)).toEqual(["acme-0"]);
    // The draining shard acks every frame it stored before it closes the socket, so nothing is
    // re-sent and every confirmed event is stored exactly once.
    for (const [id, replicas] of copies) expect(replicas, id).toHaveLength(1);
  });

  it("re-sends a frame whose ack was lost in a dropped connection, with the same event ids", async () => {
    const proxy = await TcpProxy.create(Number(new URL(url).port));
    proxies.push(proxy);
    await proxy.up();
    const c = client({ url: `http://127.0.0.1:${proxy.port}`, storageMode: "confirmed" });
    await c.connect();
    proxy.muted = true; // the Worker stores the frame; its ack goes nowhere
    const acks = [0, 1, 2].map((i) => c.track("lost-ack", {}, { id: `lost-ack-${i}` }));
    await until(async () => {
      const res = await fetch(`${url}/events?type=lost-ack`, { headers: { authorization: "Bearer rk" } });
      return ((await res.json()) as { count: number }).count === 3;
    }, "the Worker to store the frame");
    proxy.muted = false;
    proxy.cut();
    expect(await Promise.all(acks)).toEqual([0, 1, 2].map((i) => ({ id: `lost-ack-${i}` })));
    expect(c.resent).toBe(1);
    // At least once: the re-sent frame carried the same ids, so each is in the lake twice.
    const ids = await lakeIds("lost-ack-");
    expect(ids.sort()).toEqual(["lost-ack-0", "lost-ack-0", "lost-ack-1", "lost-ack-1", "lost-ack-2", "lost-ack-2"]);
  });

  it("holds at most maxQueue events while offline, refusing the overflow, and sends them once connected", async () => {
    const proxy = await TcpProxy.create(Number(new URL(url).port));
    proxies.push(proxy);
    const errors: DuckTailClientError[] = [];
    const c = client({
      url: `http://127.0.0.1:${proxy.port}`,
      transport: "websocket",
      storageMode: "confirmed",
      maxQueue: 3,
      onError: (e) => errors.push(e),
    });
    const queued = [0, 1, 2].map((i) => c.track("offline", {}, { id: `offline-${i}` }));
    const overflow = [3, 4].map((i) => c.track("offline", {}, { id: `offline-${i}` }));
    for (const [i, p] of overflow.entries()) {
      await expect(p).rejects.toMatchObject({ code: "queue_full", eventId: `offline-${i + 3}` });
    }
    expect(errors.map((e) => e.code)).toEqual(["queue_full", "queue_full"]);
    await proxy.up(); // the network comes back: the client's next reconnect gets through
    expect(await Promise.all(queued)).toEqual([0, 1, 2].map((i) => ({ id: `offline-${i}` })));
    expect((await lakeIds("offline-")).sort()).toEqual(["offline-0", "offline-1", "offline-2"]);
  });

  it("close() refuses what the server never acked, and anything tracked afterwards", async () => {
    const proxy = await TcpProxy.create(Number(new URL(url).port)); // never up: no server there
    const errors: DuckTailClientError[] = [];
    const c = client({ url: `http://127.0.0.1:${proxy.port}`, transport: "websocket", onError: (e) => errors.push(e) });
    const never = c.track("never", {}, { id: "never-0" });
    await c.close(50);
    await expect(never).rejects.toMatchObject({ code: "closed", eventId: "never-0" });
    await expect(c.track("late", {}, { id: "late-0" })).rejects.toMatchObject({ code: "closed", eventId: "late-0" });
    // Besides the refusals, at most the one report that the server cannot be reached.
    const refusals = errors.filter((e) => e.code !== "unreachable");
    expect(refusals.map((e) => [e.code, e.eventId])).toEqual([
      ["closed", "never-0"],
      ["closed", "late-0"],
    ]);
    expect(errors.length - refusals.length).toBeLessThanOrEqual(1);
  });

  it("delivers over HTTP POST /e when told to, with per-event rejections and no live tail", async () => {
    const c = client({ transport: "http", storageMode: "confirmed", maxBatchSize: 2 });
    const good = [0, 1, 2].map((i) => c.track("http", { i }, { id: `http-${i}` }));
    const bad = c.track("http", {}, { id: "http-urgent", importance: "urgent" as Importance });
    expect(await Promise.all(good)).toEqual([0, 1, 2].map((i) => ({ id: `http-${i}` })));
    await expect(bad).rejects.toMatchObject({ code: "invalid_field", eventId: "http-urgent" });
    expect(c.connectedVia).toBe("http");
    expect((await lakeIds("http-")).sort()).toEqual(["http-0", "http-1", "http-2"]);
    await expect(c.subscribe({}).next()).rejects.toMatchObject({ code: "unsupported" });

    const stranger = client({ transport: "http", key: "not-a-key" });
    await expect(stranger.track("http")).rejects.toMatchObject({ code: "unauthorized" });
  });

  it("falls back to HTTP after repeated failed upgrades", async () => {
    // A socket to a route the Worker does not have: every upgrade answers 404.
    class Failing extends WebSocket {
      constructor(address: string) {
        super(address.replace("/ws?", "/no-such-route?"));
      }
    }
    const c = client({ WebSocket: Failing as unknown as WebSocketConstructor, httpFallbackAfter: 2 });
    await expect(c.track("fallback", {}, { id: "fallback-0" })).resolves.toEqual({ id: "fallback-0" });
    expect(c.connectedVia).toBe("http");
  });

  it("uses the ws package when the runtime has no global WebSocket (Node 20)", async () => {
    const global = globalThis as { WebSocket?: unknown };
    const saved = global.WebSocket;
    delete global.WebSocket;
    const c = client();
    try {
      expect(global.WebSocket).toBeUndefined();
      await c.connect();
    } finally {
      global.WebSocket = saved;
    }
    expect(c.connectedVia).toBe("websocket");
    await expect(c.track("node20")).resolves.toEqual({ id: expect.any(String) });
  });

  it("tails exactly the matching events and unsubscribes when the loop breaks", async () => {
    const reader = client({ key: "rk" });
    const writer = client();
    const sub = reader.subscribe({ type: "tail-error" });
    await sub.ready;
    expect(await shardTotal("subscriptions"), "every shard knows the filter").toBeGreaterThan(0);
    const sent = Array.from({ length: 6 }, (_, i) => ({ id: `tail-${i}`, type: i % 2 ? "tail-page" : "tail-error" }));
    await Promise.all(sent.map((e) => writer.track(e.type, {}, { id: e.id })));
    const got: string[] = [];
    for await (const event of sub) {
      got.push(event.id);
      if (got.length === 3) break;
    }
    expect(got).toEqual(["tail-0", "tail-2", "tail-4"]);
    expect(sub.done).toBe(true);
    expect(await shardTotal("subscriptions"), "the server forgot the subscription").toBe(0);
  });

  it("acks tail frames as the consumer pulls them: a slow consumer gets drops reported, not a flood", async () => {
    const errors: DuckTailClientError[] = [];
    const reader = client({ key: "rk", onError: (e) => errors.push(e) });
    const writer = client({ maxBatchSize: 1000 });
    const sub = reader.subscribe({ type: "flood" });
    await sub.ready;
    await Promise.all(Array.from({ length: 3000 }, (_, i) => writer.track("flood", { i })));
    // Nothing pulled yet: the server sent its window (16 frames of 100), queued 1,000 and dropped the rest.
    let pulled = 0;
    for await (const _ of sub) if (++pulled === 2600) break;
    expect(sub.dropped).toBe(400);
    expect(errors.map((e) => [e.code, e.count])).toEqual([["tail_dropped", 400]]);
    expect(sub.acked, "frames past the first 16 came only after acks").toBeGreaterThan(16);
  });

  it("refuses a live tail to a write-only key", async () => {
    const sub = client().subscribe({ type: "x" });
    await expect(sub.ready).rejects.toMatchObject({ code: "forbidden" });
    await expect(sub.next()).rejects.toMatchObject({ code: "forbidden" });
  });
});
