import type { GossipMessage, GossipReply } from "../gossip/messages";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import type { NormalizedEvent } from "../protocol/events";
import {
  BUCKET_MS,
  type BucketRow,
  bucketStart,
  DEFAULT_RETENTION_MS,
  mergePartials,
  type SerializedPartials,
  ViewStore,
} from "../views/buckets";
import { FusedBuiltinViews } from "../views/fused";
import { type AnyView, blankViewEvent, refillViewEvent, type ViewEvent } from "../views/views";

/** What materialized views need from their replica. */
export interface ViewsHost {
  uid: string;
  sql: SqlStorage;
  /** Every other replica of the tenant (Durable Object ids). */
  neighbors(): string[];
  gossipTo(replica: string, msg: GossipMessage): Promise<GossipReply | null>;
}

/** A view query: the window back from now, and how to order and cut the rows. */
export interface ViewQuery {
  name: string;
  windowMs: number;
  by?: string;
  limit?: number;
}

/** How long a view query waits for each other replica before reporting it missing. */
const DEADLINE_MS = 2_000;
/** Dirty minute buckets are written at most this often (and before the object can hibernate). */
const SAVE_EVERY_MS = 1_000;
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
 * (src/views), persisted in SQLite so they survive eviction, and kept 48 h. A query gathers the
 * window's partials from every replica of the tenant in one gossip round, merges and finalizes
 * them; replicas that do not answer within the deadline are named in `missing`, never silently
 * left out.
 */
export class LiveViews {
  private readonly store: ViewStore;
  private saveTimer: ReturnType<typeof setTimeout> | null = null;
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
      `CREATE TABLE IF NOT EXISTS view_buckets (view TEXT NOT NULL, bucket_start INTEGER NOT NULL, json TEXT NOT NULL, PRIMARY KEY (view, bucket_start))`,
    );
    const since = Date.now() - DEFAULT_RETENTION_MS;
    host.sql.exec(`DELETE FROM view_buckets WHERE bucket_start < ?`, since - BUCKET_MS);
    for (const row of host.sql.exec<{ view: string; bucket_start: number; json: string }>(
      `SELECT view, bucket_start, json FROM view_buckets`,
    )) {
      this.store.loadBucket({ view: row.view, bucketStart: row.bucket_start, json: row.json });
    }
  }

  /** How many views are maintained (none when the VIEWS var says so). */
  get size(): number {
    return this.store.size;
  }

  add(events: readonly ViewEvent[]): void {
    try {
      for (const e of events) this.store.add(e);
    } catch (err) {
      this.failed(err);
    }
    this.saveTimer ??= setTimeout(() => this.save(), SAVE_EVERY_MS);
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
    this.saveTimer ??= setTimeout(() => this.save(), SAVE_EVERY_MS);
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

  /** Writes the changed minute buckets and forgets the expired ones. */
  save(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    const rows: BucketRow[] = this.store.takeDirty();
    for (const r of rows) {
      this.host.sql.exec(
        `INSERT OR REPLACE INTO view_buckets (view, bucket_start, json) VALUES (?, ?, ?)`,
        r.view,
        r.bucketStart,
        r.json,
      );
    }
    for (const r of this.store.prune(Date.now())) {
      this.host.sql.exec(`DELETE FROM view_buckets WHERE view = ? AND bucket_start = ?`, r.view, r.bucketStart);
    }
  }

  /** Answers another replica's `mv` request with this replica's partials. */
  ongossip(msg: GossipMessage): GossipReply | null {
    if (msg.type !== "mv") return null;
    if (!this.store.view(msg.name)) return { type: "unknown", from: this.host.uid };
    return { type: "mv", from: this.host.uid, partials: this.store.serializePartials(msg.name, msg.from, msg.to) };
  }

  /** Merges the window's partials of every replica of the tenant into rows. */
  async query(q: ViewQuery): Promise<Record<string, unknown>> {
    const view = this.store.view(q.name);
    if (!view) {
      throw new DuckTailError(ErrorCode.notFound, `no view "${q.name}" (have: ${this.store.names().join(", ")})`);
    }
    const to = Date.now() + 1;
    const from = to - q.windowMs;
    const replies: SerializedPartials[] = [this.store.serializePartials(q.name, from, to)];
    const neighbors = this.host.neighbors();
    const missing: { replica: string; reason: string }[] = [];
    await Promise.all(
      neighbors.map(async (replica) => {
        try {
          const reply = await withDeadline(this.host.gossipTo(replica, { type: "mv", name: q.name, from, to }));
          if (reply?.type === "mv") replies.push(reply.partials);
          else missing.push({ replica, reason: reply?.type === "unknown" ? "does not have this view" : "no answer" });
        } catch (err) {
          missing.push({ replica, reason: (err as Error).message });
        }
      }),
    );
    const rows = mergePartials(view, replies, { by: q.by, limit: q.limit });
    return {
      view: q.name,
      from,
      to,
      replicas: { asked: neighbors.length + 1, answered: replies.length, missing },
      rows,
    };
  }
}

function withDeadline<T>(p: Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${DEADLINE_MS} ms`)), DEADLINE_MS);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
