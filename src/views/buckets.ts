import type { AnyView, ViewDefinition, ViewEvent } from "./views";
import { BUILTIN_VIEWS } from "./views";

/** Width of a time bucket: partials are kept per view, per minute of `receivedAt`, per key. */
export const BUCKET_MS = 60_000;
/** How long buckets are kept by default: 48 hours. */
export const DEFAULT_RETENTION_MS = 48 * 60 * 60_000;
/** Rows returned by {@link finalizeRows} unless `limit` says otherwise. */
export const DEFAULT_ROW_LIMIT = 100;

/** Start of the bucket holding `ms` (epoch ms). */
export function bucketStart(ms: number): number {
  return Math.floor(ms / BUCKET_MS) * BUCKET_MS;
}

/**
 * Partials of one view as JSON: `[key, partial]` pairs (each partial in its view's `toJSON` form),
 * ascending by key. Pairs, not an object, so that any key, "__proto__" included, is safe. This is
 * what a replica answers to "my partials for view V over [from, to)" and what a bucket row holds.
 */
export type SerializedPartials = Array<[key: string, partial: unknown]>;

/** Names one bucket. */
export interface BucketRef {
  view: string;
  bucketStart: number;
}

/** One bucket as a persisted row `(view, bucket_start, json)`; `json` is {@link SerializedPartials} text. */
export interface BucketRow extends BucketRef {
  json: string;
}

/** How {@link finalizeRows} orders and cuts rows. */
export interface RowOptions {
  /** Numeric row field to sort by, descending. Default: the view's `orderBy`, else rows come in key order. */
  by?: string;
  /** Most rows returned. Default {@link DEFAULT_ROW_LIMIT}. */
  limit?: number;
}

interface Bucket {
  readonly start: number;
  readonly partials: Map<string, unknown>;
  dirty: boolean;
}

interface ViewState {
  readonly view: AnyView;
  readonly buckets: Map<number, Bucket>;
  // Nearly every event lands in the current minute: remember it and skip one map lookup.
  last: Bucket | null;
}

/**
 * The materialized views of one replica, in memory: per view, per minute bucket, per key, one
 * partial. Pure: no storage, no clock. The replica feeds it events on ingest, persists
 * {@link takeDirty} rows (and pushes them to the tenant's view aggregator, src/views/aggregate.ts),
 * restores them with {@link loadBucket} after a restart and calls {@link prune} when it saves.
 */
export class ViewStore {
  private readonly states = new Map<string, ViewState>();
  /** `states` in registration order, for the per-event loop (a Map iterator per event costs). */
  private readonly list: ViewState[] = [];
  private readonly dirtyBuckets: Array<{ view: string; bucket: Bucket }> = [];

  /** @param views the views to maintain. Default {@link BUILTIN_VIEWS}. */
  constructor(views: readonly AnyView[] = BUILTIN_VIEWS) {
    for (const view of views) this.register(view);
  }

  /** Adds a view (a user-defined one, say). A view name is registered once. */
  register(view: AnyView): void {
    if (this.states.has(view.name)) throw new Error(`view "${view.name}" is already registered`);
    const state: ViewState = { view, buckets: new Map(), last: null };
    this.states.set(view.name, state);
    this.list.push(state);
  }

  /** The registered view called `name`, if any. */
  view(name: string): AnyView | undefined {
    return this.states.get(name)?.view;
  }

  /** Names of the registered views, in registration order. */
  names(): string[] {
    return [...this.states.keys()];
  }

  /** How many views are registered. */
  get size(): number {
    return this.list.length;
  }

