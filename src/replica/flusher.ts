import type { EventBatch } from "../sinks/batch";
import { deadLetter } from "../sinks/dead-letter";
import { type FlushContext, type Sink, settleAll } from "../sinks/sink";
import type { EventBuffer } from "./buffer";
import type { Delivery, FlushRecord, ReplicaIdentity, ReplicaStore } from "./store";

export interface FlushResult {
  /** What the sinks wrote (object keys, ids), for flushes that completed in this call. */
  files: string[];
  rows: number;
  /** Sinks that failed in this call; their batches are kept and retried. */
  failed: { sink: string; error: string }[];
}

/** What `onflush` is told once every sink has a flush (delivered or dead-lettered). */
export interface FlushReport {
  seq: number;
  rows: number;
  files: string[];
  sinks: Record<string, { state: "delivered" | "dead"; attempts: number; error: string | null }>;
}

export interface FlusherOptions {
  retryBaseMs: number;
  /** Failed tries of one batch at one sink before it goes to the dead-letter prefix. */
  maxAttempts: number;
  bucket: R2Bucket;
  scheduleRetry: (at: number) => Promise<void>;
  onflush: (report: FlushReport) => void;
}

/** Longest wait between retries of a failing sink. */
const MAX_RETRY_MS = 5 * 60_000;

interface DurableWaiter {
  seq: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface SinkStats {
  delivered: number;
  failures: number;
  deadLettered: number;
  lastError: string | null;
}

/**
 * Moves buffered events to the sinks. A flush is recorded in SQLite (its seq range) before any
 * sink sees it, so every retry — also after a restart — carries the same seq and object keys.
 *
 * Each sink keeps its own place: a failing sink retries its oldest batch with exponential
 * backoff and jitter while the other sinks go on with newer flushes, and after `maxAttempts`
 * the batch goes to `deadletter/` in R2 with the error. Committed rows leave SQLite (and the
 * buffer) only when every sink has the flush, delivered or dead-lettered. Durable-mode acks
 * wait for the sinks marked `durable` (the R2 Parquet sink).
 */
export class Flusher {
  private chain: Promise<unknown> = Promise.resolve();
  private waiters: DurableWaiter[] = [];
  private durableTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly sinkStats = new Map<string, SinkStats>();
  running = false;
  flushedRows = 0;
  files = 0;
  failures = 0;
  deadLettered = 0;
  lastError: string | null = null;
  lastFlushAt: number | null = null;

  constructor(
    private readonly store: ReplicaStore,
    private readonly buffer: EventBuffer,
    private readonly sinks: () => Sink[],
    private readonly identity: () => ReplicaIdentity,
    private readonly options: FlusherOptions,
  ) {
    // A delivery still pending at start-up may have reached its sink before the object died:
    // count the restart as a failed try, so sinks keep what that try wrote (see FlushContext.attempt).
    // (A sink with no row for an open flush was added since: it starts at attempt 0, see deliveriesOf.)
    for (const d of store.deliveries()) {
      if (d.state === "pending" && d.attempt === 0) store.saveDelivery({ ...d, attempt: 1 });
    }
  }

