import type { EventBatch } from "./batch";

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
   * Writes the batch and returns what it wrote (object keys, ids); throws to have it retried.
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
