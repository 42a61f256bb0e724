import { describe, expect, it } from "vitest";
import {
  type AggregateRows,
  type AggregateStore,
  CLOSE_GRACE_MS,
  type ReplicaBucket,
  ViewAggregate,
} from "../../src/views/aggregate";
import {
  BUCKET_MS,
  type BucketRow,
  DEFAULT_RETENTION_MS,
  mergePartials,
  type SerializedPartials,
  ViewStore,
} from "../../src/views/buckets";
import { BUILTIN_VIEWS, pageviews, type ViewEvent } from "../../src/views/views";

/** The aggregator's storage in maps, with what it would restore after an eviction. */
class MemoryStore implements AggregateStore {
  readonly partials = new Map<string, ReplicaBucket>();
  readonly buckets = new Map<string, BucketRow | { view: string; bucketStart: number; json: null }>();

  putPartials(b: ReplicaBucket): void {
    this.partials.set(`${b.view}|${b.bucketStart}|${b.replica}`, b);
  }
  partialsOf(view: string, bucketStart: number): string[] {
    return [...this.partials.values()]
      .filter((b) => b.view === view && b.bucketStart === bucketStart)
      .map((b) => b.json);
  }
  opened(view: string, bucketStart: number): void {
    const key = `${view}|${bucketStart}`;
    if (!this.buckets.has(key)) this.buckets.set(key, { view, bucketStart, json: null });
  }
  putMerged(row: BucketRow): void {
    this.buckets.set(`${row.view}|${row.bucketStart}`, row);
  }
  prune(before: number): void {
    for (const [k, b] of this.partials) if (b.bucketStart < before) this.partials.delete(k);
    for (const [k, b] of this.buckets) if (b.bucketStart < before) this.buckets.delete(k);
  }
  restore(): AggregateRows {
    const buckets = [...this.buckets.values()];
    const open = buckets.filter((b) => b.json === null);
    return {
      merged: buckets.filter((b): b is BucketRow => b.json !== null),
      open: [...this.partials.values()].filter((p) =>
        open.some((b) => b.view === p.view && b.bucketStart === p.bucketStart),
      ),
    };
  }
}

/** A small deterministic PRNG, so failures reproduce. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

const NOW = Date.UTC(2026, 11, 1, 12, 30, 2); // 2 s into a minute: the last minute is still open
const minute = (k: number) => Math.floor(NOW / BUCKET_MS) * BUCKET_MS - k * BUCKET_MS;

function event(rand: () => number, receivedAt: number, i: number): ViewEvent {
  const kind = rand();
  const path = ["/", "/docs", "/pricing", "/blog"][Math.floor(rand() * 4)] as string;
  const data: Record<string, unknown> =
    kind < 0.5
      ? { path }
      : kind < 0.75
        ? { name: "TypeError", message: `m${Math.floor(rand() * 3)}`, stack: "Error\n at f (a.js:1:2)" }
        : { route: path, duration: Math.round(rand() * 5000) / 10 };
  return {
    id: `e${i}`,
    ts: receivedAt - Math.floor(rand() * 1000),
    receivedAt,
    source: "web",
    type: kind < 0.5 ? "pageview" : kind < 0.75 ? "error" : "request",
    importance: "normal",
    userId: `u${Math.floor(rand() * 50)}`,
    anonymousId: null,
    sessionId: null,
    data,
  };
}

/** Replicas with events spread over the last `minutes` minutes, each a ViewStore as a replica keeps. */
function replicas(count: number, minutes: number, seed = 1): ViewStore[] {
  const rand = random(seed);
  const stores = Array.from({ length: count }, () => new ViewStore(BUILTIN_VIEWS));
  for (let i = 0; i < count * minutes * 30; i++) {
    const at = minute(Math.floor(rand() * minutes)) + Math.floor(rand() * BUCKET_MS);
    stores[i % count]?.add(event(rand, Math.min(at, NOW), i));
  }
  return stores;
}

/** Every bucket of every replica, pushed as replicas push them (their persisted rows). */
function pushAll(aggregate: ViewAggregate, stores: ViewStore[], now = NOW): void {
  stores.forEach((store, r) => {
    for (const row of store.takeDirty()) aggregate.put({ ...row, replica: `r${r}` }, now);
  });
}

/** What a replica answered to a view request before aggregators: its partials over the window, as JSON. */
function gossipAnswer(stores: ViewStore[], view: string, from: number, to: number): unknown[] {
  const replies = stores.map(
    (s) => JSON.parse(JSON.stringify(s.serializePartials(view, from, to))) as SerializedPartials,
  );
  const definition = BUILTIN_VIEWS.find((v) => v.name === view)!;
  return mergePartials(definition, replies, { limit: 1000 });
}

const pageview = (receivedAt: number, path: string, userId: string): ViewEvent => ({
  id: `${path}-${userId}-${receivedAt}`,
  ts: receivedAt,
  receivedAt,
  source: "web",
  type: "pageview",
  importance: "normal",
  userId,
  anonymousId: null,
  sessionId: null,
  data: { path },
});

/** One replica's pageviews partials of a minute as it would push them. */
function bucket(replica: string, start: number, views: Array<[path: string, user: string]>): ReplicaBucket {
  const store = new ViewStore([pageviews]);
  for (const [path, user] of views) store.add(pageview(start + 1, path, user));
  return { ...store.serializeBucket("pageviews", start)!, replica };
}