  /**
   * Flushes everything buffered now, and retries every sink that is behind at once (backoff is
   * for the alarm; an explicit flush means now). Serialized with other flushes.
   */
  flush(): Promise<FlushResult> {
    const run = this.chain.then(() => this.run(true, true));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The alarm's call: retries only the sinks whose backoff has passed; opens no new flush. */
  retry(): Promise<FlushResult> {
    const run = this.chain.then(() => this.run(false, false));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The earliest time a failing sink is due for its next try, if any is failing. */
  nextRetryAt(): number | null {
    let at: number | null = null;
    for (const d of this.store.deliveries()) {
      if (d.state === "pending" && d.attempt > 0 && (at === null || d.retryAt < at)) at = d.retryAt;
    }
    return at;
  }

  /** Resolves once the event with this seq is inside a flush every durable sink accepted (group commit). */
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

  /** Per-sink counters, and the oldest open flush with its sinks' states (stats). */
  stats(): Record<string, unknown> {
    const open = this.store.openFlushes()[0] ?? null;
    const deliveries = open ? this.store.deliveries(open.seq) : [];
    return {
      sinks: Object.fromEntries(this.sinkNames().map((n) => [n, this.statsOf(n)])),
      openFlushes: this.store.openFlushes().length,
      pendingFlush: open && {
        seq: open.seq,
        maxEventSeq: open.maxEventSeq,
        attempt: Math.max(0, ...deliveries.map((d) => d.attempt)),
        retryAt: Math.min(
          Number.MAX_SAFE_INTEGER,
          ...deliveries.filter((d) => d.state === "pending").map((d) => d.retryAt),
        ),
        error: deliveries.find((d) => d.error)?.error ?? null,
        deliveries: deliveries.map(({ sink, state, attempt, error }) => ({ sink, state, attempt, error })),
      },
    };
  }

  private async run(openNew: boolean, force: boolean): Promise<FlushResult> {
    const result: FlushResult = { files: [], rows: 0, failed: [] };
    this.running = true;
    try {
      if (openNew) this.openFlush();
      const sinks = this.sinks();
      const now = Date.now();
      // A sink that fails (or waits out its backoff) stops there: it keeps its batches in order.
      const stalled = new Set<string>();
      const filesBy = new Map<number, string[]>();
      for (const f of this.store.openFlushes()) {
        const files: string[] = [];
        filesBy.set(f.seq, files);
        const batch = this.buffer.range(f.afterSeq, f.maxEventSeq);
        const deliveries = this.deliveriesOf(f);
        // Every sink's try settles before this run goes on: a flush may reuse the batch's memory.
        await settleAll(
          sinks.map(async (sink) => {
            const d = deliveries.get(sink.name) as Delivery;
            if (d.state !== "pending" || stalled.has(sink.name)) return;
            if (!force && d.retryAt > now) {
              stalled.add(sink.name);
              return;
            }
            const outcome = await this.deliver(sink, f, d, batch);
            if (outcome.error) {
              stalled.add(sink.name);
              result.failed.push({ sink: sink.name, error: outcome.error });
            }
            files.push(...outcome.files);
            result.files.push(...outcome.files);
          }),
        );
        this.settleDurable(f, sinks);
      }
      this.files += result.files.length;
      result.rows = this.complete(result, filesBy);
    } finally {
      this.running = false;
    }
    const next = this.nextRetryAt();
    if (next !== null) void this.options.scheduleRetry(next);
    return result;
  }

  /** Records a flush of everything buffered since the last one, before any sink sees it. */
  private openFlush(): void {
    const last = this.buffer.lastSeq;
    const open = this.store.openFlushes();
    const after =
      open.length > 0
        ? (open[open.length - 1] as FlushRecord).maxEventSeq
        : Number(this.store.meta("flushed_through") ?? -1);
    if (last === null || last <= after) return;
    const f: FlushRecord = {
      seq: this.store.nextFlushSeq(),
      afterSeq: after,
      maxEventSeq: last,
      createdAt: Date.now(),
    };
    this.store.addFlush(f);
    for (const sink of this.sinkNames()) {
      this.store.saveDelivery({ flushSeq: f.seq, sink, state: "pending", attempt: 0, retryAt: 0, error: null });
    }
  }

  private deliveriesOf(f: FlushRecord): Map<string, Delivery> {
    const map = new Map<string, Delivery>();
    for (const d of this.store.deliveries(f.seq)) map.set(d.sink, d);
    for (const sink of this.sinkNames()) {
      if (!map.has(sink))
        map.set(sink, { flushSeq: f.seq, sink, state: "pending", attempt: 0, retryAt: 0, error: null });
    }
    return map;
  }

  /** One try of one sink with one flush; after too many failures, the dead-letter prefix. */
  private async deliver(
    sink: Sink,
    f: FlushRecord,
    d: Delivery,
    batch: EventBatch,
  ): Promise<{ files: string[]; error?: string }> {
    const id = this.identity();
    const stats = this.statsOf(sink.name);
    const { from, to } = batch.receivedRange();
    const ctx: FlushContext = { tenant: id.tenant, replica: id.name, seq: f.seq, from, to, attempt: d.attempt };
    try {
      const files = batch.length > 0 ? await sink.write(batch, ctx) : [];
      this.store.saveDelivery({ ...d, state: "delivered", error: null });
      stats.delivered++;
      return { files };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const attempt = d.attempt + 1;
      stats.failures++;
      stats.lastError = message;
      this.failures++;
      this.lastError = `${sink.name}: ${message}`;
      if (attempt >= this.options.maxAttempts) {
        try {
          const key = await deadLetter(this.options.bucket, batch, ctx, sink.name, message, attempt);
          this.store.saveDelivery({ ...d, state: "dead", attempt, error: message });
          stats.deadLettered++;
          this.deadLettered++;
          return { files: [key] }; // settled: the sink goes on with its next batch
        } catch (dlqErr) {
          console.error("ducktail: dead-letter write failed", dlqErr);
        }
      }
      const delay = Math.min(MAX_RETRY_MS, this.options.retryBaseMs * 2 ** (attempt - 1));
      const retryAt = Date.now() + delay * (0.75 + Math.random() * 0.5);
      this.store.saveDelivery({ ...d, attempt, retryAt, error: message });
      if (sink.durable) this.settle(f.maxEventSeq, new Error(message));
      return { files: [], error: message };
    }
  }

  /** Completes the open flushes, oldest first, that every sink has; returns their rows. */
  private complete(result: FlushResult, filesBy: Map<number, string[]>): number {
    let rows = 0;
    // Every sink that read these rows is done with them: their memory may take new events.
    const reuse = this.sinks().every((sink) => sink.releasesBatch === true);
    for (const f of this.store.openFlushes()) {
      const deliveries = [...this.deliveriesOf(f).values()];
      if (deliveries.some((d) => d.state === "pending")) break;
      const batchRows = this.buffer.count(f.afterSeq, f.maxEventSeq);
      this.store.completeFlush(f);
      this.store.setMeta("flushed_through", String(f.maxEventSeq));
      this.buffer.removeThrough(f.maxEventSeq, reuse);
      rows += batchRows;
      this.flushedRows += batchRows;
      this.lastFlushAt = Date.now();
      this.options.onflush({
        seq: f.seq,
        rows: batchRows,
        files: filesBy.get(f.seq) ?? [],
        sinks: Object.fromEntries(
          deliveries.map((d) => [
            d.sink,
            { state: d.state as "delivered" | "dead", attempts: d.attempt + 1, error: d.error },
          ]),
        ),
      });
      this.settle(f.maxEventSeq, null);
    }
    if (result.failed.length === 0) this.lastError = null;
    return rows;
  }

  /** Durable waiters of a flush resolve once every durable sink delivered it (and every earlier flush). */
  private settleDurable(f: FlushRecord, sinks: Sink[]): void {
    const durable = sinks.filter((s) => s.durable);
    const required = durable.length > 0 ? durable : sinks;
    for (const open of this.store.openFlushes()) {
      if (open.seq > f.seq) break;
      const deliveries = this.deliveriesOf(open);
      if (!required.every((s) => deliveries.get(s.name)?.state === "delivered")) return;
    }
    this.settle(f.maxEventSeq, null);
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

  private sinkNames(): string[] {
    const names = this.sinks().map((s) => s.name);
    if (new Set(names).size !== names.length) throw new Error(`sink names must be unique: ${names.join(", ")}`);
    return names;
  }

  private statsOf(name: string): SinkStats {
    let s = this.sinkStats.get(name);
    if (!s) {
      s = { delivered: 0, failures: 0, deadLettered: 0, lastError: null };
      this.sinkStats.set(name, s);
    }
    return s;
  }
}
