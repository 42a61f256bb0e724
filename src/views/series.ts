import { DuckTailError, ErrorCode } from "../protocol/errors";
import { BUCKET_MS, finalizeKeyedRows, type RowOptions } from "./buckets";
import type { AnyView } from "./views";

/** Most time buckets one answer holds: a longer series must take a longer step. */
export const MAX_SERIES_BUCKETS = 1_500;

/** The key a bucket's `total` row is finalized under (every key's partials merged). */
export const TOTAL_KEY = "*";

/** A view over time: the window's top rows, and per step bucket the same keys' rows and the total. */
export interface ViewSeries {
  /** The step, ms (a whole number of minutes). */
  step: number;
  /** The window's top rows (ordered and cut as without a step). */
  rows: unknown[];
  /** Every key of the window merged, finalized under the key "*"; null when the window is empty. */
  total: unknown;
  /** Every step bucket of the window, oldest first, empty ones included. */
  buckets: SeriesBucket[];
}

export interface SeriesBucket {
  /** The bucket's start, epoch ms, a multiple of the step. */
  start: number;
  /** The bucket's keys merged, or null when nothing fell in it. */
  total: unknown;
  /** `rows[i]` is the bucket's row for the key of the window's `rows[i]`, or null when it had none. */
  rows: unknown[];
}

/**
 * Parses `step` (`5m`, `1h`, `90m`, `300s`): a whole number of minutes, and at most
 * {@link MAX_SERIES_BUCKETS} buckets over a window of `windowMs`.
 */
export function parseStep(raw: string, windowMs: number): number {
  const m = /^(\d{1,6})(s|m|h|d)$/.exec(raw);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const ms = m ? Number(m[1]) * unit[m[2] as keyof typeof unit] : Number.NaN;
  if (!(ms > 0)) throw new DuckTailError(ErrorCode.badRequest, `step must be like 1m, 5m or 1h; got "${raw}"`);
  if (ms % BUCKET_MS !== 0) {
    throw new DuckTailError(
      ErrorCode.badRequest,
      `step must be a whole number of minutes (views keep minutes); got "${raw}"`,
    );
  }
  const buckets = bucketCount(windowMs, ms);
  if (buckets > MAX_SERIES_BUCKETS) {
    const least = Math.ceil(windowMs / (MAX_SERIES_BUCKETS - 1) / BUCKET_MS);
    throw new DuckTailError(
      ErrorCode.badRequest,
      `step ${raw} gives ${buckets} buckets over the window; at most ${MAX_SERIES_BUCKETS}: use a step of at least ${least}m`,
    );
  }
  return ms;
}

/** How many step buckets a window of `windowMs` touches at most (its ends fall inside buckets). */
function bucketCount(windowMs: number, stepMs: number): number {
  return Math.floor(windowMs / stepMs) + 1;
}

/**
 * A view's minutes (start → that minute's partials merged over every replica) grouped into step
 * buckets aligned to multiples of the step since the epoch, from the one holding `fromMs` to the
 * one holding `toMs - 1`. The window's top keys (`options`) pick the rows each bucket answers.
 * Never changes the given partials.
 */
export function seriesOf(
  view: AnyView,
  minutes: Iterable<[start: number, partials: Map<string, unknown>]>,
  fromMs: number,
  toMs: number,
  stepMs: number,
  options: RowOptions = {},
): ViewSeries {
  const first = Math.floor(fromMs / stepMs) * stepMs;
  const count = Math.floor((toMs - 1 - first) / stepMs) + 1;
  const perBucket: Map<string, unknown>[] = Array.from({ length: count }, () => new Map());
  for (const [start, partials] of minutes) {
    const i = Math.floor((start - first) / stepMs);
    const into = perBucket[i];
    if (!into) continue;
    for (const [key, partial] of partials) into.set(key, view.merge(into.get(key) ?? view.init(), partial));
  }
  const window = new Map<string, unknown>();
  for (const bucket of perBucket) {
    for (const [key, partial] of bucket) window.set(key, view.merge(window.get(key) ?? view.init(), partial));
  }
  const top = finalizeKeyedRows(view, window, options);
  return {
    step: stepMs,
    rows: top.map((r) => r.row),
    total: totalOf(view, window),
    buckets: perBucket.map((bucket, i) => ({
      start: first + i * stepMs,
      total: totalOf(view, bucket),
      rows: top.map(({ key }) => {
        const partial = bucket.get(key);
        return partial === undefined ? null : view.finalize(partial, key);
      }),
    })),
  };
}

/** Every key's partial merged into one, finalized under {@link TOTAL_KEY}; null for none. */
function totalOf(view: AnyView, partials: Map<string, unknown>): unknown {
  if (partials.size === 0) return null;
  let total = view.init();
  for (const partial of partials.values()) total = view.merge(total, partial);
  return view.finalize(total, TOTAL_KEY);
}