  /** Routes `event` to every view, in the bucket of its `receivedAt` (`start`, when the caller has it). */
  add(event: ViewEvent, start = bucketStart(event.receivedAt)): void {
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const state = list[i] as ViewState;
      const view = state.view;
      const key = view.key(event);
      if (key === null) continue;
      const bucket = this.current(state, start);
      const partial = bucket.partials.get(key);
      const next = view.add(partial === undefined ? view.init() : partial, event);
      if (next !== partial) bucket.partials.set(key, next);
      this.markDirty(view.name, bucket);
    }
  }

  /** Where `view` is in registration order (its slot), or -1 if it is not registered. */
  slot(view: AnyView): number {
    return this.list.findIndex((state) => state.view === view);
  }

  /** Whether every registered view is one of `views`. */
  only(views: readonly AnyView[]): boolean {
    return this.list.every((state) => views.includes(state.view));
  }

  /**
   * The partials of the bucket at `start` of the view in `slot` (the bucket created if missing),
   * for callers that add to a view's partials themselves (src/views/fused.ts) rather than through
   * its `add`: they create a missing partial with the view's `init` and {@link touch} the bucket
   * once they changed a partial, so that it is saved.
   */
  partialsAt(slot: number, start: number): Map<string, unknown> {
    return this.current(this.list[slot] as ViewState, start).partials;
  }

  /** Marks the bucket at `start` of the view in `slot` changed (see {@link partialsAt}). */
  touch(slot: number, start: number): void {
    const state = this.list[slot] as ViewState;
    this.markDirty(state.view.name, this.current(state, start));
  }

  /**
   * Partials of view `name` merged over every bucket that overlaps [fromMs, toMs) — the window
   * widens to whole minutes. The partials are fresh: changing them does not change the store.
   */
  partials<P>(name: string, fromMs: number, toMs: number): Map<string, P> {
    const state = this.states.get(name);
    const merged = new Map<string, P>();
    if (!state) return merged;
    const view = state.view as ViewDefinition<P, unknown>;
    const first = bucketStart(fromMs);
    for (const bucket of state.buckets.values()) {
      if (bucket.start < first || bucket.start >= toMs) continue;
      for (const [key, partial] of bucket.partials as Map<string, P>) {
        // Merging into a fresh init() keeps the stored partial untouched.
        merged.set(key, view.merge(merged.get(key) ?? view.init(), partial));
      }
    }
    return merged;
  }

  /** {@link partials} as JSON: this store's part of view `name` over [fromMs, toMs). */
  serializePartials(name: string, fromMs: number, toMs: number): SerializedPartials {
    const view = this.states.get(name)?.view;
    return view ? serializePartials(view, this.partials(name, fromMs, toMs)) : [];
  }

  /**
   * Drops buckets that ended at or before `nowMs - retentionMs` (default 48 h) and answers them,
   * so the replica can delete their rows.
   */
  prune(nowMs: number, retentionMs = DEFAULT_RETENTION_MS): BucketRef[] {
    const cutoff = nowMs - retentionMs;
    const dropped: BucketRef[] = [];
    for (const [name, state] of this.states) {
      for (const bucket of state.buckets.values()) {
        if (bucket.start + BUCKET_MS > cutoff) continue;
        state.buckets.delete(bucket.start);
        bucket.dirty = false;
        if (state.last === bucket) state.last = null;
        dropped.push({ view: name, bucketStart: bucket.start });
      }
    }
    if (dropped.length) this.compactDirty();
    return dropped;
  }

  /** Buckets changed since they were last taken by {@link takeDirty} (or loaded), oldest change first. */
  dirty(): BucketRef[] {
    return this.dirtyBuckets.map(({ view, bucket }) => ({ view, bucketStart: bucket.start }));
  }

  /**
   * Serializes every dirty bucket and marks it clean: upsert the rows. An event added after this
   * call dirties its bucket again, so awaiting the write in between loses nothing.
   */
  takeDirty(): BucketRow[] {
    const rows: BucketRow[] = [];
    for (const { view, bucket } of this.dirtyBuckets) {
      bucket.dirty = false;
      rows.push(this.serializeBucket(view, bucket.start)!);
    }
    this.dirtyBuckets.length = 0;
    return rows;
  }

  /** One bucket as a row, or null if the store has no such bucket. Does not change dirtiness. */
  serializeBucket(view: string, bucketStart: number): BucketRow | null {
    const state = this.states.get(view);
    const bucket = state?.buckets.get(bucketStart);
    if (!state || !bucket) return null;
    return { view, bucketStart, json: JSON.stringify(serializePartials(state.view, bucket.partials)) };
  }

  /**
   * Restores a persisted row. Rows of views no longer registered are ignored (answers false).
   * If the bucket already holds partials (events arrived before the restore), the row merges
   * into them and the bucket is dirty; otherwise it is clean.
   */
  loadBucket(row: BucketRow): boolean {
    const state = this.states.get(row.view);
    if (!state) return false;
    const existing = state.buckets.get(row.bucketStart);
    const bucket = existing ?? this.bucket(state, row.bucketStart);
    const view = state.view;
    for (const [key, json] of JSON.parse(row.json) as SerializedPartials) {
      const loaded = view.fromJSON ? view.fromJSON(json) : json;
      const current = bucket.partials.get(key);
      bucket.partials.set(key, current === undefined ? loaded : view.merge(current, loaded));
    }
    if (existing?.partials.size) this.markDirty(row.view, bucket);
    return true;
  }

  /** The bucket at `start`, remembered as the view's last one (nearly every event lands in it). */
  private current(state: ViewState, start: number): Bucket {
    if (state.last === null || state.last.start !== start) state.last = this.bucket(state, start);
    return state.last;
  }

  private bucket(state: ViewState, start: number): Bucket {
    let bucket = state.buckets.get(start);
    if (!bucket) {
      bucket = { start, partials: new Map(), dirty: false };
      state.buckets.set(start, bucket);
    }
    return bucket;
  }

  private markDirty(view: string, bucket: Bucket): void {
    if (bucket.dirty) return;
    bucket.dirty = true;
    this.dirtyBuckets.push({ view, bucket });
  }

  private compactDirty(): void {
    let kept = 0;
    for (const entry of this.dirtyBuckets) if (entry.bucket.dirty) this.dirtyBuckets[kept++] = entry;
    this.dirtyBuckets.length = kept;
  }
}

