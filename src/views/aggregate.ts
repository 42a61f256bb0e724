import {
  BUCKET_MS,
  type BucketRow,
  bucketStart,
  DEFAULT_RETENTION_MS,
  finalizeRows,
  mergeReplies,
  type RowOptions,
  type SerializedPartials,
  serializePartials,
} from "./buckets";
import { seriesOf, type ViewSeries } from "./series";
import type { AnyView } from "./views";

/**
 * How long after its end a minute stays open: replicas push about once a second, so the pushes
 * holding a minute's last events arrive within it. A push for a minute already closed is taken
 * all the same (the minute is merged again), so the grace only saves work.
 */
export const CLOSE_GRACE_MS = 5_000;

/** One replica's partials of one minute bucket, as pushed (`json` is SerializedPartials text). */
export interface ReplicaBucket {
  view: string;
  bucketStart: number;
  replica: string;
  json: string;
}

/**
 * What an aggregate keeps in storage so that it survives eviction: every replica's latest partials
 * per minute, and per minute its merge once closed. The view aggregator keeps them in SQLite.
 */
export interface AggregateStore {
  /** Replaces `replica`'s partials of the bucket. */
  putPartials(bucket: ReplicaBucket): void;
  /** Every replica's partials of the bucket (JSON text). */
  partialsOf(view: string, bucketStart: number): string[];
  /** Notes a bucket as open: it has partials and no merge yet. */
  opened(view: string, bucketStart: number): void;
  /** Stores the merge of a closed bucket (replacing any earlier one). */
  putMerged(row: BucketRow): void;
  /** Forgets the buckets that start before `before`. */
  prune(before: number): void;
}

/** What an aggregate is restored from: the merged closed buckets, and the partials of the open ones. */
export interface AggregateRows {
  merged: Iterable<BucketRow>;
  open: Iterable<ReplicaBucket>;
}

interface OpenBucket {
  /** Each replica's latest partials of the minute. */
  readonly replicas: Map<string, Map<string, unknown>>;
  /** Their merge, kept until the next push for the minute. */
  merged: Map<string, unknown> | null;
}

interface ViewState {
  readonly view: AnyView;
  /** Closed minutes: every replica's partials merged once, by minute start. */
  readonly closed: Map<number, Map<string, unknown>>;
  /** Open minutes (the current one, and the last one for a few seconds), by minute start. */
  readonly open: Map<number, OpenBucket>;
}

/**
 * The views of a tenant merged over its replicas, for the view aggregator. Replicas push the
 * minute buckets they changed, each the replica's whole partial of that minute, so a push replaces
 * what the replica pushed of the minute before (never adds to it). A minute stays open while its
 * pushes may still come; then every replica's partials of it are merged once and the minute is
 * kept merged. A query merges the window's closed minutes and the few open ones: its cost does not
 * grow with the number of replicas, and its answer is what merging every replica's partials
 * (`mergePartials`) gives, merges being associative and commutative.
 *
 * Pure: the clock is an argument and storage is behind {@link AggregateStore}. Memory holds the
 * merged closed minutes of the 48 h retention (what one replica holds of its own) and the open
 * minutes' partials per replica; every replica's partials of closed minutes stay in storage only.
 */
export class ViewAggregate {
  private readonly states = new Map<string, ViewState>();
  private prunedAt = Number.NEGATIVE_INFINITY;

  constructor(
    views: readonly AnyView[],
    private readonly store: AggregateStore,
    restored: AggregateRows = { merged: [], open: [] },
  ) {
    for (const view of views) this.states.set(view.name, { view, closed: new Map(), open: new Map() });
    for (const row of restored.merged) {
      const state = this.states.get(row.view);
      if (state) state.closed.set(row.bucketStart, parse(state.view, row.json));
    }
    for (const b of restored.open) {
      const state = this.states.get(b.view);
      if (state) this.openBucket(state, b.bucketStart).replicas.set(b.replica, parse(state.view, b.json));
    }
  }

  /** The view called `name`, if the aggregate keeps it. */
  view(name: string): AnyView | undefined {
    return this.states.get(name)?.view;
  }

  /** Names of the views kept, in registration order. */
  names(): string[] {
    return [...this.states.keys()];
  }

  /**
   * Takes one replica's partials of a minute, replacing what it pushed of that minute before.
   * Buckets of views not kept here and buckets past the retention are dropped.
   */
  put(bucket: ReplicaBucket, now: number): void {
    const state = this.states.get(bucket.view);
    if (!state || bucket.bucketStart + BUCKET_MS <= now - DEFAULT_RETENTION_MS) return;
    this.closeDue(now);
    this.store.putPartials(bucket);
    const start = bucket.bucketStart;
    if (isOpen(start, now)) {
      const open = this.openBucket(state, start);
      if (open.replicas.size === 0) this.store.opened(state.view.name, start);
      open.replicas.set(bucket.replica, parse(state.view, bucket.json));
      open.merged = null;
      return;
    }
    // A closed minute (a replica catching up after a restart or a resync): merge it again from
    // every replica's partials, this one's new ones included.
    const replies = this.store.partialsOf(state.view.name, start).map((json) => JSON.parse(json) as SerializedPartials);
    this.close(state, start, mergeReplies(state.view, replies));
  }

