/**
 * The lake's objects as parquet-wasm reads them: each one a Blob-like handle (`size`, `slice`,
 * `arrayBuffer`) that `ParquetFile.fromFile` reads by byte ranges, each range one GET /lake/object
 * with a `Range` header. This replaces parquet-wasm's own URL reader, which cannot send the read
 * key and turns a failed request into a wasm panic: here a request that still fails after its
 * retries rejects {@link LakeObjects.failed} (the reader races every parquet-wasm call against it)
 * and leaves parquet-wasm's read pending, never resumed, so the wasm instance stays sound.
 * The first read of an object's end fetches its last {@link TAIL_BYTES} at once: footer, page
 * indexes and often the last column chunks, in one request.
 */

import { footerLength } from "./footer";

/** Bytes fetched with the first read of an object's end (parquet-wasm then asks for the footer and indexes). */
export const TAIL_BYTES = 16 * 1024;
/** Attempts per range request, and how long each may take. */
const ATTEMPTS = 3;
const REQUEST_TIMEOUT_MS = 30_000;

/** What parquet-wasm's `fromFile` calls on its handle. */
export interface BlobLike {
  readonly size: number;
  slice(start: number, end: number): { arrayBuffer(): Promise<ArrayBuffer> };
}

export interface LakeObjects {
  /** Bytes received from the object route so far, and its requests. */
  readonly bytes: number;
  readonly requests: number;
  /** Rejects with the first request that failed for good. */
  readonly failed: Promise<never>;
  /** An object of `size` bytes as a Blob-like handle. */
  blob(key: string, size: number): BlobLike;
  /** A whole (small) object. */
  whole(key: string): Promise<Uint8Array>;
  /** An object's footer (the Thrift FileMetaData); fetched with its tail, which later reads reuse. */
  footer(key: string, size: number): Promise<Uint8Array>;
  /** Drops the object's cached tail (its reads are done). */
  forget(key: string): void;
}

export function lakeObjects(base: string, key: string | undefined): LakeObjects {
  let bytes = 0;
  let requests = 0;
  let fail: (err: Error) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => {}); // observed by whoever races it; never an unhandled rejection

  async function get(objectKey: string, range: string | null): Promise<Uint8Array> {
    const url = `${base}/lake/object?object=${encodeURIComponent(objectKey)}`;
    const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
    if (range) headers.range = range;
    let last: Error = new Error("no attempt");
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      try {
        requests++;
        const res = await fetch(url, { headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
        if (!res.ok) {
          const answer = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
          const err = new Error(
            `GET /lake/object ${objectKey}: ${res.status} ${answer?.error?.code ?? ""} ${answer?.error?.message ?? res.statusText}`,
          );
          // A refusal (no such object, bad range, bad key) will not change on retry.
          if (res.status < 500) throw Object.assign(err, { final: true });
          throw err;
        }
        const body = new Uint8Array(await res.arrayBuffer());
        bytes += body.byteLength;
        return body;
      } catch (err) {
        last = err as Error;
        if ((err as { final?: boolean }).final) break;
      }
    }
    throw last;
  }

  // Per object: its last TAIL_BYTES (footer, page indexes), fetched once, until `forget`.
  const tails = new Map<string, { start: number; bytes: Promise<Uint8Array> }>();
  function tailOf(objectKey: string, size: number) {
    let tail = tails.get(objectKey);
    if (!tail) {
      tail = { start: Math.max(0, size - TAIL_BYTES), bytes: get(objectKey, `bytes=-${TAIL_BYTES}`) };
      tails.set(objectKey, tail);
    }
    return tail;
  }

  /** Bytes [start, end) of an object: from its tail when there, else one Range request. */
  async function range(objectKey: string, size: number, start: number, end: number): Promise<Uint8Array> {
    const tail = end === size && size - start <= TAIL_BYTES ? tailOf(objectKey, size) : tails.get(objectKey);
    if (tail && start >= tail.start) return (await tail.bytes).subarray(start - tail.start, end - tail.start);
    return get(objectKey, `bytes=${start}-${end - 1}`);
  }

  return {
    get bytes() {
      return bytes;
    },
    get requests() {
      return requests;
    },
    failed,
    blob(objectKey, size) {
      const read = (start: number, end: number): Promise<ArrayBuffer> =>
        range(objectKey, size, start, end)
          .then((bytes) => bytes.slice().buffer as ArrayBuffer)
          .catch((err: Error) => {
            fail(err);
            return new Promise<ArrayBuffer>(() => {}); // parquet-wasm's read is abandoned, not resumed
          });
      return { size, slice: (start, end) => ({ arrayBuffer: () => read(start, end) }) };
    },
    async footer(objectKey, size) {
      const length = footerLength(await range(objectKey, size, size - 8, size));
      if (length + 8 > size) throw new Error(`${objectKey}: its footer length ${length} exceeds its size ${size}`);
      return range(objectKey, size, size - 8 - length, size - 8);
    },
    forget: (objectKey) => {
      tails.delete(objectKey);
    },
    whole: (objectKey) => get(objectKey, null),
  };
}
