/** How long one storage call (R2 get, head, put, delete, list) may take by default. */
export const DEFAULT_STORAGE_TIMEOUT_MS = 10_000;

/** A storage call that did not settle in time. Transient: the try fails and is retried. */
export class StorageTimeoutError extends Error {
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(`${what}: no answer within ${ms} ms`);
    this.name = "StorageTimeoutError";
  }
}

/**
 * Settles as `call` does, or rejects with a {@link StorageTimeoutError} after `ms`. The call itself
 * cannot be cancelled: it may still land later, so what it writes must be safe to write again.
 */
export function withTimeout<T>(call: Promise<T>, ms: number, what: string): Promise<T> {
  if (!Number.isFinite(ms) || ms <= 0) return call;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StorageTimeoutError(what, ms)), ms);
  });
  return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The bucket with every get, head, put, delete and list bounded by `ms` (a hung call fails rather
 * than holding the flush that made it). Multipart uploads pass through.
 */
export function timedBucket(bucket: R2Bucket, ms = DEFAULT_STORAGE_TIMEOUT_MS): R2Bucket {
  const keys = (k: string | string[]) => (typeof k === "string" ? k : `${k.length} keys`);
  return {
    head: (key) => withTimeout(bucket.head(key), ms, `R2 head ${key}`),
    get: ((key: string, options?: R2GetOptions) =>
      withTimeout(bucket.get(key, options), ms, `R2 get ${key}`)) as R2Bucket["get"],
    put: ((key: string, value: Parameters<R2Bucket["put"]>[1], options?: R2PutOptions) =>
      withTimeout(bucket.put(key, value, options), ms, `R2 put ${key}`)) as R2Bucket["put"],
    delete: (k) => withTimeout(bucket.delete(k), ms, `R2 delete ${keys(k)}`),
    list: (options) => withTimeout(bucket.list(options), ms, `R2 list ${options?.prefix ?? ""}`),
    createMultipartUpload: (key, options) => bucket.createMultipartUpload(key, options),
    resumeMultipartUpload: (key, uploadId) => bucket.resumeMultipartUpload(key, uploadId),
  };
}
