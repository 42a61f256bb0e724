import { afterEach, describe, expect, it, vi } from "vitest";
import type { NormalizedEvent } from "../../src/protocol/events";
import { LiveViews } from "../../src/replica/live-views";
import { BUILTIN_VIEWS, type ViewDefinition } from "../../src/views/views";

/** Just enough SqlStorage for LiveViews: no persisted buckets, writes ignored. */
const host = {
  uid: "r0",
  sql: { exec: () => [] } as unknown as SqlStorage,
  neighbors: () => [],
  gossipTo: async () => null,
};

const event = (i: number, type: string): NormalizedEvent => ({
  id: `e${i}`,
  ts: 1_764_000_000_000 + i,
  source: "web",
  type,
  importance: "normal",
  userId: `u${i}`,
  anonymousId: null,
  sessionId: null,
  data: "{}",
});

const broken: ViewDefinition<{ n: number }, { n: number }> = {
  name: "broken",
  key: (e) => e.type,
  init: () => ({ n: 0 }),
  add: (p, e) => {
    if (e.type === "boom") throw new Error("bug in a custom view");
    p.n++;
    return p;
  },
  merge: (a, b) => ({ n: a.n + b.n }),
  finalize: (p) => ({ n: p.n }),
};

describe("LiveViews", () => {
  afterEach(() => vi.restoreAllMocks());

  it("survives a view that throws: counted, logged once a minute, and later batches still counted", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const views = new LiveViews(host, [...BUILTIN_VIEWS, broken]);
    const now = Date.now();
    const batch = [event(1, "pageview"), event(2, "boom"), event(3, "pageview")];
    const raw = batch.map(() => ({ data: { path: "/a" } }));
    expect(() => views.addEach(batch, raw, [0, 1, 2], now)).not.toThrow();
    expect(() => views.addEach(batch, raw, [0, 1, 2], now)).not.toThrow();
    expect(views.failures).toBe(2);
    expect(logged).toHaveBeenCalledTimes(1);
    const fine = [event(4, "pageview")];
    views.addEach(fine, [{ data: { path: "/a" } }], [0], now);
    const result = await views.query({ name: "pageviews", windowMs: 60_000 });
    // The first event of each failed batch got in before the throw; the clean batch's did too.
    expect(result.rows).toEqual([{ path: "/a", views: 3, uniques: 2 }]);
    views.save();
  });
});
