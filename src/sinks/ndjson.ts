import type { StoredEvent } from "../protocol/events";
import type { EventBatch } from "./batch";
import { objectKey } from "./r2-parquet";
import type { FlushContext, Sink } from "./sink";

/** An event as one JSON text: `data` as the object it is, times as epoch ms. */
export function eventJson(e: StoredEvent): string {
  return (
    `{"id":${JSON.stringify(e.id)},"tenant":${JSON.stringify(e.tenant)},"ts":${e.ts},"receivedAt":${e.receivedAt},` +
    `"source":${JSON.stringify(e.source)},"type":${JSON.stringify(e.type)},"importance":"${e.importance}",` +
    `"userId":${JSON.stringify(e.userId)},"anonymousId":${JSON.stringify(e.anonymousId)},` +
    `"sessionId":${JSON.stringify(e.sessionId)},"data":${e.data},"replica":${JSON.stringify(e.replica)},"seq":${e.seq}}`
  );
}

/** One NDJSON line per event (see {@link eventJson}). */
export function toNdjson(batch: EventBatch): string {
  let out = "";
  for (const e of batch.events()) out += `${eventJson(e)}\n`;
  return out;
}

/** Gzip with the platform's CompressionStream (native zlib in workerd). */
export async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Gzipped NDJSON objects in R2, one per UTC hour of the batch, at `<prefix>/tenant=…/hour=…/<replica>-<seq>.ndjson.gz`. */
export class R2NdjsonSink implements Sink {
  readonly name: string;
  constructor(
    private readonly bucket: R2Bucket,
    private readonly prefix = "ndjson",
    name = "r2-ndjson",
  ) {
    this.name = name;
  }

  async write(batch: EventBatch, ctx: FlushContext): Promise<string[]> {
    return Promise.all(
      batch.byHour().map(async ([hour, rows]) => {
        const key = objectKey(this.prefix, ctx.tenant, hour, ctx.replica, ctx.seq).replace(/\.parquet$/, ".ndjson.gz");
        await this.bucket.put(key, await gzip(toNdjson(rows)), {
          httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
          customMetadata: { rows: String(rows.length), replica: ctx.replica, seq: String(ctx.seq) },
        });
        return key;
      }),
    );
  }
}
