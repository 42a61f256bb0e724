import { afterEach, describe, expect, it, vi } from "vitest";
import type { NormalizedEvent } from "../../src/protocol/events";
import { LiveViews } from "../../src/replica/live-views";
import { mergePartials, type SerializedPartials } from "../../src/views/buckets";
import { BUILTIN_VIEWS, pageviews, type ViewDefinition } from "../../src/views/views";

/** Just enough SqlStorage for LiveViews: no persisted buckets; saved bucket rows are kept in `saved`. */
function host() {
  const saved: { view: string; json: string }[] = [];
  const exec = (query: string, ...args: unknown[]) => {
    if (query.startsWith("INSERT OR REPLACE INTO view_buckets"))
      saved.push({ view: args[0] as string, json: args[2] as string });
    return { toArray: () => [], [Symbol.iterator]: () => [][Symbol.iterator]() };
  };
  return { saved, uid: "r0", sql: { exec } as unknown as SqlStorage, aggregator: () => null, alarmBy: () => undefined };
}

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
    const h = host();
    const views = new LiveViews(h, [...BUILTIN_VIEWS, broken]);
    const now = Date.now();
    const batch = [event(1, "pageview"), event(2, "boom"), event(3, "pageview")];
    const raw = batch.map(() => ({ data: { path: "/a" } }));
    expect(() => views.addEach(batch, raw, [0, 1, 2], now)).not.toThrow();
    expect(() => views.addEach(batch, raw, [0, 1, 2], now)).not.toThrow();
    expect(views.failures).toBe(2);
    expect(logged).toHaveBeenCalledTimes(1);
    const fine = [event(4, "pageview")];
    views.addEach(fine, [{ data: { path: "/a" } }], [0], now);
    views.save();
    const saved = h.saved.filter((r) => r.view === "pageviews").map((r) => JSON.parse(r.json) as SerializedPartials);
    // The first event of each failed batch got in before the throw; the clean batch's did too.
    expect(mergePartials(pageviews, saved)).toEqual([{ path: "/a", views: 3, uniques: 2 }]);
  });
});
