// Time-series charts drawn by uPlot (bundled; no third-party host), sized to their container.
import uPlot from "uplot";

/** One line: its label, color and a value per time (null: a gap). */
export interface Line {
  label: string;
  color: string;
  values: (number | null)[];
}

/** Colors for lines in order. */
export const PALETTE = ["#f5c542", "#4cc3ff", "#ff6b6b", "#4cd18a", "#c792ea", "#ff9f43", "#8b95a3"];

const AXIS = { stroke: "#8b95a3", grid: { stroke: "#2a313a", width: 1 }, ticks: { stroke: "#2a313a", width: 1 } };

/** Fired once, when the first chart of the page load is drawn (the benchmark's "time to first chart"). */
let firstDrawn = false;
function markFirst(): void {
  if (firstDrawn) return;
  firstDrawn = true;
  performance.mark("ducktail:first-chart");
}

/**
 * A line chart of `lines` over `times` (epoch ms) in `el`, following its width. `update` redraws
 * with new data (a new chart when the lines changed); `destroy` removes it.
 */
export class TimeChart {
  private plot: uPlot | null = null;
  private labels = "";
  private readonly resize: ResizeObserver;

  constructor(
    private readonly el: HTMLElement,
    private readonly options: { height?: number; sparkline?: boolean; unit?: string; points?: boolean } = {},
  ) {
    this.resize = new ResizeObserver(() => this.plot?.setSize(this.size()));
    this.resize.observe(el);
  }

  update(times: number[], lines: Line[]): void {
    const data: uPlot.AlignedData = [times.map((t) => t / 1000), ...lines.map((l) => l.values)];
    const labels = lines.map((l) => `${l.label}|${l.color}`).join(",");
    if (this.plot && labels === this.labels) {
      this.plot.setData(data);
    } else {
      this.plot?.destroy();
      this.labels = labels;
      this.plot = new uPlot(this.opts(lines), data, this.el);
    }
    this.el.dataset.points = String(times.length);
    markFirst();
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  private size(): { width: number; height: number } {
    const spark = this.options.sparkline === true;
    return {
      width: Math.max(spark ? 60 : 200, this.el.clientWidth),
      height: this.options.height ?? (spark ? 32 : 220),
    };
  }

  private opts(lines: Line[]): uPlot.Options {
    const spark = this.options.sparkline === true;
    const unit = this.options.unit ?? "";
    return {
      ...this.size(),
      legend: { show: !spark },
      cursor: spark ? { show: false } : { points: { size: 6 } },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      axes: spark
        ? [{ show: false }, { show: false }]
        : [AXIS, { ...AXIS, size: 72, values: (_u, ticks) => ticks.map((v) => `${compact(v)}${unit}`) }],
      series: [
        {},
        ...lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          width: spark ? 1.5 : 2,
          points: { show: this.options.points === true, size: 5 },
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => (v === null ? "–" : `${compact(v)}${unit}`),
        })),
      ],
    };
  }
}

/** 1234 → "1.2k", 0.5 → "0.5". */
export function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(a < 10 ? 2 : 0));
}
