import { EventColumns } from "../columns/columns";
import type { Subscription } from "../gossip/tail";
import type { StoredEvent } from "../protocol/events";

/**
 * A flush: the buffered events with `afterSeq` < seq ≤ `maxEventSeq`, recorded before any sink
 * sees them, so every retry (also after a restart) carries the same seq and object keys.
 */
export interface FlushRecord {
  seq: number;
  afterSeq: number;
  maxEventSeq: number;
  createdAt: number;
}

/** Where one sink is with one flush. A flush is complete when every sink is `delivered` or `dead`. */
export interface Delivery {
  flushSeq: number;
  sink: string;
  state: "pending" | "delivered" | "dead";
  /** Failed tries so far (a restart mid-flush counts as one). */
  attempt: number;
  /** Epoch ms before which the next try should not run. */
  retryAt: number;
  error: string | null;
}

export interface ReplicaIdentity {
  tenant: string;
  shard: number;
  /** `<tenant>-<shard>`: the replica column and the object-name prefix. */
  name: string;
}

// Reserving event seqs in blocks keeps buffered acks free of a storage write per batch;
// a crash skips the rest of the block, so seqs stay unique.
const SEQ_BLOCK = 100_000;

/** The replica's SQLite storage: identity, counters, confirmed batches, open flushes, subscriptions (neighbors: HibernatingReplica). */
export class ReplicaStore {
  private seqReserved: number;
  private nextSeqValue: number;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    sql.exec(
      `CREATE TABLE IF NOT EXISTS batches (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, body TEXT NOT NULL)`,
    );
    sql.exec(
      `CREATE TABLE IF NOT EXISTS flushes (seq INTEGER PRIMARY KEY, after_seq INTEGER NOT NULL, max_event_seq INTEGER NOT NULL, created_at INTEGER NOT NULL)`,
    );
    sql.exec(
      `CREATE TABLE IF NOT EXISTS deliveries (flush_seq INTEGER NOT NULL, sink TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER NOT NULL, retry_at INTEGER NOT NULL, error TEXT, PRIMARY KEY (flush_seq, sink))`,
    );
    sql.exec(`CREATE TABLE IF NOT EXISTS subscriptions (id TEXT PRIMARY KEY, body TEXT NOT NULL)`);
    this.seqReserved = Number(this.meta("seq_reserved") ?? 0);
    this.nextSeqValue = this.seqReserved;
  }

  meta(key: string): string | null {
    const row = this.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = ?`, key).toArray()[0];
    return row ? row.value : null;
  }

  setMeta(key: string, value: string): void {
    this.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)`, key, value);
  }

  identity(): ReplicaIdentity | null {
    const raw = this.meta("identity");
    return raw ? (JSON.parse(raw) as ReplicaIdentity) : null;
  }

  setIdentity(id: ReplicaIdentity): void {
    this.setMeta("identity", JSON.stringify(id));
  }

  /** Allocates `count` consecutive event seqs and returns the first. */
  allocateSeqs(count: number): number {
    const first = this.nextSeqValue;
    this.nextSeqValue += count;
    if (this.nextSeqValue > this.seqReserved) {
      this.seqReserved = this.nextSeqValue + SEQ_BLOCK;
      this.setMeta("seq_reserved", String(this.seqReserved));
    }
    return first;
  }

  nextFlushSeq(): number {
    const seq = Number(this.meta("flush_seq") ?? 0);
    this.setMeta("flush_seq", String(seq + 1));
    return seq;
  }

  /** Commits a batch of events (confirmed and durable modes), as encoded by `EventColumns.encode`. */
  insertBatch(firstSeq: number, lastSeq: number, blob: Uint8Array): void {
    const body =
      blob.byteOffset === 0 && blob.byteLength === blob.buffer.byteLength ? blob.buffer : blob.slice().buffer;
    this.sql.exec(`INSERT INTO batches (first_seq, last_seq, body) VALUES (?, ?, ?)`, firstSeq, lastSeq, body);
  }

  /** Every committed batch in seq order, encoded (recovery after a restart). */
  *committedBatches(): Generator<Uint8Array> {
    for (const row of this.sql.exec<{ body: ArrayBuffer | string }>(`SELECT body FROM batches ORDER BY first_seq`)) {
      if (typeof row.body !== "string") {
        yield new Uint8Array(row.body);
        continue;
      }
      // Batches written before the columnar format were JSON arrays of rows.
      const events = JSON.parse(row.body) as StoredEvent[];
      yield EventColumns.from(events, true).encode(0, events.length);
    }
  }

  committedRows(): number {
    const row = this.sql
      .exec<{ n: number }>(`SELECT COALESCE(SUM(last_seq - first_seq + 1), 0) AS n FROM batches`)
      .one();
    return row.n;
  }

  /** Drops committed batches once a sink has accepted them. */
  deleteBatchesThrough(maxEventSeq: number): void {
    this.sql.exec(`DELETE FROM batches WHERE last_seq <= ?`, maxEventSeq);
  }

  /** Flushes not yet complete, oldest first. */
  openFlushes(): FlushRecord[] {
    return this.sql
      .exec<{ seq: number; after_seq: number; max_event_seq: number; created_at: number }>(
        `SELECT * FROM flushes ORDER BY seq`,
      )
      .toArray()
      .map((r) => ({ seq: r.seq, afterSeq: r.after_seq, maxEventSeq: r.max_event_seq, createdAt: r.created_at }));
  }

  addFlush(f: FlushRecord): void {
    this.sql.exec(
      `INSERT INTO flushes (seq, after_seq, max_event_seq, created_at) VALUES (?, ?, ?, ?)`,
      f.seq,
      f.afterSeq,
      f.maxEventSeq,
      f.createdAt,
    );
  }

  /** Recorded delivery states of the open flushes, or of one (a sink with no row has not tried yet). */
  deliveries(flushSeq?: number): Delivery[] {
    return this.sql
      .exec<{
        flush_seq: number;
        sink: string;
        state: string;
        attempt: number;
        retry_at: number;
        error: string | null;
      }>(
        `SELECT * FROM deliveries WHERE ? IS NULL OR flush_seq = ? ORDER BY flush_seq`,
        flushSeq ?? null,
        flushSeq ?? null,
      )
      .toArray()
      .map((r) => ({
        flushSeq: r.flush_seq,
        sink: r.sink,
        state: r.state as Delivery["state"],
        attempt: r.attempt,
        retryAt: r.retry_at,
        error: r.error,
      }));
  }

  saveDelivery(d: Delivery): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO deliveries (flush_seq, sink, state, attempt, retry_at, error) VALUES (?, ?, ?, ?, ?, ?)`,
      d.flushSeq,
      d.sink,
      d.state,
      d.attempt,
      d.retryAt,
      d.error,
    );
  }

  /** Every sink has the flush: its committed rows and its records go. */
  completeFlush(f: FlushRecord): void {
    this.deleteBatchesThrough(f.maxEventSeq);
    this.sql.exec(`DELETE FROM deliveries WHERE flush_seq = ?`, f.seq);
    this.sql.exec(`DELETE FROM flushes WHERE seq = ?`, f.seq);
  }

  /** Live-tail subscriptions of the tenant this replica knows (its own and its neighbors'). */
  subscriptions(): Subscription[] {
    return this.sql
      .exec<{ body: string }>(`SELECT body FROM subscriptions`)
      .toArray()
      .map((r) => JSON.parse(r.body) as Subscription);
  }

  /** Stores subscriptions, 50 to a statement (a statement binds at most 100 values). */
  saveSubscriptions(subs: readonly Subscription[]): void {
    for (let at = 0; at < subs.length; at += 50) {
      const chunk = subs.slice(at, at + 50);
      this.sql.exec(
        `INSERT OR REPLACE INTO subscriptions (id, body) VALUES ${chunk.map(() => "(?, ?)").join(", ")}`,
        ...chunk.flatMap((sub) => [sub.id, JSON.stringify(sub)]),
      );
    }
  }

  deleteSubscription(id: string): void {
    this.sql.exec(`DELETE FROM subscriptions WHERE id = ?`, id);
  }
}
