import type { PushedBucket, ViewPush, ViewPushAnswer } from "../protocol/calls";
import { withTimeout } from "../sinks/timeout";

/** Bucket JSON per push, about: a backlog (after a restart or a resync) goes in several pushes. */
const MAX_PUSH_BYTES = 512 * 1024;
const PUSH_TIMEOUT_MS = 10_000;
/** A failed push is tried again after 1 s, doubling to 30 s. */
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 30_000;
const FAILURE_LOG_EVERY_MS = 60_000;

/** What the pusher needs of its replica. */
export interface PushHost {
  uid: string;
  sql: SqlStorage;
  /** Sends a push to the tenant's view aggregator; null while the replica does not know its tenant. */
  aggregator(): { push(push: ViewPush): Promise<ViewPushAnswer> } | null;
  /** Wakes the replica by `at` even if it is evicted meanwhile (its alarm). */
  alarmBy(at: number): void;
}

/**
 * Sends a replica's persisted view changes to its tenant's view aggregator, off the ingest path.
 * Every save of changed minute buckets takes the next seq, stored on the rows it writes
 * (`view_buckets.seq`); a push carries every row written after the seq the aggregator acked, each
 * the whole partial of its minute, so nothing is lost by a push that failed: the next one carries
 * its rows again. One push is in flight at a time; a failed one is retried with backoff, by timer
 * and by the alarm should the replica be evicted meanwhile. The seqs, the epoch (a random name for
 * this storage) and the acked seq live in `view_push`, so a restarted replica pushes what it
 * persisted and never got acked. The acked seq is written with the next save rather than on its
 * own: a write of its own would hold every outgoing frame (live tail included) for one more
 * commit a second, and a restart that read an older acked seq only pushes a few minutes again,
 * which the aggregator takes as it takes any whole partial.
 */
export class ViewPusher {
  private readonly epoch: string;
  /** The seq of the latest save. */
  seq: number;
  /** The aggregator has every change up to this seq. */
  private acked: number;
  private inFlight: Promise<void> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retryAt: number | null = null;
  private consecutiveFailures = 0;
  /** Pushes that failed, for stats. */
  failures = 0;
  private lastFailureLog = Number.NEGATIVE_INFINITY;

  constructor(private readonly host: PushHost) {
    const sql = host.sql;
    sql.exec(
      `CREATE TABLE IF NOT EXISTS view_push (id INTEGER PRIMARY KEY CHECK (id = 1), epoch TEXT NOT NULL, seq INTEGER NOT NULL, acked INTEGER NOT NULL)`,
    );
    const row = sql
      .exec<{ epoch: string; seq: number; acked: number }>(`SELECT epoch, seq, acked FROM view_push`)
      .toArray()[0];
    if (row) {
      this.epoch = row.epoch;
      this.seq = row.seq;
      this.acked = row.acked;
    } else {
      // New storage, or buckets saved before pushes existed (seq 1): all of them go out first.
      const max = sql.exec<{ seq: number | null }>(`SELECT MAX(seq) AS seq FROM view_buckets`).toArray()[0]?.seq;
      this.epoch = crypto.randomUUID();
      this.seq = max ?? 0;
      this.acked = 0;
      this.persist();
    }
  }

  /** Whether some persisted change has not been acked by the aggregator. */
  get pending(): boolean {
    return this.seq > this.acked;
  }

  /** The seq for the rows of a save, persisted with them in the same turn. */
  nextSeq(): number {
    this.seq++;
    this.persist();
    return this.seq;
  }

  /**
   * Pushes whatever the aggregator lacks, in pushes of about {@link MAX_PUSH_BYTES}, until it has
   * everything (changes saved meanwhile included); with `always`, at least one push even if it
   * lacks nothing as far as the replica knows. Never rejects: a failure schedules a retry.
   */
  push(always = false): Promise<void> {
    this.inFlight ??= this.run(always).finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /** When the replica should be woken to push again (changes not acked yet), or null. */
  wakeAt(): number | null {
    return this.pending ? (this.retryAt ?? Date.now() + RETRY_BASE_MS) : null;
  }

  private async run(always: boolean): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAt = null;
    for (let first = always; first || this.pending; first = false) {
      const aggregator = this.host.aggregator();
      if (!aggregator) return;
      const push = this.build();
      let answer: ViewPushAnswer;
      try {
        answer = await withTimeout(aggregator.push(push), PUSH_TIMEOUT_MS, "view push");
      } catch (err) {
        this.failed(err);
        return;
      }
      this.consecutiveFailures = 0;
      // A resync: the aggregator lost earlier pushes; everything goes again from seq 0.
      this.acked = "resync" in answer ? 0 : Math.min(answer.acked, this.seq);
    }
  }

  /** Every row written after the acked seq, in seq order, cut after about MAX_PUSH_BYTES at a seq boundary. */
  private build(): ViewPush {
    const buckets: PushedBucket[] = [];
    let bytes = 0;
    let through = this.acked;
    let more = false;
    const rows = this.host.sql.exec<{ view: string; bucket_start: number; json: string; seq: number }>(
      `SELECT view, bucket_start, json, seq FROM view_buckets WHERE seq > ? ORDER BY seq`,
      this.acked,
    );
    for (const row of rows) {
      if (bytes >= MAX_PUSH_BYTES && row.seq !== through) {
        more = true;
        break;
      }
      buckets.push({ view: row.view, bucketStart: row.bucket_start, json: row.json });
      bytes += row.json.length;
      through = row.seq;
    }
    return {
      replica: this.host.uid,
      epoch: this.epoch,
      from: this.acked,
      through: more ? through : this.seq,
      more,
      buckets,
    };
  }

  private failed(err: unknown): void {
    this.failures++;
    this.consecutiveFailures++;
    const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (this.consecutiveFailures - 1));
    const now = Date.now();
    this.retryAt = now + delay;
    this.retryTimer = setTimeout(() => void this.push(), delay);
    this.host.alarmBy(this.retryAt);
    if (now - this.lastFailureLog < FAILURE_LOG_EVERY_MS) return;
    this.lastFailureLog = now;
    console.error(`ducktail: view push failed (${this.failures} so far); retrying in ${delay} ms`, err);
  }

  private persist(): void {
    this.host.sql.exec(
      `INSERT OR REPLACE INTO view_push (id, epoch, seq, acked) VALUES (1, ?, ?, ?)`,
      this.epoch,
      this.seq,
      this.acked,
    );
  }
}
