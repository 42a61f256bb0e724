// What the pages read of the materialized views: GET /buffer/mv/<view>?window=&step= (src/views/series.ts).
import type { SeriesBucket, ViewSeries } from "../../src/views/series";
import type { ErrorsRow, LatencyRow, PageviewsRow } from "../../src/views/views";
import type { DashboardContext } from "./page";

/** The ranges the pages offer, with the step that keeps each chart near 60-100 points. */
export const RANGES = {
  "1h": "1m",
  "24h": "15m",
  "48h": "30m",
} as const;
export type Range = keyof typeof RANGES;

/** Each range's length. */
export const RANGE_MS: Record<Range, number> = { "1h": 3_600_000, "24h": 86_400_000, "48h": 172_800_000 };

/** The range named in the page's params (`?range=24h`), else 1 h. */
export function rangeOf(params: URLSearchParams): Range {
  const r = params.get("range");
  return r !== null && r in RANGES ? (r as Range) : "1h";
}

export type { ErrorsRow, LatencyRow, PageviewsRow };

/** A view over time (src/views/series.ts) with its rows typed, as GET /buffer/mv/<view>?step= answers it. */
export interface Series<R> extends Omit<ViewSeries, "rows" | "total" | "buckets"> {
  view: string;
  from: number;
  to: number;
  rows: R[];
  total: R | null;
  buckets: (Omit<SeriesBucket, "total" | "rows"> & { total: R | null; rows: (R | null)[] })[];
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
