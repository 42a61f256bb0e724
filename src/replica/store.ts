import type { Subscription } from "../gossip/tail";
import type { StoredEvent } from "../protocol/events";
import { EventColumns } from "../sinks/columns";

/** A flush that has started and not yet been confirmed by the sink: retried under the same seq. */
export interface PendingFlush {
  seq: number;
  /** The batch is every buffered event with seq ≤ this. */
  maxEventSeq: number;
  attempt: number;
  /** Epoch ms before which the next retry should not run. */
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

/** The replica's SQLite storage: identity, counters, confirmed batches, the pending flush, neighbors. */
export class ReplicaStore {
  private seqReserved: number;
  private nextSeqValue: number;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    sql.exec(
      `CREATE TABLE IF NOT EXISTS batches (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, body TEXT NOT NULL)`,
    );
    sql.exec(
      `CREATE TABLE IF NOT EXISTS pending_flush (seq INTEGER PRIMARY KEY, max_event_seq INTEGER NOT NULL, attempt INTEGER NOT NULL, retry_at INTEGER NOT NULL, error TEXT)`,
    );
    sql.exec(`CREATE TABLE IF NOT EXISTS neighbors (id TEXT PRIMARY KEY, group_id TEXT NOT NULL)`);
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

  pendingFlush(): PendingFlush | null {
    const row = this.sql
      .exec<{ seq: number; max_event_seq: number; attempt: number; retry_at: number; error: string | null }>(
        `SELECT * FROM pending_flush ORDER BY seq LIMIT 1`,
      )
      .toArray()[0];
    if (!row) return null;
    return {
      seq: row.seq,
      maxEventSeq: row.max_event_seq,
      attempt: row.attempt,
      retryAt: row.retry_at,
      error: row.error,
    };
  }

  savePendingFlush(p: PendingFlush): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO pending_flush (seq, max_event_seq, attempt, retry_at, error) VALUES (?, ?, ?, ?, ?)`,
      p.seq,
      p.maxEventSeq,
      p.attempt,
      p.retryAt,
      p.error,
    );
  }

  completeFlush(p: PendingFlush): void {
    this.deleteBatchesThrough(p.maxEventSeq);
    this.sql.exec(`DELETE FROM pending_flush WHERE seq = ?`, p.seq);
  }

  /** Live-tail subscriptions of the tenant this replica knows (its own and its neighbors'). */
  subscriptions(): Subscription[] {
    return this.sql
      .exec<{ body: string }>(`SELECT body FROM subscriptions`)
      .toArray()
      .map((r) => JSON.parse(r.body) as Subscription);
  }

  saveSubscription(sub: Subscription): void {
    this.sql.exec(`INSERT OR REPLACE INTO subscriptions (id, body) VALUES (?, ?)`, sub.id, JSON.stringify(sub));
  }

  deleteSubscription(id: string): void {
    this.sql.exec(`DELETE FROM subscriptions WHERE id = ?`, id);
  }

  neighbors(): { id: string; group: string }[] {
    return this.sql
      .exec<{ id: string; group_id: string }>(`SELECT id, group_id FROM neighbors`)
      .toArray()
      .map((r) => ({ id: r.id, group: r.group_id }));
  }

  addNeighbor(id: string, group: string): void {
    this.sql.exec(`INSERT OR IGNORE INTO neighbors (id, group_id) VALUES (?, ?)`, id, group);
  }
}
