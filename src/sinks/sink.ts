import type { EventBatch } from "../columns/batch";

/** What a sink is told about the batch it writes. */
export interface FlushContext {
  tenant: string;
  /** The replica's name, `<tenant>-<shard>`. */
  replica: string;
  /** The replica's flush sequence number: a retried flush carries the same one. */
  seq: number;
  /** Smallest and largest `receivedAt` in the batch (epoch ms). */
  from: number;
  to: number;
  /** 0 on the first try; a retry (also after a crash) counts up and must not duplicate what an earlier try wrote. */
  attempt: number;
  /**
   * How long one storage call of this try may take (the replica's STORAGE_TIMEOUT_MS, default
   * 10 s): bound each call by it (see `timedBucket`), so a call that never returns fails the try.
   */
  timeoutMs?: number;
}

/**
 * Thrown by a sink that refuses the data itself (a receiver's 400 or 422, a row it cannot encode):
 * no retry will change the answer, so once the batch has failed SINK_MAX_ATTEMPTS tries it goes
 * to `deadletter/`. Any other error is transient (storage down, timeouts, 5xx, network): the
 * batch is retried with capped backoff for as long as it takes, its rows kept in the replica.
 */
export class PermanentSinkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PermanentSinkError";
  }
}

/** A destination for flushed batches. `write` resolves only once the batch is durable there. */
export interface Sink {
  /** Unique among a replica's sinks: delivery state, stats and dead letters are kept by name. */
  readonly name: string;
  /** Durable-mode acks wait until this sink has the batch (true for the R2 Parquet sink). */
  readonly durable?: boolean;
  /**
   * True when `write` keeps nothing of the batch once its promise settles: no reference to the
   * batch, its `table()` or its `events()`, and no work still reading them. When every sink of a
   * replica says so, the replica reuses the memory of flushed events for new ones rather than
   * allocating and zeroing megabytes of fresh buffers per flush. Leave it unset if the sink holds
   * on to batch data (to send it later, say): the replica then never reuses what the sink saw.
   */
  readonly releasesBatch?: boolean;
  /**
   * Whether an error `write` threw means the sink refuses this batch for good (dead-letter it
   * after SINK_MAX_ATTEMPTS tries) rather than "not now" (retry with backoff, forever). Default:
   * only a {@link PermanentSinkError} is permanent.
   */
  isPermanent?(err: unknown): boolean;
  /**
   * Writes the batch and returns what it wrote (object keys, ids); throws to have it retried (see
   * {@link PermanentSinkError} for data it refuses). Bound every storage call by `context.timeoutMs`.
   * Delivery is at least once: a retry carries the same `context.seq`, so write idempotently, or
   * hand `idempotencyKey(context)` to a receiver that dedups. Read the batch as Arrow with
   * `batch.table()` or as rows with `batch.events()`.
   */
  write(batch: EventBatch, context: FlushContext): Promise<string[]>;
}

/**
 * Like `Promise.all`, but settles only once every promise has: a sink that writes several objects
 * must not have its `write` reject while another of its writes is still reading the batch.
 */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** `<tenant>/<replica>/<seq>`: the same for every try of a batch, so receivers can dedup. */
export function idempotencyKey(ctx: FlushContext): string {
  return `${ctx.tenant}/${ctx.replica}/${ctx.seq}`;
}

/** Whether `sink` classifies `err` as a refusal of the data for good (see {@link PermanentSinkError}). */
export function isPermanentFailure(sink: Sink, err: unknown): boolean {
  try {
    return sink.isPermanent ? sink.isPermanent(err) : err instanceof PermanentSinkError;
  } catch {
    return false; // a classifier that throws keeps the rows: transient
  }
}
