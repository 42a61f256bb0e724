// An R2 outage on command, for tests and the faults bench: wraps a bucket so that its calls fail,
// hang or flap, and counts them. Runs in workerd and in Node (no imports).

/** What a call meets while the bucket is not up: an error at once, or no answer at all. */
export type Fault = "down" | "hang";

/** One call the wrapped buckets saw, and what it met. */
export interface BucketCall {
  method: "head" | "get" | "put" | "delete" | "list";
  key: string;
  at: number;
  met: Fault | "up";
}

/** How long a hung call stays unanswered. */
const HUNG_MS = 3_600_000;

interface Flap {
  fault: Fault;
  downMs: number;
  upMs: number;
  since: number;
}

/**
 * The faults of every bucket it wraps (one switch for a whole replica, or a whole bench Worker).
 * `down()` fails each call at once, `hang()` never answers it (as a dead connection without a
 * timeout: the call stays hung after `up()`), `flap()` alternates a fault and health by the
 * clock; `only` limits a fault to some keys.
 */
export class BucketFaults {
  private fault: Fault | null = null;
  private flapping: Flap | null = null;
  private only: (key: string) => boolean = () => true;
  /** Every call since the last `reset()`, oldest first. */
  calls: BucketCall[] = [];

  /** Every call fails at once with "R2 unavailable (test)" (calls on keys `only` accepts, if given). */
  down(only?: (key: string) => boolean): void {
    this.set("down", only);
  }

  /** Every call hangs, for good (calls on keys `only` accepts, if given). */
  hang(only?: (key: string) => boolean): void {
    this.set("hang", only);
  }

  /** `downMs` of `fault`, then `upMs` of health, and again, from now. */
  flap(downMs: number, upMs: number, fault: Fault = "down"): void {
    this.set(null);
    this.flapping = { fault, downMs, upMs, since: Date.now() };
  }

  /** Healthy again (calls already hung stay hung). */
  up(): void {
    this.set(null);
  }

  /** Forgets the calls counted so far. */
  reset(): void {
    this.calls = [];
  }

  /** Calls counted (of one method, from `since`). */
  count(method?: BucketCall["method"], since = Number.NEGATIVE_INFINITY): number {
    return this.calls.filter((c) => (!method || c.method === method) && c.at >= since).length;
  }

  /** What a call on `key` meets now. */
  current(key: string, now = Date.now()): Fault | "up" {
    if (!this.only(key)) return "up";
    const f = this.flapping;
    if (f) return (now - f.since) % (f.downMs + f.upMs) < f.downMs ? f.fault : "up";
    return this.fault ?? "up";
  }

  /** A bucket that passes calls to `bucket` through these faults. */
  wrap(bucket: R2Bucket): R2Bucket {
    const keys = (k: string | string[]) => (typeof k === "string" ? k : k.join(","));
    return {
      head: (key) => this.call("head", key, () => bucket.head(key)),
      get: ((key: string, options?: R2GetOptions) =>
        this.call("get", key, () => bucket.get(key, options))) as R2Bucket["get"],
      put: ((key: string, value: Parameters<R2Bucket["put"]>[1], options?: R2PutOptions) =>
        this.call("put", key, () => bucket.put(key, value, options))) as R2Bucket["put"],
      delete: (k) => this.call("delete", keys(k), () => bucket.delete(k)),
      list: (options) => this.call("list", options?.prefix ?? "", () => bucket.list(options)),
      createMultipartUpload: (key, options) => bucket.createMultipartUpload(key, options),
      resumeMultipartUpload: (key, uploadId) => bucket.resumeMultipartUpload(key, uploadId),
    };
  }

  private set(fault: Fault | null, only?: (key: string) => boolean): void {
    this.fault = fault;
    this.flapping = null;
    this.only = only ?? (() => true);
  }

  private call<T>(method: BucketCall["method"], key: string, real: () => Promise<T>): Promise<T> {
    const met = this.current(key);
    this.calls.push({ method, key, at: Date.now(), met });
    if (met === "down") return Promise.reject(new Error("R2 unavailable (test)"));
    if (met === "hang") return hung();
    return real();
  }
}

/**
 * A call that does not answer for an hour: for a test, never. It waits on a timer made in the
 * caller's context, as a real hung call waits on its socket (workerd cancels a request awaiting
 * a promise nothing can settle, and refuses to settle one Durable Object's promise from another).
 */
function hung<T>(): Promise<T> {
  return new Promise<T>((_, reject) => {
    setTimeout(() => reject(new Error("R2 connection reset after an hour (test)")), HUNG_MS);
  });
}