  /**
   * The partials of view `name` merged over every replica and every minute that overlaps
   * [fromMs, toMs) (the window widens to whole minutes, as a replica's `ViewStore.partials`).
   * Fresh: changing them does not change the aggregate.
   */
  partials(name: string, fromMs: number, toMs: number, now: number): Map<string, unknown> {
    const merged = new Map<string, unknown>();
    const state = this.states.get(name);
    if (!state) return merged;
    this.closeDue(now);
    this.pruneDue(now);
    const first = bucketStart(fromMs);
    for (const [start, partials] of state.closed) {
      if (start >= first && start < toMs) mergeInto(state.view, merged, partials);
    }
    for (const [start, open] of state.open) {
      if (start >= first && start < toMs) mergeInto(state.view, merged, this.mergedOpen(state, open));
    }
    return merged;
  }

  /**
   * View `name` over time: the minutes overlapping [fromMs, toMs), merged over every replica,
   * grouped into buckets of `stepMs` (see `seriesOf`). Null for a view not kept here.
   */
  series(
    name: string,
    fromMs: number,
    toMs: number,
    stepMs: number,
    now: number,
    options: RowOptions = {},
  ): ViewSeries | null {
    const state = this.states.get(name);
    if (!state) return null;
    this.closeDue(now);
    this.pruneDue(now);
    const first = bucketStart(fromMs);
    const minutes: [number, Map<string, unknown>][] = [];
    for (const [start, partials] of state.closed) if (start >= first && start < toMs) minutes.push([start, partials]);
    for (const [start, open] of state.open) {
      if (start >= first && start < toMs) minutes.push([start, this.mergedOpen(state, open)]);
    }
    return seriesOf(state.view, minutes, first, toMs, stepMs, options);
  }

  /** {@link partials} finalized into rows, ordered and cut as `finalizeRows` does. */
  rows(name: string, fromMs: number, toMs: number, now: number, options: RowOptions = {}): unknown[] {
    const state = this.states.get(name);
    return state ? finalizeRows(state.view, this.partials(name, fromMs, toMs, now), options) : [];
  }

  /** Closes the open minutes whose pushes are all in: their partials are merged once and stored. */
  closeDue(now: number): void {
    for (const state of this.states.values()) {
      for (const [start, open] of state.open) {
        if (!isOpen(start, now)) this.close(state, start, this.mergedOpen(state, open));
      }
    }
  }

  /** Forgets minutes past the 48 h retention (at most once a minute). */
  pruneDue(now: number): void {
    if (now - this.prunedAt < BUCKET_MS) return;
    this.prunedAt = now;
    const before = bucketStart(now - DEFAULT_RETENTION_MS);
    for (const state of this.states.values()) {
      for (const start of state.closed.keys()) if (start < before) state.closed.delete(start);
      for (const start of state.open.keys()) if (start < before) state.open.delete(start);
    }
    this.store.prune(before);
  }

  private close(state: ViewState, start: number, merged: Map<string, unknown>): void {
    state.open.delete(start);
    state.closed.set(start, merged);
    const json = JSON.stringify(serializePartials(state.view, merged));
    this.store.putMerged({ view: state.view.name, bucketStart: start, json });
  }

  private openBucket(state: ViewState, start: number): OpenBucket {
    let open = state.open.get(start);
    if (!open) {
      open = { replicas: new Map(), merged: null };
      state.open.set(start, open);
    }
    return open;
  }

  private mergedOpen(state: ViewState, open: OpenBucket): Map<string, unknown> {
    if (!open.merged) {
      const merged = new Map<string, unknown>();
      for (const partials of open.replicas.values()) mergeInto(state.view, merged, partials);
      open.merged = merged;
    }
    return open.merged;
  }
}

function isOpen(start: number, now: number): boolean {
  return start + BUCKET_MS + CLOSE_GRACE_MS > now;
}

/** Pushed JSON as live partials (one entry per key). */
function parse(view: AnyView, json: string): Map<string, unknown> {
  return mergeReplies(view, [JSON.parse(json) as SerializedPartials]);
}

/** Merges `partials` into `into`, never changing a partial of `partials` (merged into a fresh `init()` first). */
function mergeInto(view: AnyView, into: Map<string, unknown>, partials: Map<string, unknown>): void {
  for (const [key, partial] of partials) into.set(key, view.merge(into.get(key) ?? view.init(), partial));
}
