const BASE_MS = 250;
const MAX_MS = 30_000;
const JITTER = 0.25;

/** Delay before retry number `attempt` (0-based): 250 ms doubling to 30 s, ±25 % so clients spread out. */
export function backoffDelay(attempt: number): number {
  const delay = Math.min(MAX_MS, BASE_MS * 2 ** attempt);
  return Math.round(delay * (1 - JITTER + Math.random() * 2 * JITTER));
}
