import type { EventBatch } from "../columns/batch";
import { encodeParquet, readTable } from "../columns/parquet";
import { type DataFileInfo, describeFile } from "../columns/stats";
import { type FlushContext, PermanentSinkError, type Sink, settleAll } from "./sink";
import { DEFAULT_STORAGE_TIMEOUT_MS, timedBucket, withTimeout } from "./timeout";

/** `events/tenant=<t>/dt=<YYYY-MM-DD>/hour=<HH>/<replica>-<seq>.parquet`, by UTC hour of receipt. */
export function objectKey(prefix: string, tenant: string, hourStart: number, replica: string, seq: number): string {
  const iso = new Date(hourStart).toISOString();
  return `${prefix}/tenant=${tenant}/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/${replica}-${seq}.parquet`;
}

/**
 * Where a flush's objects become part of the lake: the tenant's catalog (src/lake/catalog's
 * `flushCommits`). Committing the same flush again must be a no-op.
 */
export interface FlushCommitter {
  commitFlush(tenant: string, flush: { replica: string; seq: number }, files: DataFileInfo[]): Promise<unknown>;
}

/**
 * The default sink: one ZSTD Parquet object per UTC hour in the batch, at a key the retry reuses,
 * then (with a `catalog`) one commit of them all, so readers see the flush whole or not at all.
 * The write resolves only after the commit: a durable ack means "in the lake". Every R2 call and
 * the commit are bounded by `ctx.timeoutMs`; R2 and catalog errors are transient (retried), rows
 * that cannot be encoded are refused for good ({@link PermanentSinkError}).
 */
export class R2ParquetSink implements Sink {
  readonly name = "r2-parquet";
  readonly durable = true;
  readonly releasesBatch = true;
  constructor(
    private readonly bucket: R2Bucket,
    private readonly prefix = "events",
    private readonly catalog?: FlushCommitter,
  ) {}

  async write(batch: EventBatch, ctx: FlushContext): Promise<string[]> {
    const ms = ctx.timeoutMs ?? DEFAULT_STORAGE_TIMEOUT_MS;
    const bucket = timedBucket(this.bucket, ms);
    const files = await settleAll(
      batch.byHour().map(async ([hour, rows]): Promise<DataFileInfo | string> => {
        const key = objectKey(this.prefix, ctx.tenant, hour, ctx.replica, ctx.seq);
        // After a crash the memory-held part of a batch is gone; an object an earlier try
        // wrote holds it, so a retry keeps that object rather than overwrite it with less.
        if (ctx.attempt > 0) {
          if (!this.catalog) {
            if (await bucket.head(key)) return key;
          } else {
            const earlier = await bucket.get(key);
            if (earlier) {
              const bytes = new Uint8Array(await earlier.arrayBuffer());
              return describeFile(key, hour, bytes, readTable(bytes));
            }
          }
        }
        const body = encoded(rows);
        await bucket.put(key, body, {
          httpMetadata: { contentType: "application/vnd.apache.parquet" },
          customMetadata: { rows: String(rows.length), replica: ctx.replica, seq: String(ctx.seq) },
        });
        return this.catalog ? describeFile(key, hour, body, rows.table()) : key;
      }),
    );
    if (this.catalog) {
      const commit = this.catalog.commitFlush(
        ctx.tenant,
        { replica: ctx.replica, seq: ctx.seq },
        files as DataFileInfo[],
      );
      await withTimeout(commit, ms, `catalog commit of ${ctx.replica}#${ctx.seq}`);
    }
    return files.map((f) => (typeof f === "string" ? f : f.key));
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
