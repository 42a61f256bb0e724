import type { ShardReport, ViewAnswer, ViewPush, ViewPushAnswer } from "../protocol/calls";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import { withTimeout } from "../sinks/timeout";
import { type AggregateStore, type ReplicaBucket, ViewAggregate } from "../views/aggregate";
import type { BucketRow } from "../views/buckets";
import { type PushStream, PushStreams } from "../views/streams";
import type { AnyView } from "../views/views";
import type { ViewQuery } from "./live-views";

/** How long the tenant's shard list (and their load reports) is reused before the coordinator is asked again. */
const SHARDS_TTL_MS = 5_000;
/** How long the first query waits for the coordinator's shard list before answering from what it knows. */
const SHARDS_DEADLINE_MS = 2_000;
/** A replica whose counted changes are overdue is asked to push at most this often. */
const POKE_EVERY_MS = 10_000;

/** What the view aggregator needs of the object it lives in. */
export interface AggregatorHost {
  sql: SqlStorage;
  /** The tenant's shards with their latest load reports (the coordinator's registry). */
  shards(tenant: string): Promise<ShardReport[]>;
  /** Asks a shard to push its view changes now. */
  poke(shard: ShardReport, tenant: string): Promise<void>;
  waitUntil(p: Promise<unknown>): void;
}

/**
 * A tenant's view aggregator: one object of the replica class per tenant (`viewAggregatorName`,
 * so it has the replicas' views, custom ones included), to which every replica pushes the minute
 * buckets it changed (src/replica/view-pusher.ts) and of which views are asked. It keeps every
 * replica's latest partials per minute and each closed minute merged once (src/views/aggregate.ts),
 * in SQLite so they survive eviction, and the seq of each replica's pushes
 * (src/views/streams.ts), so that an answer names the replicas whose latest changes it may lack.
 */
export class ViewAggregator {
  private readonly tables: AggregatorTables;
  private readonly aggregate: ViewAggregate;
  private readonly streams: PushStreams;
  private shardList: { tenant: string; at: number; shards: ShardReport[] } | null = null;
  private listing: Promise<ShardReport[]> | null = null;
  /** When each overdue replica was last asked to push. */
  private readonly pokedAt = new Map<string, number>();

  constructor(
    private readonly host: AggregatorHost,
    views: readonly AnyView[],
  ) {
    this.tables = new AggregatorTables(host.sql);
    this.aggregate = new ViewAggregate(views, this.tables, this.tables.restore());
    this.streams = new PushStreams(this.tables.streams());
  }

  /** Takes a replica's push: its buckets replace what it pushed of those minutes before. */
  push(push: ViewPush, now = Date.now()): ViewPushAnswer {
    const verdict = this.streams.accept(push, now);
    if (verdict === "apply") {
      for (const b of push.buckets) {
        this.aggregate.put({ view: b.view, bucketStart: b.bucketStart, replica: push.replica, json: b.json }, now);
      }
    }
    const stream = this.streams.get(push.replica) as PushStream;
    this.tables.saveStream(stream);
    return verdict === "resync" ? { resync: true } : { acked: stream.acked };
  }

  /** A view merged over every replica: the window's closed minutes as merged once, plus the open ones. */
  async query(q: ViewQuery, tenant: string): Promise<ViewAnswer> {
    if (!this.aggregate.view(q.name)) {
      throw new DuckTailError(ErrorCode.notFound, `no view "${q.name}" (have: ${this.aggregate.names().join(", ")})`);
    }
    const shards = await this.shards(tenant);
    const now = Date.now();
    const to = now + 1;
    const from = to - q.windowMs;
    const options = { by: q.by, limit: q.limit };
    const series = q.stepMs === undefined ? null : this.aggregate.series(q.name, from, to, q.stepMs, now, options);
    const rows = series ? series.rows : this.aggregate.rows(q.name, from, to, now, options);
    const { asked, missing, overdue } = this.streams.missing(shards, now);
    this.poke(overdue, shards, tenant, now);
    const replicas = { asked, answered: asked - missing.length, missing };
    return { view: q.name, from, to, replicas, ...series, rows };
  }

  /**
   * Asks the replicas whose counted changes are overdue to push now, in the background: one whose
   * pushes fail retries anyway, but one that has nothing new would never push again to an
   * aggregator that lost its state (its push then gets a resync).
   */
  private poke(overdue: string[], shards: ShardReport[], tenant: string, now: number): void {
    for (const replica of overdue) {
      const shard = shards.find((s) => s.id === replica);
      if (!shard || now - (this.pokedAt.get(replica) ?? Number.NEGATIVE_INFINITY) < POKE_EVERY_MS) continue;
      this.pokedAt.set(replica, now);
      this.host.waitUntil(
        this.host
          .poke(shard, tenant)
          .catch((err) => console.error(`ducktail: asking shard ${shard.n} to push views failed`, err)),
      );
    }
  }

