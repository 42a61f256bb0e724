import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { NormalizedEvent } from "../../src/protocol/events";
import { BUCKET_MS, ViewStore } from "../../src/views/buckets";
import { FusedBuiltinViews } from "../../src/views/fused";
import { type AnyView, errors, latency, pageviews, type ViewDefinition } from "../../src/views/views";

const T0 = 1_764_000_000_000; // a minute boundary

const text = fc.oneof(fc.constantFrom("/", "/a", "/a?x=1", "/b#top", "", "?q"), fc.string({ maxLength: 6 }));
const number = fc.oneof(fc.double({ noNaN: false }), fc.integer({ min: -5, max: 5000 }));
const anything = fc.oneof(text, number, fc.constant(null), fc.boolean());
/** The `data` fields the built-in views read, each absent, of the right type or of another. */
const dataArb = fc.record(
  {
    path: anything,
    url: fc.oneof(text, fc.constantFrom("https://x.test/p?q#f", "not a url", "/rel?x")),
    route: anything,
    ms: anything,
    duration: anything,
    latency: anything,
    name: anything,
    message: anything,
    type: anything,
    stack: fc.oneof(anything, fc.constant("Error: x\n    at f (a.js:1:2)")),
  },
  { requiredKeys: [] },
);
const rawEventArb = fc.record({
  id: fc.string({ minLength: 1, maxLength: 4 }),
  ts: fc.integer({ min: T0 - 5000, max: T0 + 5000 }),
  source: fc.constantFrom("web", "api"),
  type: fc.constantFrom("pageview", "page", "error", "click", "request"),
  userId: fc.option(fc.constantFrom("u1", "u2", "u3"), { nil: null }),
  anonymousId: fc.option(fc.constantFrom("a1", "a2"), { nil: null }),
  data: fc.oneof(dataArb, fc.constant(undefined), fc.constant(null)),
});

const counter: ViewDefinition<{ n: number }, { n: number }> = {
  name: "counter",
  key: () => "all",
  init: () => ({ n: 0 }),
  add: (p) => ({ n: p.n + 1 }),
  merge: (a, b) => ({ n: a.n + b.n }),
  finalize: (p) => p,
};

type RawEvent = typeof rawEventArb extends fc.Arbitrary<infer T> ? T : never;

function normalized(raw: RawEvent): NormalizedEvent {
  return { ...raw, importance: "normal", sessionId: null, data: JSON.stringify(raw.data ?? {}) };
}

const names = (refs: { view: string; bucketStart: number }[]) => refs.map((r) => `${r.view}@${r.bucketStart}`).sort();

/**
 * Every view's partials, the dirty buckets and every bucket there is, the way they are persisted
 * and pruned (the store is emptied: call it last). The dirty buckets in any order: the fused pass
 * marks a bucket once per batch, the generic one at its first event.
 */
function state(store: ViewStore, views: readonly AnyView[]) {
  return {
    partials: views.map((v) => store.serializePartials(v.name, 0, Number.MAX_SAFE_INTEGER)),
    dirty: names(store.dirty()),
    buckets: names(store.prune(Number.MAX_SAFE_INTEGER, 0)),
  };
}

describe("FusedBuiltinViews", () => {
  it("makes the same partials as adding each event to every built-in view (property)", () => {
    const subsets = fc.subarray([pageviews, errors, latency], { minLength: 1 });
    fc.assert(
      fc.property(
        fc.array(rawEventArb, { maxLength: 60 }),
        subsets,
        fc.integer({ min: 0, max: 2 }),
        (raws, views, minute) => {
          const receivedAt = T0 + minute * BUCKET_MS + 17;
          const start = T0 + minute * BUCKET_MS;
          const events = raws.map(normalized);
          const indexes = raws.map((_, i) => i);
          const generic = new ViewStore(views);
          for (let k = 0; k < events.length; k++) {
            const e = events[k] as NormalizedEvent;
            const given = raws[k]?.data;
            generic.add({
              ...e,
              receivedAt,
              data: (typeof given === "object" && given !== null ? given : {}) as never,
            });
          }
          const store = new ViewStore(views);
          new FusedBuiltinViews(store).add(events, raws, indexes, receivedAt, start);
          expect(state(store, views)).toEqual(state(generic, views));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("stands in only for stores whose views are all built-in", () => {
    expect(FusedBuiltinViews.covers(new ViewStore([pageviews, latency]))).toBe(true);
    expect(FusedBuiltinViews.covers(new ViewStore([]))).toBe(true);
    expect(FusedBuiltinViews.covers(new ViewStore([pageviews, counter]))).toBe(false);
  });
});
