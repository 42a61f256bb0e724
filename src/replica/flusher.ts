import type { EventBatch } from "../sinks/batch";
import type { FlushContext, Sink } from "../sinks/sink";
import type { EventBuffer } from "./buffer";
import type { PendingFlush, ReplicaIdentity, ReplicaStore } from "./store";

export interface FlushResult {
  files: string[];
  rows: number;
}

/** Longest wait between retries of a failing flush. */
const MAX_RETRY_MS = 5 * 60_000;

interface DurableWaiter {
  seq: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Moves buffered events to the sinks, one flush at a time. A flush is recorded in SQLite
 * before the first write, so a retry (or a restart) reuses its seq and object keys, and
 * committed rows leave SQLite only after every sink accepted the batch.
 */
export class Flusher {
  private chain: Promise<unknown> = Promise.resolve();
  private waiters: DurableWaiter[] = [];
  private durableTimer: ReturnType<typeof setTimeout> | null = null;
  running = false;
  flushedRows = 0;
  files = 0;
  failures = 0;
  lastError: string | null = null;
  lastFlushAt: number | null = null;

  constructor(
    private readonly store: ReplicaStore,
    private readonly buffer: EventBuffer,
    private readonly sinks: () => Sink[],
    private readonly identity: () => ReplicaIdentity,
    private readonly retryBaseMs: number,
    private readonly scheduleRetry: (at: number) => Promise<void>,
  ) {
    // A flush still pending at start-up may have reached a sink before the object died:
    // count the restart as a retry so sinks keep what that try wrote.
    const pending = store.pendingFlush();
    if (pending && pending.attempt === 0) store.savePendingFlush({ ...pending, attempt: 1 });
  }

  /** Flushes everything buffered now (and any pending retry first). Serialized with other flushes. */
  flush(): Promise<FlushResult> {
    const target = this.buffer.lastSeq;
    const run = this.chain.then(() => this.flushThrough(target));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Resolves once the event with this seq is inside an object every sink accepted (group commit). */
  waitDurable(seq: number, commitDelayMs: number): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
    if (!this.durableTimer) {
      this.durableTimer = setTimeout(() => {
        this.durableTimer = null;
        this.flush().catch(() => undefined);
      }, commitDelayMs);
    }
    return done;
  }

  private async flushThrough(target: number | null): Promise<FlushResult> {
    const result: FlushResult = { files: [], rows: 0 };
    this.running = true;
    try {
      for (;;) {
        let pending = this.store.pendingFlush();
        if (!pending) {
          const last = this.buffer.lastSeq;
          if (last === null || target === null) break;
          pending = { seq: this.store.nextFlushSeq(), maxEventSeq: last, attempt: 0, retryAt: 0, error: null };
          this.store.savePendingFlush(pending);
        }
        const batch = this.buffer.through(pending.maxEventSeq);
        const files = await this.write(pending, batch);
        result.files.push(...files);
        result.rows += batch.length;
        if (target === null || pending.maxEventSeq >= target) break;
      }
    } finally {
      this.running = false;
    }
    return result;
  }

  private async write(pending: PendingFlush, batch: EventBatch): Promise<string[]> {
    const id = this.identity();
    let files: string[] = [];
    if (batch.length > 0) {
      const { from, to } = batch.receivedRange();
      const ctx: FlushContext = {
        tenant: id.tenant,
        replica: id.name,
        seq: pending.seq,
        from,
        to,
        attempt: pending.attempt,
      };
      try {
        const written = await Promise.all(this.sinks().map((s) => s.write(batch, ctx)));
        files = written.flat();
      } catch (err) {
        this.fail(pending, err);
        throw err;
      }
    }
    this.store.completeFlush(pending);
    this.buffer.removeThrough(pending.maxEventSeq);
    this.flushedRows += batch.length;
    this.files += files.length;
    this.lastFlushAt = Date.now();
    this.lastError = null;
    this.settle(pending.maxEventSeq, null);
    return files;
  }

  private fail(pending: PendingFlush, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const delay = Math.min(MAX_RETRY_MS, this.retryBaseMs * 2 ** pending.attempt);
    const next: PendingFlush = {
      ...pending,
      attempt: pending.attempt + 1,
      retryAt: Date.now() + delay * (0.75 + Math.random() * 0.5),
      error: message,
    };
    this.store.savePendingFlush(next);
    this.failures++;
    this.lastError = message;
    this.settle(pending.maxEventSeq, new Error(message));
    void this.scheduleRetry(next.retryAt);
  }

  private settle(maxSeq: number, err: Error | null): void {
    const keep: DurableWaiter[] = [];
    for (const w of this.waiters) {
      if (w.seq > maxSeq) keep.push(w);
      else if (err) w.reject(err);
      else w.resolve();
    }
    this.waiters = keep;
  }
}
