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
  readonly name: string;
  /**
   * Writes the batch idempotently (same context.seq → same result) and returns what it wrote
   * (object keys, ids). Read the batch as Arrow with `batch.table()` or as rows with `batch.events()`.
   */
  write(batch: EventBatch, context: FlushContext): Promise<string[]>;
}