  /**
   * The tenant's shards and their load reports, asked of the coordinator at most every few seconds
   * (it sits on the socket-connect path) and never on a query's path once known: an older list
   * answers while a new one is fetched behind it. If the coordinator cannot answer, the last list
   * (or none: the answer then counts the replicas that pushed) is used.
   */
  private async shards(tenant: string): Promise<ShardReport[]> {
    const cached = this.shardList?.tenant === tenant ? this.shardList : null;
    if (cached && Date.now() - cached.at < SHARDS_TTL_MS) return cached.shards;
    this.listing ??= this.listShards(tenant).finally(() => {
      this.listing = null;
    });
    if (!cached) return this.listing;
    this.host.waitUntil(this.listing);
    return cached.shards;
  }

  private async listShards(tenant: string): Promise<ShardReport[]> {
    try {
      const shards = await withTimeout(this.host.shards(tenant), SHARDS_DEADLINE_MS, "coordinator shard list");
      this.shardList = { tenant, at: Date.now(), shards };
      return shards;
    } catch (err) {
      console.error("ducktail: the view aggregator could not list the shards", err);
      return this.shardList?.tenant === tenant ? this.shardList.shards : [];
    }
  }
}

/**
 * The aggregator's SQLite tables: `agg_partials` (every replica's latest partials per minute),
 * `agg_buckets` (per minute its merge, NULL while open) and `agg_streams` (each replica's pushes).
 * Keys start with the minute, so pruning by age reads an index range.
 */
class AggregatorTables implements AggregateStore {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS agg_partials (bucket_start INTEGER NOT NULL, view TEXT NOT NULL,
      replica TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (bucket_start, view, replica))`);
    sql.exec(`CREATE TABLE IF NOT EXISTS agg_buckets (bucket_start INTEGER NOT NULL, view TEXT NOT NULL,
      json TEXT, PRIMARY KEY (bucket_start, view))`);
    sql.exec(`CREATE TABLE IF NOT EXISTS agg_streams (replica TEXT PRIMARY KEY, epoch TEXT NOT NULL,
      acked INTEGER NOT NULL, more INTEGER NOT NULL, resync INTEGER NOT NULL, last_push_at INTEGER NOT NULL)`);
  }

  /** The merged closed minutes, and every replica's partials of the minutes still open. */
  restore(): { merged: BucketRow[]; open: ReplicaBucket[] } {
    const merged = this.sql
      .exec<{ view: string; bucket_start: number; json: string }>(
        `SELECT view, bucket_start, json FROM agg_buckets WHERE json IS NOT NULL`,
      )
      .toArray()
      .map((r) => ({ view: r.view, bucketStart: r.bucket_start, json: r.json }));
    const open = this.sql
      .exec<{ view: string; bucket_start: number; replica: string; json: string }>(
        `SELECT p.view, p.bucket_start, p.replica, p.json FROM agg_buckets b
         JOIN agg_partials p ON p.bucket_start = b.bucket_start AND p.view = b.view WHERE b.json IS NULL`,
      )
      .toArray()
      .map((r) => ({ view: r.view, bucketStart: r.bucket_start, replica: r.replica, json: r.json }));
    return { merged, open };
  }

  streams(): PushStream[] {
    return this.sql
      .exec<{ replica: string; epoch: string; acked: number; more: number; resync: number; last_push_at: number }>(
        `SELECT replica, epoch, acked, more, resync, last_push_at FROM agg_streams`,
      )
      .toArray()
      .map((r) => ({
        replica: r.replica,
        epoch: r.epoch,
        acked: r.acked,
        more: r.more === 1,
        resync: r.resync === 1,
        lastPushAt: r.last_push_at,
      }));
  }

  saveStream(s: PushStream): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO agg_streams (replica, epoch, acked, more, resync, last_push_at) VALUES (?, ?, ?, ?, ?, ?)`,
      s.replica,
      s.epoch,
      s.acked,
      s.more ? 1 : 0,
      s.resync ? 1 : 0,
      s.lastPushAt,
    );
  }

  putPartials(b: ReplicaBucket): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO agg_partials (bucket_start, view, replica, json) VALUES (?, ?, ?, ?)`,
      b.bucketStart,
      b.view,
      b.replica,
      b.json,
    );
  }

  partialsOf(view: string, bucketStart: number): string[] {
    return this.sql
      .exec<{ json: string }>(`SELECT json FROM agg_partials WHERE bucket_start = ? AND view = ?`, bucketStart, view)
      .toArray()
      .map((r) => r.json);
  }

  opened(view: string, bucketStart: number): void {
    this.sql.exec(
      `INSERT OR IGNORE INTO agg_buckets (bucket_start, view, json) VALUES (?, ?, NULL)`,
      bucketStart,
      view,
    );
  }

  putMerged(row: BucketRow): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO agg_buckets (bucket_start, view, json) VALUES (?, ?, ?)`,
      row.bucketStart,
      row.view,
      row.json,
    );
  }

  prune(before: number): void {
    this.sql.exec(`DELETE FROM agg_partials WHERE bucket_start < ?`, before);
    this.sql.exec(`DELETE FROM agg_buckets WHERE bucket_start < ?`, before);
  }
}
