import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hash32, hash32i } from "../../src/hash";
import type { StoredEvent } from "../../src/protocol/events";
import {
  BUCKET_MS,
  finalizeRows,
  mergePartials,
  mergeReplies,
  type SerializedPartials,
  serializePartials,
  ViewStore,
} from "../../src/views/buckets";
import { LogHistogram } from "../../src/views/histogram";
import { HyperLogLog } from "../../src/views/hll";
import {
  type AnyView,
  BUILTIN_VIEWS,
  errorFingerprint,
  errors,
  latency,
  pageviews,
  toViewEvent,
  type ViewDefinition,
  type ViewEvent,
} from "../../src/views/views";

const T0 = 1_764_000_000_000; // a minute boundary
const ALPHA = 0.01;
const EVERYTHING: [number, number] = [0, Number.MAX_SAFE_INTEGER];

function event(over: Partial<ViewEvent> = {}): ViewEvent {
  return {
    id: "e1",
    ts: T0,
    receivedAt: T0,
    source: "web",
    type: "pageview",
    importance: "normal",
    userId: null,
    anonymousId: null,
    sessionId: null,
    data: {},
    ...over,
  };
}

/** Small seeded PRNG (mulberry32), so fast-check's seed drives partitioning and merge order. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) % n) as number;
  };
}

/** Splits `items` into `parts` random partitions (some may be empty). */
function partition<T>(items: readonly T[], parts: number, rand: (n: number) => number): T[][] {
  const out: T[][] = Array.from({ length: parts }, () => []);
  for (const item of items) out[rand(parts)]!.push(item);
  return out;
}

/** Merges states pairwise, picking two at random each time: random order and random grouping. */
function mergeRandomly<S>(states: S[], merge: (a: S, b: S) => S, rand: (n: number) => number): S {
  const pool = [...states];
  while (pool.length > 1) {
    const a = pool.splice(rand(pool.length), 1)[0]!;
    const b = pool.splice(rand(pool.length), 1)[0]!;
    pool.push(merge(a, b));
  }
  return pool[0]!;
}

/** Two gossip replies merged into one, through JSON text as on the wire. */
function combine(view: AnyView, a: SerializedPartials, b: SerializedPartials): SerializedPartials {
  const wire = (r: SerializedPartials) => JSON.parse(JSON.stringify(r)) as SerializedPartials;
  return serializePartials(view, mergeReplies(view, [wire(a), wire(b)]));
}

