// What the pages read of the materialized views: GET /buffer/mv/<view>?window=&step= (src/views/series.ts).
import type { DashboardContext } from "./page";

/** The ranges the pages offer, with the step that keeps each chart near 60-100 points. */
export const RANGES = {
  "1h": "1m",
  "24h": "15m",
  "48h": "30m",
} as const;
export type Range = keyof typeof RANGES;

/** The range named in the page's params (`?range=24h`), else 1 h. */
export function rangeOf(params: URLSearchParams): Range {
  const r = params.get("range");
  return r !== null && r in RANGES ? (r as Range) : "1h";
}

export interface PageviewsRow {
  path: string;
  views: number;
  uniques: number;
}
export interface ErrorsRow {
  fingerprint: string;
  name: string;
  message: string;
  count: number;
  firstSeen: number;
  lastSeen: number;
  sample: Record<string, unknown>;
  /** The sample event's session, for its replay. */
  sessionId: string | null;
}
export interface LatencyRow {
  route: string;
  count: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
}

/** A view over time: the window's top rows, its total, and per bucket the same rows (null: none) and total. */
export interface Series<R> {
  view: string;
  from: number;
  to: number;
  step: number;
  rows: R[];
  total: R | null;
  buckets: { start: number; total: R | null; rows: (R | null)[] }[];
  replicas: { asked: number; answered: number; missing: { replica: string; reason: string }[] };
}

/** Asks a view over `range` in its steps, its top `limit` rows with their buckets. */
export async function series<R>(
  ctx: DashboardContext,
  view: string,
  range: Range,
  limit: number,
  signal?: AbortSignal,
): Promise<Series<R>> {
  const q = new URLSearchParams({ window: range, step: RANGES[range], limit: String(limit) });
  const res = await ctx.api(`/buffer/mv/${view}?${q}`, signal ? { signal } : {});
  return (await res.json()) as Series<R>;
}
