import type { EventBatch } from "../columns/batch";
import { encodeParquet } from "../columns/parquet";
import { type FlushContext, PermanentSinkError, type Sink, settleAll } from "./sink";
import { DEFAULT_STORAGE_TIMEOUT_MS, timedBucket } from "./timeout";

/** `events/tenant=<t>/dt=<YYYY-MM-DD>/hour=<HH>/<replica>-<seq>.parquet`, by UTC hour of receipt. */
export function objectKey(prefix: string, tenant: string, hourStart: number, replica: string, seq: number): string {
  const iso = new Date(hourStart).toISOString();
  return `${prefix}/tenant=${tenant}/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/${replica}-${seq}.parquet`;
}

/**
 * The default sink: one ZSTD Parquet object per UTC hour in the batch, at a key the retry reuses.
 * Every R2 call is bounded by `ctx.timeoutMs`; R2 errors are transient (retried), rows that cannot
 * be encoded are refused for good ({@link PermanentSinkError}).
 */
export class R2ParquetSink implements Sink {
  readonly name = "r2-parquet";
  readonly durable = true;
  readonly releasesBatch = true;
  constructor(
    private readonly bucket: R2Bucket,
    private readonly prefix = "events",
  ) {}

  async write(batch: EventBatch, ctx: FlushContext): Promise<string[]> {
    const bucket = timedBucket(this.bucket, ctx.timeoutMs ?? DEFAULT_STORAGE_TIMEOUT_MS);
    return settleAll(
      batch.byHour().map(async ([hour, rows]) => {
        const key = objectKey(this.prefix, ctx.tenant, hour, ctx.replica, ctx.seq);
        // After a crash the memory-held part of a batch is gone; an object an earlier try
        // wrote holds it, so a retry keeps that object rather than overwrite it with less.
        if (ctx.attempt > 0 && (await bucket.head(key))) return key;
        await bucket.put(key, encoded(rows), {
          httpMetadata: { contentType: "application/vnd.apache.parquet" },
          customMetadata: { rows: String(rows.length), replica: ctx.replica, seq: String(ctx.seq) },
        });
        return key;
      }),
    );
  }
}

/** The rows as Parquet; an encoder error is about these rows, so no retry would change it. */
function encoded(rows: EventBatch): Uint8Array {
  try {
    return encodeParquet(rows);
  } catch (err) {
    throw new PermanentSinkError(`cannot encode ${rows.length} rows as Parquet: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
