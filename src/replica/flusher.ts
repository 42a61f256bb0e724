import type { EventBatch } from "../columns/batch";
import { deadLetter } from "../sinks/dead-letter";
import { type FlushContext, isPermanentFailure, type Sink, settleAll } from "../sinks/sink";
import { StorageTimeoutError, withTimeout } from "../sinks/timeout";
import type { EventBuffer } from "./buffer";
import { flushAnswerMs, type RetryPolicy, retryDelay } from "./retry-policy";
import type { Delivery, FlushRecord, ReplicaIdentity, ReplicaStore } from "./store";

export interface FlushResult {
  /** What the sinks wrote (object keys, ids), for flushes that completed in this call. */
  files: string[];
  rows: number;
  /**
   * Sinks that failed in this call (a scheduled flush skips sinks in backoff; an explicit one tries
   * them): their batches are kept and retried. Empty when every sink took what it was given.
   */
  failed: { sink: string; error: string }[];
}

/** What `onflush` is told once every sink has a flush (delivered or dead-lettered). */
export interface FlushReport {
  seq: number;
  rows: number;
  files: string[];
  sinks: Record<string, { state: "delivered" | "dead"; attempts: number; error: string | null }>;
}

export interface FlusherOptions extends RetryPolicy {
  /** First wait after a failed try; doubles per failure up to `retryMaxMs` (FLUSH_RETRY_BASE_MS). */
  retryBaseMs: number;
  /** Failed tries of one batch at one sink, the last refused as permanent, before it is dead-lettered. */
  maxAttempts: number;
  bucket: R2Bucket;
  scheduleRetry: (at: number) => Promise<void>;
  onflush: (report: FlushReport) => void;
}

/** An explicit flush tries a sink in backoff FLUSH_RETRY_BASE_MS after the last failed try, or this if shorter. */
const MAX_FORCE_SPACING_MS = 1_000;

/**
 * A durable wait that ended before R2 had the rows (DURABLE_ACK_TIMEOUT_MS): they are committed
 * to SQLite and stay queued for R2, so the batch must not be sent again.
 */
export class DurableAckTimeout extends Error {
  constructor(readonly ms: number) {
    super(`not in R2 after ${ms} ms`);
    this.name = "DurableAckTimeout";
  }
}

/** A durable sink refused the flush holding the rows for good: they went to `deadletter/`, not to Parquet. */
export class DurableRefused extends Error {
  constructor(readonly reason: string) {
    super(`refused by the durable sink and dead-lettered: ${reason}`);
    this.name = "DurableRefused";
  }
}

interface DurableWaiter {
  seq: number;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** `flush`: open a flush and deliver; `retry`: deliver what is open; `explicit`: flush, past backoffs. */
type RunKind = "flush" | "retry" | "explicit";

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
 * backoff and jitter, whatever asks for a flush (age, thresholds, critical events, durable
 * group commit, the alarm), while the other sinks go on with newer flushes. Transient errors
 * (storage down, timeouts) retry for as long as it takes; only a batch the sink refuses as
 * permanent goes to `deadletter/` after `maxAttempts`. Committed rows leave SQLite (and the
 * buffer) only when every sink has the flush, delivered or dead-lettered. Durable-mode acks
 * wait for the sinks marked `durable` (the R2 Parquet sink), at most `durableAckTimeoutMs`.
 */
export class Flusher {
  private chain: Promise<unknown> = Promise.resolve();
  /** Runs asked for and not yet started, one per kind: later asks join them. */
  private readonly queued: Record<RunKind, Promise<FlushResult> | null> = { flush: null, retry: null, explicit: null };
  /** When the last flush opened (0: not since start-up): every row outside a flush came after it. */
  private lastOpenedAt = 0;
  /** When a try last failed: an explicit flush waits a spacing after it (see MAX_FORCE_SPACING_MS). */
  private lastFailedAt = Number.NEGATIVE_INFINITY;
  /** Writes given up on by their deadline and not yet settled: they may still read their batch. */
  private readonly abandoned = new Set<Promise<unknown>>();
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
   * Flushes what is buffered to the sinks that may take it now (age, thresholds, critical events,
   * durable group commit): a sink in backoff waits, and while every sink does, no new flush
   * opens. Serialized with other flushes; asks while one is queued join it.
   */
  flush(): Promise<FlushResult> {
    return this.enqueue("flush");
  }

