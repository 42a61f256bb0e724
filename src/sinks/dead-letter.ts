import type { EventBatch } from "./batch";
import { gzip, ndjsonBytes } from "./ndjson";
import type { FlushContext } from "./sink";
import { DEFAULT_STORAGE_TIMEOUT_MS, timedBucket } from "./timeout";

/**
 * `deadletter/tenant=<t>/sink=<name>/<replica>-<seq>.ndjson.gz`: a batch a sink refused as
 * permanent (see PermanentSinkError), as gzipped NDJSON, with the sink, the last error and the
 * attempts in its metadata. Replay it by reading the object and sending its lines again.
 */
export function deadLetterKey(ctx: FlushContext, sink: string): string {
  return `deadletter/tenant=${ctx.tenant}/sink=${sink}/${ctx.replica}-${ctx.seq}.ndjson.gz`;
}

export async function deadLetter(
  bucket: R2Bucket,
  batch: EventBatch,
  ctx: FlushContext,
  sink: string,
  error: string,
  attempts: number,
): Promise<string> {
  const key = deadLetterKey(ctx, sink);
  // Bounded like the sinks' own calls: a hung put fails the try, and the rows stay for the next.
  await timedBucket(bucket, ctx.timeoutMs ?? DEFAULT_STORAGE_TIMEOUT_MS).put(key, await gzip(ndjsonBytes(batch)), {
    httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
    customMetadata: {
      sink,
      error: error.slice(0, 1024),
      attempts: String(attempts),
      rows: String(batch.length),
      from: String(ctx.from),
      to: String(ctx.to),
    },
  });
  return key;
}
