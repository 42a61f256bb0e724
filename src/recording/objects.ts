import { deleteAll, listAll } from "../lake/bucket";
import type { RecordingChunk, SessionSummary } from "../protocol/recording";
import { chunkKey, chunkPrefix, indexKey, seqOfKey } from "./keys";
import { toMetadata } from "./summary";

/** The R2 side of one session: its gzipped chunks and its index. */

export async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export async function gunzip(body: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(body.pipeThrough(new DecompressionStream("gzip"))).text();
}

/** Writes one chunk's events (`body`: gzipped JSON). Writing it again overwrites it (same key). */
export async function putChunk(
  bucket: R2Bucket,
  tenant: string,
  day: string,
  chunk: RecordingChunk,
  body: Uint8Array,
): Promise<void> {
  await bucket.put(chunkKey(tenant, day, chunk.session, chunk.seq), body, {
    httpMetadata: { contentType: "application/json", contentEncoding: "gzip" },
  });
}

export async function putIndex(bucket: R2Bucket, tenant: string, day: string, summary: SessionSummary): Promise<void> {
  await bucket.put(indexKey(tenant, day, summary.session), JSON.stringify(summary), {
    httpMetadata: { contentType: "application/json" },
    customMetadata: toMetadata(summary),
  });
}

/** The session's chunk keys in seq order. */
export async function chunkKeys(bucket: R2Bucket, tenant: string, day: string, session: string): Promise<string[]> {
  const { objects } = await listAll(bucket, { prefix: chunkPrefix(tenant, day, session) });
  return objects
    .map((o) => ({ key: o.key, seq: seqOfKey(o.key) }))
    .filter((c): c is { key: string; seq: number } => c.seq !== null)
    .sort((a, b) => a.seq - b.seq)
    .map((c) => c.key);
}

/** Deletes the session's chunks and index; answers how many objects went. */
export async function deleteSession(bucket: R2Bucket, tenant: string, day: string, session: string): Promise<number> {
  const { objects } = await listAll(bucket, { prefix: chunkPrefix(tenant, day, session) });
  const keys = [...objects.map((o) => o.key), indexKey(tenant, day, session)];
  await deleteAll(bucket, keys);
  return keys.length;
}

/**
 * The session's events as one JSON document, `{"session":…,"summary":…,"events":[…]}`, streamed
 * chunk by chunk (each chunk is read and decompressed only when the reader wants more).
 */
export function streamSession(bucket: R2Bucket, keys: string[], summary: SessionSummary): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let next = 0;
  let wrote = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const head = JSON.stringify({ session: summary.session, summary }).slice(0, -1);
      controller.enqueue(encoder.encode(`${head},"events":[`));
    },
    async pull(controller) {
      const key = keys[next++];
      if (key === undefined) {
        controller.enqueue(encoder.encode("]}"));
        controller.close();
        return;
      }
      const object = await bucket.get(key);
      // A chunk deleted meanwhile (retention, erasure) is left out, not an error mid-stream.
      if (object === null) return;
      const events = (await gunzip(object.body)).slice(1, -1);
      if (events === "") return;
      controller.enqueue(encoder.encode(wrote ? `,${events}` : events));
      wrote = true;
    },
  });
}
