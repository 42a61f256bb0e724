/** Every size and count limit DuckTail enforces, in one place. Vars of the same name override them. */
export interface Limits {
  /** Largest accepted event, serialized as JSON. Default 32 KiB. */
  maxEventBytes: number;
  /** Most events in one `events` frame or HTTP body. Default 1,000. */
  maxBatchEvents: number;
  /** Largest WebSocket frame or HTTP request body. Default 1 MiB. */
  maxFrameBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxEventBytes: 32 * 1024,
  maxBatchEvents: 1000,
  maxFrameBytes: 1024 * 1024,
};

/** When a replica flushes its buffer and how much it may hold. */
export interface FlushPolicy {
  /** Flush once this many rows are buffered. Default 10,000. */
  flushThresholdRows: number;
  /** Flush once the buffered JSON passes this many bytes. Default 8 MiB. */
  flushThresholdBytes: number;
  /** Flush rows older than this (DO alarm). Default 30 s. */
  flushIntervalMs: number;
  /** `high` events flush after this age instead. Default 5 s. */
  highFlushIntervalMs: number;
  /** Over this many buffered bytes, `low` events are dropped first. Default 32 MiB. */
  maxBufferBytes: number;
  /** First retry delay after a failed flush; doubles per attempt, with jitter, up to FLUSH_RETRY_MAX_MS. Default 1 s. */
  flushRetryBaseMs: number;
  /** How long durable batches wait to share one object (group commit). Default 20 ms. */
  durableCommitDelayMs: number;
  /**
   * Buffered and fire-and-forget rows are written to SQLite once no batch has arrived for this
   * long, so a replica evicted while idle (after ~10 s in local dev, a minute or two on
   * Cloudflare) keeps them for its next flush. 0: never. Default 2 s.
   */
  idlePersistMs: number;
}

export const DEFAULT_FLUSH_POLICY: FlushPolicy = {
  flushThresholdRows: 10_000,
  flushThresholdBytes: 8 * 1024 * 1024,
  flushIntervalMs: 30_000,
  highFlushIntervalMs: 5_000,
  maxBufferBytes: 32 * 1024 * 1024,
  flushRetryBaseMs: 1_000,
  durableCommitDelayMs: 20,
  idlePersistMs: 2_000,
};

/** The env vars that override the defaults above (all optional, decimal strings). */
export interface LimitVars {
  MAX_EVENT_BYTES?: string;
  MAX_BATCH_EVENTS?: string;
  MAX_FRAME_BYTES?: string;
  FLUSH_THRESHOLD_ROWS?: string;
  FLUSH_THRESHOLD_BYTES?: string;
  FLUSH_INTERVAL_MS?: string;
  HIGH_FLUSH_INTERVAL_MS?: string;
  MAX_BUFFER_BYTES?: string;
  FLUSH_RETRY_BASE_MS?: string;
  DURABLE_COMMIT_DELAY_MS?: string;
  IDLE_PERSIST_MS?: string;
}

/** A numeric var, or `fallback` when it is unset; throws for text, negatives, and 0 unless `zeroOk`. */
export function numericVar(value: string | undefined, fallback: number, zeroOk = true): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !zeroOk)) throw new Error(`invalid numeric var: ${value}`);
  return n;
}

export function limitsFrom(vars: LimitVars): Limits {
  return {
    maxEventBytes: numericVar(vars.MAX_EVENT_BYTES, DEFAULT_LIMITS.maxEventBytes),
    maxBatchEvents: numericVar(vars.MAX_BATCH_EVENTS, DEFAULT_LIMITS.maxBatchEvents),
    maxFrameBytes: numericVar(vars.MAX_FRAME_BYTES, DEFAULT_LIMITS.maxFrameBytes),
  };
}

export function flushPolicyFrom(vars: LimitVars): FlushPolicy {
  const d = DEFAULT_FLUSH_POLICY;
  return {
    flushThresholdRows: numericVar(vars.FLUSH_THRESHOLD_ROWS, d.flushThresholdRows),
    flushThresholdBytes: numericVar(vars.FLUSH_THRESHOLD_BYTES, d.flushThresholdBytes),
    flushIntervalMs: numericVar(vars.FLUSH_INTERVAL_MS, d.flushIntervalMs),
    highFlushIntervalMs: numericVar(vars.HIGH_FLUSH_INTERVAL_MS, d.highFlushIntervalMs),
    maxBufferBytes: numericVar(vars.MAX_BUFFER_BYTES, d.maxBufferBytes),
    flushRetryBaseMs: numericVar(vars.FLUSH_RETRY_BASE_MS, d.flushRetryBaseMs),
    durableCommitDelayMs: numericVar(vars.DURABLE_COMMIT_DELAY_MS, d.durableCommitDelayMs),
    idlePersistMs: numericVar(vars.IDLE_PERSIST_MS, d.idlePersistMs),
  };
}
