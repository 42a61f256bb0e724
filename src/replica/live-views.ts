import type { AggregatorCalls, ViewAnswer } from "../protocol/calls";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import type { NormalizedEvent } from "../protocol/events";
import { BUCKET_MS, type BucketRow, bucketStart, DEFAULT_RETENTION_MS, ViewStore } from "../views/buckets";
import { FusedBuiltinViews } from "../views/fused";
import { type AnyView, blankViewEvent, refillViewEvent, type ViewEvent } from "../views/views";
import { ViewPusher } from "./view-pusher";

/** What materialized views need from their replica. */
export interface ViewsHost {
  uid: string;
  sql: SqlStorage;
  /** The tenant's view aggregator; null while the replica does not know its tenant. */
  aggregator(): AggregatorCalls | null;
  /** Wakes the replica by `at` even if it is evicted meanwhile (its alarm), unless it wakes sooner. */
  alarmBy(at: number): void;
}

/** A view query: the window back from now, and how to order and cut the rows. */
export interface ViewQuery {
  name: string;
  windowMs: number;
  by?: string;
  limit?: number;
  /** With a step (ms, whole minutes): the view over time in buckets of it (src/views/series.ts). */
  stepMs?: number;
}

/** A view query as a client sends it (the socket's `mv` frame): the aggregator's route checks it. */
export interface ViewRequest {
  name: string;
  window?: string;
  by?: string;
  limit?: number;
  /** Over time, in buckets of this step (`5m`); the aggregator's route checks it. */
  step?: string;
}

/** Dirty minute buckets are saved and pushed at most this often (and before the object can hibernate). */
const SAVE_EVERY_MS = 1_000;
/** The first change after a quiet second is saved and pushed this soon, so views follow an idle replica closely. */
const FIRST_SAVE_MS = 50;
/** A save makes sure the alarm wakes the replica by then, to push what it saved should it be evicted or crash first. */
const RESUME_PUSH_MS = 10_000;
const MAX_WINDOW_MS = DEFAULT_RETENTION_MS;
const FAILURE_LOG_EVERY_MS = 60_000;

/** Parses `5m`, `1h`, `24h`, `90s`, `2d` (at most the 48 h retention). */
export function parseWindow(raw: string | null | undefined): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(raw ?? "1h");
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const ms = m ? Number(m[1]) * unit[m[2] as keyof typeof unit] : Number.NaN;
  if (!(ms > 0 && ms <= MAX_WINDOW_MS)) {
    throw new DuckTailError(ErrorCode.badRequest, "window must be like 5m, 1h or 24h, at most 48h");
  }
  return ms;
}

/**
 * A replica's materialized views: every ingested event goes into per-minute partials
 * (src/views), persisted in SQLite so they survive eviction, and kept 48 h. At most once a second
 * (off the ingest path) the changed minutes are saved and pushed to the tenant's view aggregator
 * (./view-pusher.ts), which merges every replica's and answers queries (./view-aggregator.ts).
 */
export class LiveViews {
  private readonly store: ViewStore;
  private readonly pusher: ViewPusher;
  private saveTimer: ReturnType<typeof setTimeout> | null = null;
  private savedAt = Number.NEGATIVE_INFINITY;
  /** Batches a view threw on (see `failed`). */
  failures = 0;
  private lastFailureLog = Number.NEGATIVE_INFINITY;
  /** The one event object `addEach` refills for every event. */
  private readonly scratch: ViewEvent = blankViewEvent();
  /** `addEach`'s one pass for the built-in views, when they are the only ones. */
  private readonly fused: FusedBuiltinViews | null;

  constructor(
    private readonly host: ViewsHost,
    views: readonly AnyView[],
  ) {
    this.store = new ViewStore(views);
    this.fused = FusedBuiltinViews.covers(this.store) ? new FusedBuiltinViews(this.store) : null;
    host.sql.exec(
      `CREATE TABLE IF NOT EXISTS view_buckets (view TEXT NOT NULL, bucket_start INTEGER NOT NULL, json TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (view, bucket_start))`,
    );
    // Rows saved before pushes existed have no seq: 1, so that the first push carries them.
    const hasSeq = host.sql
      .exec<{ n: number }>(`SELECT COUNT(*) AS n FROM pragma_table_info('view_buckets') WHERE name = 'seq'`)
      .toArray()[0]?.n;
    if (hasSeq === 0) host.sql.exec(`ALTER TABLE view_buckets ADD COLUMN seq INTEGER NOT NULL DEFAULT 1`);
    host.sql.exec(`CREATE INDEX IF NOT EXISTS view_buckets_seq ON view_buckets (seq)`);
    this.pusher = new ViewPusher({
      uid: host.uid,
      sql: host.sql,
      aggregator: () => host.aggregator(),
      alarmBy: (at) => host.alarmBy(at),
    });
    const since = Date.now() - DEFAULT_RETENTION_MS;
    host.sql.exec(`DELETE FROM view_buckets WHERE bucket_start < ?`, since - BUCKET_MS);
    for (const row of host.sql.exec<{ view: string; bucket_start: number; json: string }>(
      `SELECT view, bucket_start, json FROM view_buckets`,
    )) {
      this.store.loadBucket({ view: row.view, bucketStart: row.bucket_start, json: row.json });
    }
    // Saved before an eviction or a crash and never acked: push it now.
    if (this.pusher.pending) this.schedule();
  }