function nearestRank(sorted: readonly number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

/** The reference: one partial per key, built by `add` alone, no buckets, no merge. */
function addAll(view: AnyView, events: readonly ViewEvent[]): Map<string, unknown> {
  const partials = new Map<string, unknown>();
  for (const e of events) {
    const key = view.key(e);
    if (key !== null) partials.set(key, view.add(partials.get(key) ?? view.init(), e));
  }
  return partials;
}

const eventsArb = fc
  .array(
    fc.record({
      type: fc.constantFrom("pageview", "page", "error", "request", "click"),
      ts: fc.integer({ min: 0, max: 4 }), // few distinct ts, so (ts, id) ties are exercised
      received: fc.integer({ min: 0, max: 5 * BUCKET_MS }),
      idTag: fc.integer({ min: 0, max: 9 }),
      userId: fc.option(fc.constantFrom("u1", "u2", "u3", "u4")),
      anonymousId: fc.option(fc.constantFrom("a1", "a2", "a3")),
      data: fc.record(
        {
          path: fc.constantFrom("/", "/a", "/b/c", "__proto__"),
          url: fc.constantFrom("https://x.test/docs?q=1", "/rel/path", "::not a url"),
          route: fc.constantFrom("GET /api", "POST /api"),
          name: fc.constantFrom("TypeError", "RangeError"),
          message: fc.constantFrom("boom", "bang"),
          stack: fc.constantFrom("Error: boom\n    at f (a.js:1:2)", "Error: boom\n    at f (a.js:9:2)", "no frame"),
          extra: fc.integer(),
          duration: fc.oneof(fc.constant(0), fc.double({ min: 0.001, max: 1e5, noNaN: true })),
          ms: fc.integer({ min: 0, max: 5000 }),
        },
        { requiredKeys: [] },
      ),
    }),
    { maxLength: 150 },
  )
  .map((raw) =>
    raw.map((r, i) =>
      event({
        id: `${r.idTag}-${i}`,
        ts: T0 + r.ts,
        receivedAt: T0 + r.received,
        type: r.type,
        userId: r.userId,
        anonymousId: r.anonymousId,
        data: r.data,
      }),
    ),
  );

describe("views merge like one replica (property)", () => {
  it("gives every built-in view the same rows whether events hit 1 replica or 1..8, merged in any order and grouping", () => {
    fc.assert(
      fc.property(eventsArb, fc.integer({ min: 1, max: 8 }), fc.integer(), (events, parts, seed) => {
        const rand = prng(seed);
        const replicas = partition(events, parts, rand).map((share) => {
          const store = new ViewStore();
          for (const e of share) store.add(e);
          return store;
        });
        for (const view of BUILTIN_VIEWS) {
          const replies = replicas.map((r) => r.serializePartials(view.name, ...EVERYTHING));
          const merged = mergeRandomly(replies, (a, b) => combine(view, a, b), rand);
          const expected = finalizeRows(view, addAll(view, events), { limit: Infinity });
          expect(mergePartials(view, [merged], { limit: Infinity })).toEqual(expected);
          // One round of gossip, replies in arrival order, gives the same answer.
          expect(mergePartials(view, replies, { limit: Infinity })).toEqual(expected);
        }
      }),
      { numRuns: 150 },
    );
  });

  it("merges HyperLogLog sketches into exactly the registers of one sketch fed everything", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 1, max: 8 }), fc.integer(), (n, parts, seed) => {
        const rand = prng(seed);
        const values = Array.from({ length: n }, (_, i) => `v${seed}:${i % Math.max(1, n - 50)}`); // some repeats
        const one = new HyperLogLog();
        for (const v of values) one.add(v);
        const sketches = partition(values, parts, rand).map((share) => {
          const h = new HyperLogLog();
          for (const v of share) h.add(v);
          return h;
        });
        const merged = mergeRandomly(sketches, (a, b) => HyperLogLog.fromJSON(a.toJSON()).merge(b), rand);
        expect(merged.registers()).toEqual(one.registers());
        expect(merged.toJSON()).toEqual(one.toJSON());
      }),
      { numRuns: 60 },
    );
  });

  it("counts ≥ 1,000 distinct values within 5% after merging partitions", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1000, max: 40_000 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer(),
        (n, parts, seed) => {
          const rand = prng(seed);
          const sketches = Array.from({ length: parts }, () => new HyperLogLog());
          // Every value lands on 1..2 replicas: duplicates across replicas must not count twice.
          for (let i = 0; i < n; i++) {
            const v = `user-${seed}-${i}`;
            sketches[rand(parts)]!.add(v);
            if (i % 3 === 0) sketches[rand(parts)]!.add(v);
          }
          const merged = mergeRandomly(sketches, (a, b) => a.merge(b), rand);
          expect(Math.abs(merged.count() - n) / n).toBeLessThan(0.05);
        },
      ),
      // HLL error is random in the values (~1.6% rms, 5% ≈ 3σ): a fixed seed keeps the bound from flaking.
      { numRuns: 25, seed: 20_260_117 },
    );
  });

  const valuesArb = fc.array(
    fc.oneof(
      fc.constant(0),
      fc.double({ min: 1e-3, max: 1e7, noNaN: true }),
      fc.integer({ min: 1, max: 2000 }),
      // Buckets too far apart for one dense window, so some are kept in the histogram's Map (tiny
      // values: huge ones would make sums of microseconds pass 2^53, where addition stops being exact).
      fc.double({ min: 1e-300, max: 1e-3, noNaN: true }),
    ),
    { minLength: 1, maxLength: 400 },
  );

  it("answers histogram quantiles of merged partitions within α of the exact nearest-rank quantile", () => {
    fc.assert(
      fc.property(
        valuesArb,
        fc.integer({ min: 1, max: 8 }),
        fc.integer(),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (values, parts, seed, q) => {
          const rand = prng(seed);
          const one = new LogHistogram();
          for (const v of values) one.add(v);
          const histograms = partition(values, parts, rand).map((share) => {
            const h = new LogHistogram();
            for (const v of share) h.add(v);
            return h;
          });
          const merged = mergeRandomly(histograms, (a, b) => LogHistogram.fromJSON(a.toJSON()).merge(b), rand);
          expect(merged.toJSON()).toEqual(one.toJSON());
          const sorted = [...values].sort((a, b) => a - b);
          for (const quantile of [q, 0, 0.5, 0.9, 0.95, 0.99, 1]) {
            const exact = nearestRank(sorted, quantile);
            const estimate = merged.quantile(quantile)!;
            expect(Math.abs(estimate - exact)).toBeLessThanOrEqual(ALPHA * exact * (1 + 1e-9));
          }
          expect([merged.count, merged.min, merged.max]).toEqual([values.length, sorted[0], sorted.at(-1)]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("folds low buckets past maxBuckets to the same state whatever the merge order", () => {
    // Fifteen values 4% apart: fifteen buckets for a cap of eight, shared between partitions.
    const fewBuckets = fc.array(
      fc.integer({ min: 0, max: 14 }).map((k) => 10 * 1.04 ** k),
      { minLength: 1, maxLength: 60 },
    );
    fc.assert(
      fc.property(
        fc.oneof(valuesArb, fewBuckets),
        fc.integer({ min: 1, max: 8 }),
        fc.integer(),
        (values, parts, seed) => {
          const rand = prng(seed);
          const options = { maxBuckets: 8 };
          const one = new LogHistogram(options);
          for (const v of values) one.add(v);
          const histograms = partition(values, parts, rand).map((share) => {
            const h = new LogHistogram(options);
            for (const v of share) h.add(v);
            return h;
          });
          const merged = mergeRandomly(histograms, (a, b) => a.merge(b), rand);
          expect(merged.toJSON()).toEqual(one.toJSON());
          expect(merged.toJSON().bins.length).toBeLessThanOrEqual(16);
          // The top of the distribution keeps its accuracy.
          const sorted = [...values].sort((a, b) => a - b);
          expect(Math.abs(merged.quantile(1)! - sorted.at(-1)!)).toBeLessThanOrEqual(
            ALPHA * sorted.at(-1)! * (1 + 1e-9),
          );
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("pageviews", () => {
  const rows = (events: ViewEvent[]) => {
    const store = new ViewStore([pageviews]);
    for (const e of events) store.add(e);
    return finalizeRows(pageviews, store.partials("pageviews", ...EVERYTHING));
  };

  it("counts a visitor by userId, else anonymousId, and counts visitor-less views as views only", () => {
    expect(
      rows([
        event({ id: "1", userId: "u1", anonymousId: "a1", data: { path: "/" } }),
        event({ id: "2", userId: "u1", anonymousId: "a2", data: { path: "/" } }),
        event({ id: "3", anonymousId: "a1", data: { path: "/" } }),
        event({ id: "4", data: { path: "/" } }),
      ]),
    ).toEqual([{ path: "/", views: 4, uniques: 2 }]);
  });

  it("keys by data.path, else data.url's pathname, else /, and reads only pageview and page events", () => {
    expect(
      rows([
        event({ id: "1", data: { path: "/docs?utm_source=hn" } }),
        event({ id: "6", data: { path: "/pricing#plans" } }),
        event({ id: "2", type: "page", data: { url: "https://example.com/docs?tab=2#x" } }),
        event({ id: "3", data: { url: "/pricing?plan=pro" } }),
        event({ id: "4", data: {} }),
        event({ id: "5", type: "click", data: { path: "/docs" } }),
      ]),
    ).toEqual([
      { path: "/docs", views: 2, uniques: 0 },
      { path: "/pricing", views: 2, uniques: 0 },
      { path: "/", views: 1, uniques: 0 },
    ]);
  });
});

describe("errors", () => {
  const crash = (data: Record<string, unknown>) => ({
    name: "TypeError",
    message: "x is undefined",
    stack: "TypeError: x is undefined\n    at render (app.js:10:5)\n    at main (app.js:99:1)",
    ...data,
  });

  it("keeps hashes and fingerprints stable across releases (persisted partials must keep merging)", () => {
    // Values computed by the release that first persisted them; the hot-path signed variant has the same bits.
    expect([hash32(""), hash32("a"), hash32("user-1234"), hash32("日本🦆", 0x9747b28c)]).toEqual([
      0, 1867108634, 3293766013, 54573732,
    ]);
    for (const s of ["", "a", "user-1234", "anon-5b21a7dd"]) expect(hash32i(s) >>> 0).toBe(hash32(s));
    const stack = "TypeError: x\n    at f (a.js:1:2)";
    expect(errorFingerprint({ name: "TypeError", message: "x is undefined", stack })).toBe("36f587b837f4a341");
  });

  it("gives errors that differ only in other data fields one fingerprint", () => {
    expect(errorFingerprint(crash({ extra: 1, url: "/a" }))).toBe(errorFingerprint(crash({ extra: 2 })));
    expect(errorFingerprint(crash({}))).toMatch(/^[0-9a-f]{16}$/);
  });

  it("separates errors by message, by name and by the line of their first frame", () => {
    const base = errorFingerprint(crash({}));
    expect(errorFingerprint(crash({ message: "y is undefined" }))).not.toBe(base);
    expect(errorFingerprint(crash({ name: "RangeError" }))).not.toBe(base);
    expect(errorFingerprint(crash({ stack: "TypeError: x is undefined\n    at render (app.js:11:5)" }))).not.toBe(base);
    // Only the first frame counts; the message line above it does not.
    expect(errorFingerprint(crash({ stack: "changed header\n  at render (app.js:10:5)\n at other (b.js:1:1)" }))).toBe(
      base,
    );
    expect(errorFingerprint(crash({ stack: "render@https://x.test/app.js:10:5" }))).not.toBe(base);
  });

  it("names errors by data.name, else data.type, else Error", () => {
    expect(errorFingerprint({ type: "TypeError", message: "m" })).toBe(
      errorFingerprint({ name: "TypeError", message: "m" }),
    );
    expect(errorFingerprint({ message: "m" })).toBe(errorFingerprint({ name: "Error", message: "m" }));
  });

  it("keeps count, first and last seen, and the sample (with its session) of the smallest (ts, id) in any add order", () => {
    const events = [
      event({ id: "b", ts: 200, type: "error", data: crash({ n: 1 }), sessionId: "s-b" }),
      event({ id: "a", ts: 200, type: "error", data: crash({ n: 2 }), sessionId: "s-a" }),
      event({ id: "c", ts: 900, type: "error", data: crash({ n: 3 }) }),
      event({ id: "z", ts: 100, type: "pageview", data: crash({ n: 4 }) }),
    ];
    for (const order of [events, [...events].reverse()]) {
      const store = new ViewStore([errors]);
      for (const e of order) store.add(e);
      expect(finalizeRows(errors, store.partials("errors", ...EVERYTHING))).toEqual([
        {
          fingerprint: errorFingerprint(crash({})),
          name: "TypeError",
          message: "x is undefined",
          count: 3,
          firstSeen: 200,
          lastSeen: 900,
          sample: crash({ n: 2 }),
          sessionId: "s-a",
        },
      ]);
    }
  });
});

describe("latency", () => {
  it("reads duration, else ms, else latency, keyed by route, else path (no query), else source and type", () => {
    const store = new ViewStore([latency]);
    store.add(event({ type: "request", data: { route: "GET /a", path: "/a", duration: 100, ms: 1 } }));
    store.add(event({ type: "request", data: { path: "/a?page=2", ms: 200 } }));
    store.add(event({ type: "request", data: { latency: 300 } }));
    store.add(event({ type: "request", data: { duration: "12", ms: Number.NaN } }));
    // duck.js's time on the page is not a latency.
    store.add(event({ type: "pageleave", data: { path: "/a", duration: 13_399 } }));
    const rows = finalizeRows(latency, store.partials("latency", ...EVERYTHING));
    expect(rows.map((r) => [r.route, r.count, r.min, r.max, r.mean])).toEqual([
      ["/a", 1, 200, 200, 200],
      ["GET /a", 1, 100, 100, 100],
      ["web request", 1, 300, 300, 300],
    ]);
  });

  it("reports count, percentiles within 1%, min, max and mean per route", () => {
    const store = new ViewStore([latency]);
    for (let ms = 1; ms <= 1000; ms++) store.add(event({ id: `${ms}`, type: "request", data: { route: "r", ms } }));
    const [row] = finalizeRows(latency, store.partials("latency", ...EVERYTHING));
    expect(row).toMatchObject({ route: "r", count: 1000, min: 1, max: 1000, mean: 500.5 });
    for (const [p, exact] of [
      [row!.p50, 500],
      [row!.p90, 900],
      [row!.p95, 950],
      [row!.p99, 990],
    ] as const) {
      expect(Math.abs(p - exact) / exact).toBeLessThanOrEqual(ALPHA);
    }
  });
});

describe("HyperLogLog", () => {
  it("refuses to merge sketches of different precision", () => {
    expect(() => new HyperLogLog(12).merge(new HyperLogLog(14))).toThrow(RangeError);
    expect(() => new HyperLogLog(3)).toThrow(RangeError);
  });

  it("serializes few registers sparsely and many as base64, and reads both back", () => {
    const small = new HyperLogLog();
    for (const v of ["a", "b", "c"]) small.add(v);
    expect(small.toJSON()).toMatchObject({ p: 12, sparse: expect.any(Array) });
    expect(JSON.stringify(small).length).toBeLessThan(60);
    const big = new HyperLogLog();
    for (let i = 0; i < 5000; i++) big.add(`v${i}`);
    const json = big.toJSON() as { p: number; dense: string };
    expect(json.dense).toHaveLength(5464);
    for (const h of [small, big]) {
      const back = HyperLogLog.fromJSON(JSON.parse(JSON.stringify(h)));
      expect(back.registers()).toEqual(h.registers());
      expect(back.count()).toBe(h.count());
    }
    expect(new HyperLogLog().count()).toBe(0);
  });
});

describe("LogHistogram", () => {
  it("records values ≤ 0 as 0, ignores non-finite values and answers null when empty", () => {
    const h = new LogHistogram();
    expect([h.quantile(0.5), h.min, h.mean]).toEqual([null, null, null]);
    for (const v of [-5, 0, 10, Number.NaN, Number.POSITIVE_INFINITY]) h.add(v);
    expect([h.count, h.min, h.max, h.quantile(0), h.quantile(0.5), h.sum]).toEqual([3, 0, 10, 0, 0, 10]);
  });

  it("folds a low value added after a merge as one histogram fed everything would", () => {
    const options = { maxBuckets: 8 };
    const tenValues = Array.from({ length: 10 }, (_, k) => 10 * 1.04 ** k);
    const folded = new LogHistogram(options);
    for (const v of tenValues) folded.add(v);
    const small = new LogHistogram(options);
    small.add(tenValues[9]!);
    const one = new LogHistogram(options);
    for (const v of [...tenValues, tenValues[9]!, 1]) one.add(v);
    const merged = small.merge(folded);
    merged.add(1);
    expect(merged.toJSON()).toEqual(one.toJSON());
    expect(merged.toJSON().bins).toHaveLength(16);
  });

  it("puts every value in the bucket (γ^(i-1), γ^i] that holds it, whole milliseconds (a table) and others alike", () => {
    // More accuracies than the isolate keeps index tables for: the rest compute every index.
    for (const alpha of [0.01, 0.05, 0.001, 0.002, 0.02, 0.03, 0.04, 0.1, 0.2, 0.3, 0.5]) {
      const gamma = (1 + alpha) / (1 - alpha);
      const values = [0.001, 0.5, 0.999, 1, 1.5, 4095.5, 1e6 + 0.25];
      for (let v = 1; v <= 5000; v++) values.push(v);
      for (const v of values) {
        const h = new LogHistogram({ relativeAccuracy: alpha });
        h.add(v);
        const [index] = h.toJSON().bins as [number, number];
        // Float rounding of log() may put a value a hair past a bound into either neighbour.
        expect(gamma ** (index - 1)).toBeLessThan(v * (1 + 1e-12));
        expect(gamma ** index).toBeGreaterThan(v * (1 - 1e-12));
      }
    }
  });

  it("refuses to merge histograms with different accuracy", () => {
    expect(() => new LogHistogram().merge(new LogHistogram({ relativeAccuracy: 0.02 }))).toThrow(RangeError);
  });
});

describe("JSON round trip", () => {
  const mixed = [
    event({ id: "1", userId: "u1", data: { path: "/" } }),
    event({ id: "2", anonymousId: "a9", data: { path: "/" } }),
    event({ id: "3", type: "error", data: { message: "m", stack: "E\n at f (a:1:1)", nested: { ok: [1, 2] } } }),
    event({ id: "4", type: "request", data: { route: "r", duration: 12.5 } }),
    event({ id: "5", type: "request", data: { route: "r", duration: 0 } }),
  ];

  it("restores every built-in partial from its JSON text to the same state and rows", () => {
    const store = new ViewStore();
    for (const e of mixed) store.add(e);
    for (const view of BUILTIN_VIEWS) {
      const partials = store.partials(view.name, ...EVERYTHING);
      expect(partials.size).toBeGreaterThan(0);
      const text = JSON.stringify(serializePartials(view, partials));
      const back = mergeReplies(view, [JSON.parse(text)]);
      expect(JSON.stringify(serializePartials(view, back))).toBe(text);
      expect(finalizeRows(view, back)).toEqual(finalizeRows(view, partials));
    }
  });

  it("builds view events from buffered events, parsing data once", () => {
    const stored: StoredEvent = {
      ...event({ id: "s" }),
      data: '{"path":"/x"}',
      tenant: "t",
      replica: "t-0",
      seq: 1,
    };
    expect(toViewEvent(stored)).toEqual(event({ id: "s", data: { path: "/x" } }));
  });
});

describe("ViewStore", () => {
  const at = (minute: number, id = `${minute}`) =>
    event({ id, receivedAt: T0 + minute * BUCKET_MS + 30_000, data: { path: "/p" } });
  const views = (store: ViewStore, from: number, to: number) =>
    finalizeRows(pageviews, store.partials("pageviews", from, to)).map((r) => r.views);

  it("merges the minute buckets that overlap [from, to), to excluded", () => {
    const store = new ViewStore();
    for (const m of [0, 1, 1, 2, 5]) store.add(at(m));
    expect(views(store, T0, T0 + 3 * BUCKET_MS)).toEqual([4]);
    expect(views(store, T0 + BUCKET_MS + 59_000, T0 + 2 * BUCKET_MS)).toEqual([2]);
    expect(views(store, T0 + 3 * BUCKET_MS, T0 + 5 * BUCKET_MS)).toEqual([]);
    expect(store.partials("nope", ...EVERYTHING).size).toBe(0);
  });

  it("answers fresh partials that do not change the store when mutated", () => {
    const store = new ViewStore();
    store.add(at(0));
    const partials = store.partials<{ count: number }>("pageviews", ...EVERYTHING);
    partials.get("/p")!.count = 99;
    expect(views(store, ...EVERYTHING)).toEqual([1]);
  });

  it("prunes buckets that ended before the retention window and forgets they were dirty", () => {
    const store = new ViewStore();
    for (const m of [0, 1, 2]) store.add(at(m));
    const now = T0 + 2 * BUCKET_MS + 48 * 3_600_000;
    expect(store.prune(now)).toEqual([
      { view: "pageviews", bucketStart: T0 },
      { view: "pageviews", bucketStart: T0 + BUCKET_MS },
    ]);
    expect(views(store, ...EVERYTHING)).toEqual([1]);
    expect(store.dirty()).toEqual([{ view: "pageviews", bucketStart: T0 + 2 * BUCKET_MS }]);
    expect(store.prune(now, 0)).toHaveLength(1);
    expect(store.dirty()).toEqual([]);
  });

  it("hands out dirty buckets once as rows, and again only after they change", () => {
    const store = new ViewStore();
    store.add(at(0));
    store.add(at(1));
    store.add(event({ id: "e", type: "error", receivedAt: T0, data: { message: "m" } }));
    expect(store.dirty()).toEqual([
      { view: "pageviews", bucketStart: T0 },
      { view: "pageviews", bucketStart: T0 + BUCKET_MS },
      { view: "errors", bucketStart: T0 },
    ]);
    expect(store.takeDirty().map((r) => [r.view, r.bucketStart])).toEqual([
      ["pageviews", T0],
      ["pageviews", T0 + BUCKET_MS],
      ["errors", T0],
    ]);
    expect(store.takeDirty()).toEqual([]);
    store.add(at(1, "again"));
    expect(store.takeDirty().map((r) => [r.view, r.bucketStart])).toEqual([["pageviews", T0 + BUCKET_MS]]);
  });

  it("restores persisted rows to the same partials, merging into buckets that already have events", () => {
    const events = [at(0, "a"), at(0, "b"), at(3), event({ id: "l", type: "request", data: { ms: 5 } })];
    const before = new ViewStore();
    for (const e of events) before.add(e);
    const rows = before.takeDirty();
    const after = new ViewStore();
    for (const row of rows) expect(after.loadBucket(JSON.parse(JSON.stringify(row)))).toBe(true);
    expect(after.dirty()).toEqual([]);
    for (const view of BUILTIN_VIEWS) {
      expect(after.serializePartials(view.name, ...EVERYTHING)).toEqual(
        before.serializePartials(view.name, ...EVERYTHING),
      );
    }
    expect(after.loadBucket({ view: "retired", bucketStart: T0, json: "[]" })).toBe(false);

    const early = new ViewStore();
    early.add(at(0, "c"));
    early.takeDirty();
    for (const row of rows) early.loadBucket(row);
    expect(views(early, ...EVERYTHING)).toEqual([4]);
    expect(early.dirty()).toEqual([{ view: "pageviews", bucketStart: T0 }]);
  });
});

describe("finalizeRows and user-defined views", () => {
  interface Sum {
    n: number;
    total: number;
  }
  const spend: ViewDefinition<Sum, { customer: string; orders: number; total: number }> = {
    name: "spend",
    key: (e) => (e.type === "order" && typeof e.data.customer === "string" ? e.data.customer : null),
    init: () => ({ n: 0, total: 0 }),
    add(p, e) {
      p.n++;
      p.total += typeof e.data.amount === "number" ? e.data.amount : 0;
      return p;
    },
    merge(a, b) {
      a.n += b.n;
      a.total += b.total;
      return a;
    },
    finalize: (p, customer) => ({ customer, orders: p.n, total: p.total }),
  };
  const order = (customer: string, amount: number) => event({ type: "order", data: { customer, amount } });

  it("runs a plain-JSON user view through the store and a gossip merge without touching the inputs", () => {
    const a = new ViewStore([...BUILTIN_VIEWS, spend]);
    const b = new ViewStore([spend]);
    for (const [c, n] of [
      ["ann", 10],
      ["bob", 5],
      ["ann", 1],
    ] as const)
      a.add(order(c, n));
    b.add(order("bob", 20));
    const replies = [a.serializePartials("spend", ...EVERYTHING), b.serializePartials("spend", ...EVERYTHING)];
    const snapshot = JSON.stringify(replies);
    expect(mergePartials(spend, replies)).toEqual([
      { customer: "ann", orders: 2, total: 11 },
      { customer: "bob", orders: 2, total: 25 },
    ]);
    expect(mergePartials(spend, replies, { by: "total", limit: 1 })).toEqual([
      { customer: "bob", orders: 2, total: 25 },
    ]);
    expect(JSON.stringify(replies)).toBe(snapshot);
    expect(() => a.register(spend)).toThrow(/already registered/);
  });

  it("sorts built-in rows by their view's order, ties by key, and honours by and limit", () => {
    const store = new ViewStore();
    const paths = ["/b", "/a", "/c", "/c", "/a", "/c"];
    for (const [i, path] of paths.entries()) store.add(event({ id: `${i}`, userId: `u${i}`, data: { path } }));
    const partials = store.partials("pageviews", ...EVERYTHING);
    expect(finalizeRows(pageviews, partials).map((r) => r.path)).toEqual(["/c", "/a", "/b"]);
    expect(finalizeRows(pageviews, partials, { limit: 2 }).map((r) => r.path)).toEqual(["/c", "/a"]);
    expect(finalizeRows(pageviews, partials, { by: "path" }).map((r) => r.path)).toEqual(["/a", "/b", "/c"]);
  });
});
