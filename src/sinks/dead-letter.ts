import type { EventBatch } from "../columns/batch";
import type { StoredEvent } from "../protocol/events";
import { gzip, ndjsonBytes } from "./ndjson";
import type { FlushContext } from "./sink";
import { DEFAULT_STORAGE_TIMEOUT_MS, timedBucket } from "./timeout";

/**
 * `deadletter/tenant=<t>/sink=<name>/<replica>-<seq>.ndjson.gz`: a batch a sink refused as
 * permanent (see PermanentSinkError), as gzipped NDJSON, with the sink, the last error and the
 * attempts in its metadata. `ducktail deadletter replay` (POST /deadletter/replay) sends it to its
 * sink again under its original flush seq, so the sink's idempotency key is the same.
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

/** What a dead letter's key says: whose, for which sink, and the flush it was. */
export interface DeadLetterName {
  tenant: string;
  sink: string;
  replica: string;
  seq: number;
}

const DEAD_LETTER_KEY = /^deadletter\/tenant=([^/]+)\/sink=([^/]+)\/(.+)-(\d+)\.ndjson\.gz$/;

/** The parts of a key `deadLetterKey` made, or null for any other key. */
export function parseDeadLetterKey(key: string): DeadLetterName | null {
  const m = DEAD_LETTER_KEY.exec(key);
  if (!m) return null;
  return { tenant: m[1] as string, sink: m[2] as string, replica: m[3] as string, seq: Number(m[4]) };
}

/** The rows of a dead letter (its NDJSON lines, as `eventJson` wrote them) and the flush's time range. */
export async function readDeadLetter(
  bucket: R2Bucket,
  key: string,
): Promise<{ rows: StoredEvent[]; from: number; to: number; attempts: number } | null> {
  const object = await bucket.get(key);
  if (!object) return null;
  const text = await new Response(object.body.pipeThrough(new DecompressionStream("gzip"))).text();
  const rows: StoredEvent[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const row = JSON.parse(line) as Omit<StoredEvent, "data"> & { data: unknown; context?: StoredEvent["context"] };
    const { context, ...rest } = row;
    rows.push({ ...rest, data: JSON.stringify(row.data), ...(context && { context }) });
  }
  const meta = object.customMetadata ?? {};
  return { rows, from: Number(meta.from ?? 0), to: Number(meta.to ?? 0), attempts: Number(meta.attempts ?? 1) };
}
