import { numericVar } from "../protocol/limits";
import { DEFAULT_STORAGE_TIMEOUT_MS } from "../sinks/timeout";

/** How a replica rides out a failing sink. Vars of the same names (decimal ms) override the defaults. */
export interface RetryPolicy {
  /** STORAGE_TIMEOUT_MS: longest one storage call (R2 get, head, put, delete, list) may take. Default 10 s. */
  storageTimeoutMs: number;
  /**
   * DURABLE_ACK_TIMEOUT_MS: longest a durable batch waits for R2 before its answer says
   * `durable_pending` (committed, will reach R2, do not resend). Default 15 s: room for a hung
   * call to time out and one retry after it.
   */
  durableAckTimeoutMs: number;
  /** FLUSH_RETRY_MAX_MS: the cap of the exponential backoff between retries of a failing sink. Default 10 s. */
  retryMaxMs: number;
}

export interface RetryVars {
  STORAGE_TIMEOUT_MS?: string;
  DURABLE_ACK_TIMEOUT_MS?: string;
  FLUSH_RETRY_MAX_MS?: string;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  storageTimeoutMs: DEFAULT_STORAGE_TIMEOUT_MS,
  durableAckTimeoutMs: 15_000,
  retryMaxMs: 10_000,
};

export function retryPolicyFrom(vars: RetryVars): RetryPolicy {
  const d = DEFAULT_RETRY_POLICY;
  return {
    storageTimeoutMs: numericVar(vars.STORAGE_TIMEOUT_MS, d.storageTimeoutMs, false),
    durableAckTimeoutMs: numericVar(vars.DURABLE_ACK_TIMEOUT_MS, d.durableAckTimeoutMs, false),
    retryMaxMs: numericVar(vars.FLUSH_RETRY_MAX_MS, d.retryMaxMs, false),
  };
}

/**
 * How long an explicit flush (POST /flush) may take before it answers: two storage timeouts, room
 * for a flush already under way to time out and for its own try. The work goes on after it.
 */
export function flushAnswerMs(policy: Pick<RetryPolicy, "storageTimeoutMs">): number {
  return 2 * policy.storageTimeoutMs;
}

/**
 * The wait before try `attempt + 1` of a batch that failed `attempt` times: `baseMs` doubled per
 * failure up to `maxMs`, spread by ±25 % so shards that failed together do not retry together.
 */
export function retryDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const delay = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 52)));
  return delay * (0.75 + random() * 0.5);
}
