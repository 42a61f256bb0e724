import { describe, expect, it } from "vitest";
import type { ViewAnswer } from "../../src/protocol/calls";
import { ev, eventually, tenant } from "./harness";

type Row = Record<string, number | string>;
type Series = Omit<ViewAnswer, "total" | "buckets"> & {
  step: number;
  total: Row;
  buckets: { start: number; total: Row | null; rows: (Row | null)[] }[];
};

describe("GET /buffer/mv/<view>?step=", () => {
  it("answers time buckets whose totals equal a brute-force count over every shard", async () => {
    const t = tenant("mv-step");
    await t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier: 2 }) });
    const users = new Set<string>();
    for (let i = 0; i < 24; i++) {
      users.add(`u${i % 5}`);
      const batch = [
        ev("pageview", { userId: `u${i % 5}`, data: { path: ["/", "/docs"][i % 2] } }),
        ev("request", { data: { route: "/api", duration: (i + 1) * 10 } }),
      ];
      expect((await t.post("/e", batch)).status).toBe(200);
    }
    const answer = await eventually(async () => {
      const res = await t.fetch("/buffer/mv/pageviews?window=24h&step=5m&limit=10");
      expect(res.status, await res.clone().text()).toBe(200);
      const a = (await res.json()) as Series;
      return a.total?.views === 24 && a.replicas.missing.length === 0 ? a : null;
    }, 10_000);

    expect(answer.step).toBe(300_000);
    expect([24 * 12, 24 * 12 + 1]).toContain(answer.buckets.length); // a window ends inside its buckets
    expect(answer.buckets.every((b) => b.start % 300_000 === 0)).toBe(true);
    expect(answer.buckets.reduce((n, b) => n + ((b.total?.views as number) ?? 0), 0)).toBe(24);
    expect(answer.total).toMatchObject({ path: "*", views: 24, uniques: users.size });
    expect(answer.rows.map((r) => (r as Row).path).sort()).toEqual(["/", "/docs"]);
    const last = answer.buckets.at(-1)!;
    expect(last.rows.map((r) => Number(r?.views ?? 0)).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(24);

    const lat = (await (await t.fetch("/buffer/mv/latency?window=1h&step=1m")).json()) as Series;
    expect(lat.total).toMatchObject({ route: "*", count: 24, min: 10, max: 240 });

    // The socket's mv frame takes the step too, and answers what the route does.
    const ws = await t.socket();
    const framed = (await ws.request({
      type: "mv",
      name: "pageviews",
      window: "24h",
      step: "5m",
      limit: 10,
    })) as unknown as Series;
    expect(framed.step).toBe(300_000);
    expect(framed.total).toEqual(answer.total);
    expect(await ws.request({ type: "mv", name: "pageviews", step: "30s" })).toMatchObject({
      type: "error",
      code: "bad_request",
    });
    ws.close();
  });

  it("refuses a step that is not whole minutes or gives too many buckets, saying why", async () => {
    const t = tenant("mv-step-bad");
    const bad = async (query: string) => {
      const res = await t.fetch(`/buffer/mv/pageviews?${query}`);
      expect(res.status).toBe(400);
      return ((await res.json()) as { error: { code: string; message: string } }).error;
    };
    expect(await bad("window=1h&step=30s")).toMatchObject({
      code: "bad_request",
      message: expect.stringMatching(/whole number of minutes/),
    });
    expect((await bad("window=48h&step=1m")).message).toMatch(/at most 1500: use a step of at least 2m/);
    expect((await bad("window=1h&step=often")).message).toMatch(/step must be like 1m/);
  });
});
