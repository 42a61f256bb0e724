import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { crash, ev, replicaStub, tenant } from "./harness";

type T = ReturnType<typeof tenant>;

interface MvResult {
  view: string;
  replicas: { asked: number; answered: number; missing: { replica: string; reason: string }[] };
  rows: Record<string, unknown>[];
}

async function mv(t: T, path: string): Promise<MvResult> {
  const res = await t.fetch(`/buffer/mv/${path}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as MvResult;
}

const PATHS = ["/", "/pricing", "/docs"];

/** Pageviews, errors and timed requests, sent one per request so they spread over every shard. */
async function traffic(t: T): Promise<{ views: Map<string, number>; users: Map<string, Set<string>> }> {
  const views = new Map<string, number>();
  const users = new Map<string, Set<string>>();
  for (let i = 0; i < 60; i++) {
    const path = PATHS[i % 3] as string;
    const user = `u${i % 7}`;
    views.set(path, (views.get(path) ?? 0) + 1);
    users.set(path, (users.get(path) ?? new Set()).add(user));
    const batch = [
      ev("pageview", { userId: user, data: { path } }),
      ev("error", {
        data: { name: "TypeError", message: i % 4 ? "x is undefined" : "boom", stack: "Error\n at f (a.js:1:2)" },
      }),
      ev("request", { data: { route: "/api", duration: (i + 1) * 10 } }),
    ];
    expect((await t.post("/e", batch)).status).toBe(200);
  }
  return { views, users };
}

describe("materialized views", () => {
  it("merges every replica's partials into totals equal to a brute-force count", async () => {
    const t = tenant("mv-totals");
    await t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier: 2 }) });
    const { views, users } = await traffic(t);

    const pv = await mv(t, "pageviews?window=1h");
    expect(pv.replicas).toEqual({ asked: 4, answered: 4, missing: [] });
    expect(pv.rows).toEqual(
      PATHS.map((path) => ({ path, views: views.get(path), uniques: users.get(path)?.size })).sort(
        (a, b) => (b.views as number) - (a.views as number) || a.path.localeCompare(b.path),
      ),
    );

    const errs = await mv(t, "errors?window=5m");
    expect(errs.rows.map((r) => [r.message, r.count]).sort()).toEqual([
      ["boom", 15],
      ["x is undefined", 45],
    ]);

    const lat = await mv(t, "latency?window=24h");
    expect(lat.rows).toHaveLength(1);
    // Durations 10..600 ms: nearest-rank p50 = 300, p99 = 600, within the histogram's 1 %.
    expect(lat.rows[0]).toMatchObject({ route: "/api", count: 60, min: 10, max: 600 });
    expect(Math.abs((lat.rows[0]?.p50 as number) - 300)).toBeLessThanOrEqual(3);
    expect(Math.abs((lat.rows[0]?.p99 as number) - 600)).toBeLessThanOrEqual(6);

    expect((await mv(t, "pageviews?limit=1")).rows).toHaveLength(1);
    expect((await t.fetch("/buffer/mv/nope")).status).toBe(404);
    expect((await t.fetch("/buffer/mv/pageviews?window=3y")).status).toBe(400);
    const writer = tenant("mv-totals", "write");
    expect((await writer.fetch("/buffer/mv/pageviews")).status).toBe(403);

    const ws = await t.socket();
    expect(await ws.request({ type: "mv", name: "pageviews", window: "1h", limit: 2 })).toMatchObject({
      type: "mv",
      view: "pageviews",
      rows: pv.rows.slice(0, 2),
    });
    ws.close();
  });

  it("keeps partials across a replica crash (persisted within a second)", async () => {
    const t = tenant("mv-crash");
    await t.post("/e", [ev("pageview", { userId: "a", data: { path: "/x" } })]);
    await new Promise((r) => setTimeout(r, 1200));
    await crash(replicaStub(t.name, 0));
    expect((await mv(t, "pageviews")).rows).toEqual([{ path: "/x", views: 1, uniques: 1 }]);
  });

  it("names a replica that does not answer in time instead of leaving it out silently", async () => {
    const t = tenant("mv-missing");
    await t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier: 2 }) });
    await traffic(t);
    const silent = replicaStub(t.name, 3);
    await runInDurableObject(silent, (instance) => {
      (instance as unknown as { ongossip: () => Promise<unknown> }).ongossip = () => new Promise(() => {});
    });
    // Asked over a socket placed on shard 0 (least-loaded placement), so shard 3 is the one asked.
    const ws = await t.socket();
    const body = (await ws.request({ type: "mv", name: "pageviews", window: "1h" })) as unknown as MvResult;
    expect(body.replicas).toEqual({
      asked: 4,
      answered: 3,
      missing: [{ replica: silent.id.toString(), reason: "no answer within 2000 ms" }],
    });
    // Round-robin gave each of the 4 shards 15 of the 60 pageviews: the 45 of the three that answered.
    expect((body.rows as { views: number }[]).reduce((a, r) => a + r.views, 0)).toBe(45);
    ws.close();
  }, 20_000);

  it("keeps only the built-in views the VIEWS var names", async () => {
    const t = tenant("mv-var");
    await t.post("/e", [ev("warm")]);
    const names = await runInDurableObject(replicaStub(t.name), (instance) => {
      const r = instance as unknown as { env: { VIEWS?: string }; views(): { name: string }[] };
      const pick = (v: string | undefined) => {
        r.env.VIEWS = v;
        return r.views().map((x) => x.name);
      };
      return [pick(undefined), pick("errors, latency"), pick("none")];
    });
    expect(names).toEqual([["pageviews", "errors", "latency"], ["errors", "latency"], []]);
  });
});
