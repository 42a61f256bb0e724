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

  /** A range parquet-wasm asked for: from the cached tail, or fetched; a failure fails the load. */
  function ranged(objectKey: string, size: number, tail: { start: number; bytes: Promise<Uint8Array> | null }) {
    return (start: number, end: number): Promise<ArrayBuffer> => {
      const read = (async () => {
        if (end === size && size - start <= TAIL_BYTES) {
          tail.start = Math.max(0, size - TAIL_BYTES);
          tail.bytes ??= get(objectKey, `bytes=-${TAIL_BYTES}`);
        }
        if (tail.bytes && start >= tail.start) {
          const cached = await tail.bytes;
          return cached.slice(start - tail.start, end - tail.start).buffer as ArrayBuffer;
        }
        return (await get(objectKey, `bytes=${start}-${end - 1}`)).buffer as ArrayBuffer;
      })();
      return read.catch((err: Error) => {
        fail(err);
        return new Promise<ArrayBuffer>(() => {}); // parquet-wasm's read is abandoned, not resumed
      });
    };
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
      const read = ranged(objectKey, size, { start: size, bytes: null });
      return { size, slice: (start, end) => ({ arrayBuffer: () => read(start, end) }) };
    },
    whole: (objectKey) => get(objectKey, null),
  };
}