/** Partials as JSON pairs, ascending by key (so equal states serialize to equal text). */
export function serializePartials<P>(view: ViewDefinition<P, unknown>, partials: Map<string, P>): SerializedPartials {
  const keys = [...partials.keys()].sort();
  return keys.map((key) => {
    const partial = partials.get(key)!;
    return [key, view.toJSON ? view.toJSON(partial) : partial];
  });
}

/**
 * Merges serialized partials — every replica's, or every minute's, in any order — into one partial
 * per key. Inputs are not modified, even when they are live objects rather than parsed JSON.
 */
export function mergeReplies<P>(
  view: ViewDefinition<P, unknown>,
  replies: Iterable<SerializedPartials>,
): Map<string, P> {
  const merged = new Map<string, P>();
  for (const reply of replies) {
    for (const [key, json] of reply) {
      const current = merged.get(key);
      if (view.fromJSON) {
        // fromJSON made a fresh partial: it can be kept and merged into as is.
        const partial = view.fromJSON(json);
        merged.set(key, current === undefined ? partial : view.merge(current, partial));
      } else {
        merged.set(key, view.merge(current ?? view.init(), json as P));
      }
    }
  }
  return merged;
}

/**
 * Finalizes partials into rows: sorted by `by` (default the view's `orderBy`) descending, ties
 * and views without an order by key ascending, then cut to `limit` (default 100). Rows whose `by`
 * field is not a number sort last.
 */
export function finalizeRows<P, R>(
  view: ViewDefinition<P, R>,
  partials: Map<string, P>,
  options: RowOptions = {},
): R[] {
  return finalizeKeyedRows(view, partials, options).map((r) => r.row);
}

/** {@link finalizeRows} with each row's key. */
export function finalizeKeyedRows<P, R>(
  view: ViewDefinition<P, R>,
  partials: Map<string, P>,
  options: RowOptions = {},
): { key: string; row: R }[] {
  const by = options.by ?? view.orderBy;
  const limit = options.limit ?? DEFAULT_ROW_LIMIT;
  const rows = [...partials].map(([key, partial]) => ({ key, row: view.finalize(partial, key) }));
  rows.sort((a, b) => {
    if (by !== undefined) {
      const x = sortValue(a.row, by);
      const y = sortValue(b.row, by);
      if (x !== y) return y - x;
    }
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  });
  return rows.slice(0, Math.max(0, limit));
}

/** Every replica's partials of a view merged and finalized: {@link mergeReplies}, then {@link finalizeRows}. */
export function mergePartials<P, R>(
  view: ViewDefinition<P, R>,
  replies: Iterable<SerializedPartials>,
  options: RowOptions = {},
): R[] {
  return finalizeRows(view, mergeReplies(view, replies), options);
}

function sortValue(row: unknown, field: string): number {
  const v = (row as Record<string, unknown>)[field];
  return typeof v === "number" && !Number.isNaN(v) ? v : Number.NEGATIVE_INFINITY;
}
