import uPlot from "uplot";
import type { QueryResult } from "../../lake/results";

/**
 * A chart of a query's answer: the first column along x, every numeric column after it as a
 * series. A time or number first column draws lines (rows sorted by it); any other draws bars,
 * one per row, labelled with its value. Null when no column after the first is numeric.
 */

const NUMERIC =
  /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL.*)$/;
const TIME = /^(TIMESTAMP.*|DATE)$/;
const COLORS = ["#f5c542", "#4cd18a", "#5aa9ff", "#ff6b6b", "#c58af9", "#ff9f43"];
/** Most rows drawn. */
const MAX_POINTS = 5000;

/** Epoch seconds of DuckDB's timestamp text ("2026-12-03 19:16:31.313", UTC). */
export function timeSeconds(v: unknown): number | null {
  if (typeof v === "number") return v / 1000;
  if (typeof v !== "string") return null;
  const ms = Date.parse(`${v.replace(" ", "T")}${/[zZ]|[+-]\d\d(:?\d\d)?$/.test(v) ? "" : "Z"}`);
  return Number.isFinite(ms) ? ms / 1000 : null;
}

export function drawChart(box: HTMLElement, result: QueryResult): uPlot | null {
  const [xName, ...rest] = result.columns;
  if (xName === undefined) return null;
  const ys = rest.filter((_, i) => NUMERIC.test(result.types[i + 1] ?? ""));
  if (ys.length === 0) return null;
  const xType = result.types[0] ?? "";
  const isTime = TIME.test(xType);
  const ordered = isTime || NUMERIC.test(xType);
  let rows = result.rows.slice(0, MAX_POINTS);
  const xOf = (r: Record<string, unknown>) => (isTime ? timeSeconds(r[xName]) : Number(r[xName]));
  if (ordered) rows = rows.filter((r) => xOf(r) !== null).sort((a, b) => (xOf(a) as number) - (xOf(b) as number));
  const labels = rows.map((r) => String(r[xName] ?? "∅"));
  const x = ordered ? rows.map((r) => xOf(r) as number) : rows.map((_, i) => i);
  const series = ys.map((name) => rows.map((r) => (r[name] === null ? null : Number(r[name]))));
  const bars = ordered ? undefined : uPlot.paths.bars?.({ size: [0.6, 80] });
  const opts: uPlot.Options = {
    width: Math.max(280, box.clientWidth || 800),
    height: 260,
    scales: {
      x: ordered ? { time: isTime } : { time: false, range: [-0.5, Math.max(0.5, rows.length - 0.5)] },
      // Bars stand on zero; lines fit their values.
      ...(bars && {
        y: { range: (_u: uPlot, min: number, max: number): uPlot.Range.MinMax => [Math.min(0, min), max] },
      }),
    },
    series: [
      { label: xName },
      ...ys.map((name, i) => ({
        label: name,
        stroke: COLORS[i % COLORS.length],
        ...(bars && { paths: bars, fill: `${COLORS[i % COLORS.length]}99` }),
      })),
    ],
    axes: [
      ordered
        ? { stroke: "#8b95a3" }
        : {
            stroke: "#8b95a3",
            splits: () => x,
            values: (_u: uPlot, splits: number[]) => splits.map((i) => labels[i] ?? ""),
          },
      { stroke: "#8b95a3", size: 70 },
    ],
  };
  return new uPlot(opts, [x, ...series] as uPlot.AlignedData, box);
}
