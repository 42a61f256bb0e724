// Small statistics and table helpers shared by the benchmark sections.

/** Nearest-rank percentile (p in 0..100) of an unsorted array; null when empty. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export const median = (values) => percentile(values, 50);

/** Nearest-rank p50, p95, p99 and max of one unsorted array, sorting it once; nulls when empty. */
export function latencySummary(values) {
  if (values.length === 0) return { p50: null, p95: null, p99: null, max: null };
  const sorted = Float64Array.from(values).sort();
  const at = (p) => sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1];
  return { p50: at(50), p95: at(95), p99: at(99), max: sorted[sorted.length - 1] };
}

/** Rounds for JSON output: keeps results readable without pretending to more precision. */
export function round(x, digits = 2) {
  if (x === null || x === undefined || !Number.isFinite(x)) return x ?? null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const int = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** Formatters for table cells. */
export const fmt = {
  int: (x) => (x === null || x === undefined ? "-" : int.format(x)),
  ms: (x) => (x === null || x === undefined ? "-" : x < 10 ? x.toFixed(2) : x.toFixed(1)),
  pct: (x) => (x === null || x === undefined ? "-" : `${Math.round(x * 100)}%`),
  ratio: (x) => (x === null || x === undefined ? "-" : x.toFixed(2)),
  mb: (bytes) => (bytes === null || bytes === undefined ? "-" : `${(bytes / 1e6).toFixed(2)} MB`),
};

/**
 * Renders rows as an aligned text table. `columns` is [{ title, value: row => string, left? }];
 * numbers are right-aligned unless `left` is set.
 */
export function table(columns, rows) {
  const cells = rows.map((r) => columns.map((c) => String(c.value(r))));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i].length)));
  const line = (values) =>
    values.map((v, i) => (columns[i].left ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join("  ");
  return [line(columns.map((c) => c.title)), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}