  /** Tries the open flushes again at the sinks whose backoff has passed; opens no new flush. */
  retry(): Promise<FlushResult> {
    return this.enqueue("retry");
  }

  /**
   * An explicit flush (POST /flush, the `flush` frame): as {@link flush}, but a sink in backoff is
   * tried once now (or once the last failed try is FLUSH_RETRY_BASE_MS, at most 1 s, old); a
   * failure counts as an attempt, so the backoff after it only grows. Resolves within
   * `flushAnswerMs`, listing what is not flushed in `failed`; a run still under way goes on.
   */
  flushNow(): Promise<FlushResult> {
    const run = this.enqueue("explicit");
    const ms = flushAnswerMs(this.options);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<FlushResult>((resolve) => {
      timer = setTimeout(() => resolve(this.unfinished(`still flushing after ${ms} ms; it goes on`)), ms);
    });
    return Promise.race([run, late]).finally(() => clearTimeout(timer));
  }

  /** The earliest time a failing sink is due for its next try, if any is failing. */
  nextRetryAt(): number | null {
    let at: number | null = null;
    for (const d of this.oldestPending().values()) {
      if (d.attempt > 0 && (at === null || d.retryAt < at)) at = d.retryAt;
    }
    return at;
  }

  /**
   * The alarm's run: a flush if rows outside any flush are due (`dueAt`, the buffer's age flush),
   * else a retry if a failing sink's backoff has passed, else nothing.
   */
  onAlarm(dueAt: number | null, soonestAgeMs: number): Promise<FlushResult | null> {
    const now = Date.now();
    const open = this.openDueAt(dueAt, soonestAgeMs, now);
    if (open !== null && open <= now) return this.flush();
    const retryAt = this.nextRetryAt();
    if (retryAt !== null && retryAt <= now) return this.retry();
    return Promise.resolve(null);
  }

  /** When the alarm should next run (see {@link onAlarm}); null when nothing waits. */
  nextRunAt(dueAt: number | null, soonestAgeMs: number, now = Date.now()): number | null {
    const times = [this.nextRetryAt(), this.openDueAt(dueAt, soonestAgeMs, now)].filter((t) => t !== null);
    return times.length > 0 ? Math.min(...times) : null;
  }

  /**
   * When rows outside any flush are due for one: null when there are none or every sink is in
   * backoff. Rows stuck in a failing flush make the buffer's `dueAt` past; those outside arrived
   * after the last flush opened, so none is due before that plus the soonest age (`high` events').
   */
  private openDueAt(dueAt: number | null, soonestAgeMs: number, now: number): number | null {
    if (dueAt === null || (this.buffer.lastSeq ?? Number.NEGATIVE_INFINITY) <= this.openedThrough()) return null;
    if (!this.someSinkHealthy(now)) return null;
    return Math.max(dueAt, this.lastOpenedAt + soonestAgeMs);
  }