describe("ViewAggregate", () => {
  it("answers what merging every replica's partials answers, over closed and open minutes", () => {
    const stores = replicas(6, 8);
    const aggregate = new ViewAggregate(BUILTIN_VIEWS, new MemoryStore());
    pushAll(aggregate, stores);
    for (const view of ["pageviews", "errors", "latency"]) {
      for (const windowMs of [60_000, 3 * 60_000, 10 * 60_000]) {
        const to = NOW + 1;
        const got = aggregate.rows(view, to - windowMs, to, NOW, { limit: 1000 });
        expect(got.length, `${view} over ${windowMs} ms`).toBeGreaterThan(1);
        expect(got, `${view} over ${windowMs} ms`).toEqual(gossipAnswer(stores, view, to - windowMs, to));
      }
    }
  });

  it("replaces a replica's earlier push of a minute with its later one, closed minutes too", () => {
    const store = new MemoryStore();
    const aggregate = new ViewAggregate([pageviews], store);
    const open = minute(0);
    const closed = minute(5);
    aggregate.put(bucket("r1", open, [["/a", "u1"]]), NOW);
    aggregate.put(bucket("r1", closed, [["/a", "u1"]]), NOW);
    aggregate.put(bucket("r2", open, [["/a", "u2"]]), NOW);
    expect(aggregate.rows("pageviews", closed, NOW + 1, NOW)).toEqual([{ path: "/a", views: 3, uniques: 2 }]);
    // r1's minutes now hold 2 views each: replaced, not added to.
    aggregate.put(
      bucket("r1", open, [
        ["/a", "u1"],
        ["/a", "u3"],
      ]),
      NOW,
    );
    aggregate.put(
      bucket("r1", closed, [
        ["/a", "u1"],
        ["/a", "u4"],
      ]),
      NOW,
    );
    expect(aggregate.rows("pageviews", closed, NOW + 1, NOW)).toEqual([{ path: "/a", views: 5, uniques: 4 }]);
    expect(aggregate.rows("pageviews", open, NOW + 1, NOW)).toEqual([{ path: "/a", views: 3, uniques: 3 }]);
  });

  it("counts a window that spans closed and open minutes, and closes a minute once its grace is over", () => {
    const store = new MemoryStore();
    const aggregate = new ViewAggregate([pageviews], store);
    const current = minute(0);
    const last = minute(1); // ended 2 s ago: still open for the pushes of its last second
    const earlier = minute(3);
    for (const [start, user] of [
      [current, "u1"],
      [last, "u2"],
      [earlier, "u3"],
    ] as const) {
      aggregate.put(bucket("r1", start, [["/a", user]]), NOW);
    }
    expect(store.buckets.get(`pageviews|${earlier}`)?.json).not.toBeNull();
    expect(store.buckets.get(`pageviews|${last}`)?.json).toBeNull();
    expect(aggregate.rows("pageviews", NOW - 60_000, NOW + 1, NOW)).toEqual([{ path: "/a", views: 2, uniques: 2 }]);
    expect(aggregate.rows("pageviews", NOW - 5 * 60_000, NOW + 1, NOW)).toEqual([{ path: "/a", views: 3, uniques: 3 }]);
    const later = last + BUCKET_MS + CLOSE_GRACE_MS;
    aggregate.closeDue(later);
    expect(JSON.parse(store.buckets.get(`pageviews|${last}`)?.json as string)).toEqual(
      JSON.parse(bucket("x", last, [["/a", "u2"]]).json),
    );
    expect(aggregate.rows("pageviews", NOW - 5 * 60_000, later + 1, later)).toEqual([
      { path: "/a", views: 3, uniques: 3 },
    ]);
  });

  it("answers the same after an eviction, from what it stored", () => {
    const stores = replicas(4, 5, 7);
    const store = new MemoryStore();
    const aggregate = new ViewAggregate(BUILTIN_VIEWS, store);
    pushAll(aggregate, stores);
    const restored = new ViewAggregate(BUILTIN_VIEWS, store, store.restore());
    for (const view of ["pageviews", "errors", "latency"]) {
      const before = aggregate.rows(view, NOW - 600_000, NOW + 1, NOW, { limit: 1000 });
      expect(restored.rows(view, NOW - 600_000, NOW + 1, NOW, { limit: 1000 })).toEqual(before);
    }
  });

  it("forgets minutes past the 48 h retention, in memory and in storage", () => {
    const store = new MemoryStore();
    const aggregate = new ViewAggregate([pageviews], store);
    const old = minute(60);
    aggregate.put(bucket("r1", old, [["/a", "u1"]]), NOW);
    aggregate.put(bucket("r1", minute(0), [["/b", "u1"]]), NOW);
    const later = old + DEFAULT_RETENTION_MS + BUCKET_MS;
    expect(aggregate.rows("pageviews", later - DEFAULT_RETENTION_MS, later + 1, later)).toEqual([
      { path: "/b", views: 1, uniques: 1 },
    ]);
    expect([...store.partials.values()].map((b) => b.bucketStart)).toEqual([minute(0)]);
    // A push of a minute already past the retention is dropped.
    aggregate.put(bucket("r2", old, [["/a", "u2"]]), later);
    expect(store.partialsOf("pageviews", old)).toEqual([]);
  });

  it("drops the buckets of views it does not keep", () => {
    const store = new MemoryStore();
    const aggregate = new ViewAggregate([pageviews], store);
    aggregate.put({ view: "signups", bucketStart: minute(0), replica: "r1", json: "[]" }, NOW);
    expect(store.partials.size).toBe(0);
    expect(aggregate.rows("signups", 0, NOW + 1, NOW)).toEqual([]);
  });
});