  /** How many views are maintained (none when the VIEWS var says so). */
  get size(): number {
    return this.store.size;
  }

  /** The seq of the latest saved change (what a load report tells the coordinator). */
  get seq(): number {
    return this.pusher.seq;
  }

  /** Pushes that failed (and were retried). */
  get pushFailures(): number {
    return this.pusher.failures;
  }

  add(events: readonly ViewEvent[]): void {
    try {
      for (const e of events) this.store.add(e);
    } catch (err) {
      this.failed(err);
    }
    if (this.saveTimer === null) this.schedule();
  }

  /**
   * Adds normalized events without building an object per event: the built-in views, when they
   * are the only ones, in one fused pass; otherwise one view event is refilled for each (views must
   * not keep the event object itself; keeping `event.data` is fine). Event k's parsed data is the
   * `data` of `raw[indexes[k]]`, the object it was normalized from.
   */
  addEach(
    events: readonly NormalizedEvent[],
    raw: readonly unknown[],
    indexes: readonly number[],
    receivedAt: number,
  ): void {
    const start = bucketStart(receivedAt);
    try {
      if (this.fused) this.fused.add(events, raw, indexes, receivedAt, start);
      else this.addRefilled(events, raw, indexes, receivedAt, start);
    } catch (err) {
      this.failed(err);
    }
    if (this.saveTimer === null) this.schedule();
  }

  private addRefilled(
    events: readonly NormalizedEvent[],
    raw: readonly unknown[],
    indexes: readonly number[],
    receivedAt: number,
    start: number,
  ): void {
    for (let k = 0; k < events.length; k++) {
      const data = (raw[indexes[k] as number] as { data?: unknown }).data;
      this.store.add(refillViewEvent(this.scratch, events[k] as NormalizedEvent, data, receivedAt), start);
    }
  }

  /**
   * A view threw (a bug in a custom view, say): the events are buffered and acked all the same,
   * the views miss the rest of this batch, and the error is logged at most once a minute.
   */
  private failed(err: unknown): void {
    this.failures++;
    const now = Date.now();
    if (now - this.lastFailureLog < FAILURE_LOG_EVERY_MS) return;
    this.lastFailureLog = now;
    console.error(`ducktail: a materialized view failed (${this.failures} batches so far); its counts miss them`, err);
  }

  /** Saves and pushes soon: a second after the last save, or at once after a quiet spell. */
  private schedule(): void {
    const delay = Math.max(FIRST_SAVE_MS, this.savedAt + SAVE_EVERY_MS - Date.now());
    this.saveTimer = setTimeout(() => {
      this.save();
      if (this.pusher.pending) void this.pusher.push();
    }, delay);
  }

  /** Writes the changed minute buckets (under the next push seq) and forgets the expired ones. */
  save(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    this.savedAt = Date.now();
    const rows: BucketRow[] = this.store.takeDirty();
    if (rows.length > 0) {
      const seq = this.pusher.nextSeq();
      for (const r of rows) {
        this.host.sql.exec(
          `INSERT OR REPLACE INTO view_buckets (view, bucket_start, json, seq) VALUES (?, ?, ?, ?)`,
          r.view,
          r.bucketStart,
          r.json,
          seq,
        );
      }
      this.host.alarmBy(this.savedAt + RESUME_PUSH_MS);
    }
    for (const r of this.store.prune(Date.now())) {
      this.host.sql.exec(`DELETE FROM view_buckets WHERE view = ? AND bucket_start = ?`, r.view, r.bucketStart);
    }
  }

  /**
   * Saves and pushes now, even with nothing new: an aggregator that lost its state then asks for
   * everything again (a resync).
   */
  pushNow(): void {
    this.save();
    void this.pusher.push(true);
  }

  /**
   * The alarm: saves, pushes what the aggregator has not acked (after an eviction or a crash too),
   * and answers when to be woken again for it, or null.
   */
  async onalarm(): Promise<number | null> {
    this.save();
    await this.pusher.push();
    return this.pusher.wakeAt();
  }

  /** Asks the tenant's view aggregator for a view merged over every replica. */
  async query(q: ViewRequest): Promise<ViewAnswer> {
    const aggregator = this.host.aggregator();
    if (!aggregator) throw new DuckTailError(ErrorCode.internal, "replica has no tenant yet");
    const params = new URLSearchParams({ name: q.name });
    if (q.window !== undefined) params.set("window", q.window);
    if (q.by !== undefined) params.set("by", q.by);
    if (q.limit !== undefined) params.set("limit", String(q.limit));
    if (q.step !== undefined) params.set("step", q.step);
    return aggregator.query(params);
  }
}