  /**
   * Resolves once the event with this seq is inside a flush every durable sink accepted (group
   * commit). Rejects with {@link DurableAckTimeout} after `durableAckTimeoutMs` (the rows stay
   * queued), or {@link DurableRefused} if a durable sink dead-lettered them.
   */
  waitDurable(seq: number, commitDelayMs: number): Promise<void> {
    const ms = this.options.durableAckTimeoutMs;
    const done = new Promise<void>((resolve, reject) => {
      const waiter: DurableWaiter = {
        seq,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new DurableAckTimeout(ms));
        }, ms),
      };
      this.waiters.push(waiter);
    });
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

  private enqueue(kind: RunKind): Promise<FlushResult> {
    const waiting = this.queued[kind];
    if (waiting) return waiting;
    const run = this.chain.then(() => {
      this.queued[kind] = null;
      return this.run(kind);
    });
    this.queued[kind] = run;
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async run(kind: RunKind): Promise<FlushResult> {
    const explicit = kind === "explicit";
    const result: FlushResult = { files: [], rows: 0, failed: [] };
    this.running = true;
    try {
      const sinks = this.sinks();
      let backoff = this.inBackoff(Date.now());
      if (explicit && backoff.size > 0) {
        // Tries come a spacing apart however often flushes are asked for: a caller looping on
        // POST /flush until it answers 200 is throttled, not a storm.
        const wait = this.lastFailedAt + Math.min(this.options.retryBaseMs, MAX_FORCE_SPACING_MS) - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        backoff = new Map();
      }
      // A sink stops at its first failure or backoff: it keeps its batches in order.
      const stalled = new Set(backoff.keys());
      // A new flush only helps when a sink will try it now; rows wait in the buffer (and SQLite) meanwhile.
      if (kind !== "retry" && stalled.size < sinks.length) this.openFlush();
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
    // Never for a time already past: the alarm would run again at once, and again.
    if (next !== null) void this.options.scheduleRetry(Math.max(next, Date.now() + this.options.retryBaseMs));
    return result;
  }

  /** What an explicit flush answers when its deadline passes first: every sink still behind. */
  private unfinished(error: string): FlushResult {
    const behind = [...this.oldestPending().keys()];
    return { files: [], rows: 0, failed: (behind.length > 0 ? behind : ["flush"]).map((sink) => ({ sink, error })) };
  }

  /** Each sink's oldest delivery still pending (a sink with none is caught up). */
  private oldestPending(): Map<string, Delivery> {
    const names = new Set(this.sinkNames());
    const oldest = new Map<string, Delivery>();
    for (const f of this.store.openFlushes()) {
      for (const d of this.deliveriesOf(f).values()) {
        if (d.state === "pending" && names.has(d.sink) && !oldest.has(d.sink)) oldest.set(d.sink, d);
      }
    }
    return oldest;
  }

  /** Sinks whose oldest pending delivery failed and waits for its `retryAt`, with that delivery. */
  private inBackoff(now: number): Map<string, Delivery> {
    const waiting = new Map<string, Delivery>();
    for (const [sink, d] of this.oldestPending()) if (d.attempt > 0 && d.retryAt > now) waiting.set(sink, d);
    return waiting;
  }

  /** Some sink is not in backoff: a new flush would be tried now. */
  private someSinkHealthy(now: number): boolean {
    return this.inBackoff(now).size < this.sinkNames().length;
  }

  /** The last event seq of each open flush, oldest first. */
  openFlushEnds(): number[] {
    return this.store.openFlushes().map((f) => f.maxEventSeq);
  }

  /** The last event seq inside a flush, open or done. */
  private openedThrough(): number {
    const open = this.store.openFlushes();
    const last = open[open.length - 1];
    return last ? last.maxEventSeq : Number(this.store.meta("flushed_through") ?? -1);
  }

  /** Records a flush of everything buffered since the last one, before any sink sees it. */
  private openFlush(): void {
    const last = this.buffer.lastSeq;
    const after = this.openedThrough();
    if (last === null || last <= after) return;
    const f: FlushRecord = {
      seq: this.store.nextFlushSeq(),
      afterSeq: after,
      maxEventSeq: last,
      createdAt: Date.now(),
    };
    this.store.addFlush(f);
    this.lastOpenedAt = f.createdAt;
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

  /**
   * One try of one sink with one flush. A failure waits out its backoff; only a batch the sink
   * refuses as permanent, `maxAttempts` tries in, goes to the dead-letter prefix.
   */
  private async deliver(
    sink: Sink,
    f: FlushRecord,
    d: Delivery,
    batch: EventBatch,
  ): Promise<{ files: string[]; error?: string }> {
    const id = this.identity();
    const stats = this.statsOf(sink.name);
    const { from, to } = batch.receivedRange();
    const ctx: FlushContext = {
      tenant: id.tenant,
      replica: id.name,
      seq: f.seq,
      from,
      to,
      attempt: d.attempt,
      timeoutMs: this.options.storageTimeoutMs,
    };
    try {
      const files = batch.length > 0 ? await this.bounded(sink, batch, ctx) : [];
      this.store.saveDelivery({ ...d, state: "delivered", error: null });
      stats.delivered++;
      return { files };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const attempt = d.attempt + 1;
      this.lastFailedAt = Date.now();
      stats.failures++;
      stats.lastError = message;
      this.failures++;
      this.lastError = `${sink.name}: ${message}`;
      if (attempt >= this.options.maxAttempts && isPermanentFailure(sink, err)) {
        try {
          const key = await deadLetter(this.options.bucket, batch, ctx, sink.name, message, attempt);
          this.store.saveDelivery({ ...d, state: "dead", attempt, error: message });
          stats.deadLettered++;
          this.deadLettered++;
          if (sink.durable) this.refuse(f, message);
          return { files: [key] }; // settled: the sink goes on with its next batch
        } catch (dlqErr) {
          console.error("ducktail: dead-letter write failed", dlqErr);
        }
      }
      const retryAt = Date.now() + retryDelay(attempt, this.options.retryBaseMs, this.options.retryMaxMs);
      this.store.saveDelivery({ ...d, attempt, retryAt, error: message });
      return { files: [], error: message };
    }
  }

  /**
   * The sink's write, given up on after three storage timeouts (a head and a put, and room to
   * encode) for sinks that do not bound their own calls: a hung write fails the try.
   */
  private bounded(sink: Sink, batch: EventBatch, ctx: FlushContext): Promise<string[]> {
    const write = sink.write(batch, ctx);
    const ms = 3 * this.options.storageTimeoutMs;
    return withTimeout(write, ms, `${sink.name} write`).catch((err: unknown) => {
      if (err instanceof StorageTimeoutError && err.what === `${sink.name} write`) {
        // It may still read the batch: no flushed memory is reused until it settles.
        const left: Promise<unknown> = write.then(
          () => this.abandoned.delete(left),
          () => this.abandoned.delete(left),
        );
        this.abandoned.add(left);
      }
      throw err;
    });
  }

  /** Completes the open flushes, oldest first, that every sink has; returns their rows. */
  private complete(result: FlushResult, filesBy: Map<number, string[]>): number {
    let rows = 0;
    // Every sink that read these rows is done with them: their memory may take new events.
    const reuse = this.abandoned.size === 0 && this.sinks().every((sink) => sink.releasesBatch === true);
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
      this.settle(f.maxEventSeq);
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
    this.settle(f.maxEventSeq);
  }

  /** Resolves the durable waiters of every seq up to `maxSeq`. */
  private settle(maxSeq: number): void {
    this.release((w) => w.seq <= maxSeq, null);
  }

  /** Rejects the durable waiters of a flush a durable sink dead-lettered (theirs only). */
  private refuse(f: FlushRecord, reason: string): void {
    this.release((w) => w.seq > f.afterSeq && w.seq <= f.maxEventSeq, new DurableRefused(reason));
  }

  private release(match: (w: DurableWaiter) => boolean, err: Error | null): void {
    const keep: DurableWaiter[] = [];
    for (const w of this.waiters) {
      if (!match(w)) {
        keep.push(w);
        continue;
      }
      clearTimeout(w.timer);
      if (err) w.reject(err);
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
