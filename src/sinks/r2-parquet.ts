import type { EventBatch } from "./batch";
import { encodeParquet } from "./parquet";
import { type FlushContext, type Sink, settleAll } from "./sink";

/** `events/tenant=<t>/dt=<YYYY-MM-DD>/hour=<HH>/<replica>-<seq>.parquet`, by UTC hour of receipt. */
export function objectKey(prefix: string, tenant: string, hourStart: number, replica: string, seq: number): string {
  const iso = new Date(hourStart).toISOString();
  return `${prefix}/tenant=${tenant}/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/${replica}-${seq}.parquet`;
}

/** The default sink: one ZSTD Parquet object per UTC hour in the batch, at a key the retry reuses. */
export class R2ParquetSink implements Sink {
  readonly name = "r2-parquet";
  readonly durable = true;
  readonly releasesBatch = true;
  constructor(
    private readonly bucket: R2Bucket,
    private readonly prefix = "events",
  ) {}

  async write(batch: EventBatch, ctx: FlushContext): Promise<string[]> {
    return settleAll(
      batch.byHour().map(async ([hour, rows]) => {
        const key = objectKey(this.prefix, ctx.tenant, hour, ctx.replica, ctx.seq);
        // After a crash the memory-held part of a batch is gone; an object an earlier try
        // wrote holds it, so a retry keeps that object rather than overwrite it with less.
        if (ctx.attempt > 0 && (await this.bucket.head(key))) return key;
        await this.bucket.put(key, encodeParquet(rows), {
          httpMetadata: { contentType: "application/vnd.apache.parquet" },
          customMetadata: { rows: String(rows.length), replica: ctx.replica, seq: String(ctx.seq) },
        });
        return key;
      }),
    );
  }
}
