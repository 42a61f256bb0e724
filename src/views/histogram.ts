/** Options of {@link LogHistogram}. Two histograms merge only if both options are equal. */
export interface LogHistogramOptions {
  /** Relative accuracy α: quantiles are within α of a true value. Default 0.01 (1%). */
  relativeAccuracy?: number;
  /**
   * Most non-empty buckets kept. Past it the lowest buckets fold into the lowest kept one, so
   * high quantiles (the ones latency alerts read) stay accurate. Default 2,048, which at α = 1%
   * spans a ratio of ~10^17 (1 µs to 10^14 ms) before anything folds.
   */
  maxBuckets?: number;
}

export const DEFAULT_RELATIVE_ACCURACY = 0.01;
export const DEFAULT_MAX_BUCKETS = 2048;

/** Serialized form. `bins` is flat `[index, count, index, count, …]`, ascending by index. */
export interface LogHistogramJSON {
  alpha: number;
  maxBuckets: number;
  /** Values ≤ 0. */
  zero: number;
  bins: number[];
  count: number;
  /** Sum in integer microseconds (see {@link LogHistogram.sum}). */
  sumMicros: number;
  min: number | null;
  max: number | null;
}

/**
 * The floor before any folding: below every index a finite positive double can have (about
 * ±37,000 at the smallest accuracy), and a small integer, unlike -Infinity (see `add`).
 */
const NO_FLOOR = -(2 ** 30);
/** Most buckets the dense window spans (32 KiB of counts); buckets beyond it are kept in a Map. */
const MAX_WINDOW = 4096;
/** Room a new window leaves on each side of its first bucket. */
const WINDOW_PAD = 16;
const NO_COUNTS = new Float64Array(0);

/**
 * Log-bucket histogram with bounded relative error (DDSketch, Masson et al. 2019): a positive
 * value v goes to bucket ceil(log_γ v) with γ = (1+α)/(1-α); every value of bucket i lies in
 * (γ^(i-1), γ^i] and the bucket's estimate 2γ^i/(γ+1) is within α of each of them. Values ≤ 0 go
 * to a zero bucket and count as 0. Merging adds bucket counts, so any merge order gives the same
 * state, bit for bit.
 *
 * Counts live in a dense window of consecutive buckets (a typed array: an add is an increment,
 * where a Map costs two hash lookups per value, the most of a latency view's time on ingest);
 * the rare bucket too far from the window for it to stay small goes to a Map.
 */
export class LogHistogram {
  readonly relativeAccuracy: number;
  readonly maxBuckets: number;
  private readonly inverseLogGamma: number;
  private readonly logGamma: number;
  /** Bucket index of each integer 1 ≤ v < its length (see {@link indexTable}). */
  private readonly smallIndex: Int32Array;
  /** counts[i] is bucket offset + i. */
  private counts = NO_COUNTS;
  private offset = 0;
  /** Buckets outside the window. */
  private far: Map<number, number> | null = null;
  /** Non-empty buckets, window and Map. */
  private used = 0;
  private zero = 0;
  // With maxBuckets buckets in use, lower values fold into the lowest: this is its index.
  // A function of the buckets, so not serialized; it spares add() a sort per low value.
  private floor = NO_FLOOR;
  private total = 0;
  private sumMicros = 0;
  private low = Number.POSITIVE_INFINITY;
  private high = Number.NEGATIVE_INFINITY;

  constructor(options: LogHistogramOptions = {}) {
    const alpha = options.relativeAccuracy ?? DEFAULT_RELATIVE_ACCURACY;
    const maxBuckets = options.maxBuckets ?? DEFAULT_MAX_BUCKETS;
    if (!(alpha > 0 && alpha < 1)) throw new RangeError("relativeAccuracy must be in (0, 1)");
    if (!Number.isInteger(maxBuckets) || maxBuckets < 1) throw new RangeError("maxBuckets must be a positive integer");
    this.relativeAccuracy = alpha;
    this.maxBuckets = maxBuckets;
    this.logGamma = Math.log((1 + alpha) / (1 - alpha));
    this.inverseLogGamma = 1 / this.logGamma;
    this.smallIndex = indexTable(this.inverseLogGamma);
  }

  /** Records one value (ms). Values ≤ 0 record as 0; NaN and ±Infinity are ignored. */
  add(value: number): void {
    if (!Number.isFinite(value)) return;
    const v = Math.max(value, 0);
    this.total++;
    this.sumMicros += Math.round(v * 1000);
    if (v < this.low) this.low = v;
    if (v > this.high) this.high = v;
    if (v === 0) {
      this.zero++;
      return;
    }
    // An int32 (|0), and so is the floor: an index V8 holds as a double is boxed on every use.
    // Most latencies are whole milliseconds: their index is a table lookup, not a Math.log.
    const table = this.smallIndex;
    let index =
      v < table.length && (v | 0) === v ? (table[v] as number) : Math.ceil(Math.log(v) * this.inverseLogGamma) | 0;
    if (index < this.floor) index = this.floor;
    const slot = index - this.offset;
    const counts = this.counts;
    if (slot >= 0 && slot < counts.length) {
      const before = counts[slot] as number;
      counts[slot] = before + 1;
      if (before === 0) this.filled();
    } else if (this.bump(index, 1)) this.filled();
  }

  /** Folds `other` into this histogram. `other` is not modified. Both must share their options. */
  merge(other: LogHistogram): this {
    if (other.relativeAccuracy !== this.relativeAccuracy || other.maxBuckets !== this.maxBuckets) {
      throw new RangeError("cannot merge histograms with different relativeAccuracy or maxBuckets");
    }
    for (const [index, n] of other.buckets()) {
      if (this.bump(Math.max(index, this.floor), n)) this.used++;
    }
    this.settle();
    this.zero += other.zero;
    this.total += other.total;
    this.sumMicros += other.sumMicros;
    if (other.low < this.low) this.low = other.low;
    if (other.high > this.high) this.high = other.high;
    return this;
  }

  /**
   * The nearest-rank q-quantile (the ceil(q·count)-th smallest value, the smallest for q = 0),
   * within relative error α unless low buckets have folded; null when empty.
   */
  quantile(q: number): number | null {
    if (this.total === 0) return null;
    const rank = Math.max(1, Math.ceil(Math.min(1, Math.max(0, q)) * this.total));
    if (rank <= this.zero) return 0;
    let seen = this.zero;
    const buckets = this.buckets();
    let index = buckets[buckets.length - 1]![0];
    for (const [i, n] of buckets) {
      seen += n;
      if (seen >= rank) {
        index = i;
        break;
      }
    }
    const estimate = (2 * Math.exp(index * this.logGamma)) / (1 + Math.exp(this.logGamma));
    // The true value lies in [min, max]; clamping only brings the estimate closer.
    return Math.min(this.high, Math.max(this.low, estimate));
  }

  /** Number of values recorded. */
  get count(): number {
    return this.total;
  }

  /** Sum of the values, each rounded to the microsecond so that sums merge exactly in any order. */
  get sum(): number {
    return this.sumMicros / 1000;
  }

  get min(): number | null {
    return this.total ? this.low : null;
  }

  get max(): number | null {
    return this.total ? this.high : null;
  }

  get mean(): number | null {
    return this.total ? this.sumMicros / 1000 / this.total : null;
  }

  toJSON(): LogHistogramJSON {
    const bins: number[] = [];
    for (const [index, n] of this.buckets()) bins.push(index, n);
    return {
      alpha: this.relativeAccuracy,
      maxBuckets: this.maxBuckets,
      zero: this.zero,
      bins,
      count: this.total,
      sumMicros: this.sumMicros,
      min: this.min,
      max: this.max,
    };
  }

  static fromJSON(json: unknown): LogHistogram {
    const j = json as LogHistogramJSON;
    const h = new LogHistogram({ relativeAccuracy: j.alpha, maxBuckets: j.maxBuckets });
    for (let i = 0; i + 1 < j.bins.length; i += 2) if (h.bump(j.bins[i]!, j.bins[i + 1]!)) h.used++;
    h.settle();
    h.zero = j.zero;
    h.total = j.count;
    h.sumMicros = j.sumMicros;
    h.low = j.min ?? Number.POSITIVE_INFINITY;
    h.high = j.max ?? Number.NEGATIVE_INFINITY;
    return h;
  }

  /**
   * Once maxBuckets buckets are in use, keeps the highest maxBuckets and folds the rest into the
   * lowest kept one, which becomes the floor. The floor is then the maxBuckets-th highest index
   * ever seen, whatever the order values and merges came in, so folding commutes with merging.
   */
  private settle(): void {
    if (this.used < this.maxBuckets) return;
    const buckets = this.buckets();
    const cut = buckets.length - this.maxBuckets;
    const floor = buckets[cut]![0];
    this.floor = floor;
    let folded = 0;
    for (let k = 0; k < cut; k++) {
      const [index, n] = buckets[k]!;
      folded += n;
      this.bump(index, -n);
    }
    this.used = this.maxBuckets;
    if (folded) this.bump(floor, folded);
  }

  /** A bucket just went from empty to one value. */
  private filled(): void {
    if (++this.used >= this.maxBuckets) this.settle();
  }

  /** Non-empty buckets as [index, count], ascending by index. */
  private buckets(): Array<[index: number, count: number]> {
    const far = this.far ? [...this.far].sort((a, b) => a[0] - b[0]) : [];
    const out: Array<[number, number]> = [];
    let f = 0;
    while (f < far.length && far[f]![0] < this.offset) out.push(far[f++]!);
    const counts = this.counts;
    for (let i = 0; i < counts.length; i++) if (counts[i]! !== 0) out.push([this.offset + i, counts[i]!]);
    while (f < far.length) out.push(far[f++]!);
    return out;
  }

  /** Adds `n` (maybe negative) to bucket `index`; answers whether the bucket was empty before. */
  private bump(index: number, n: number): boolean {
    if (index - this.offset < 0 || index - this.offset >= this.counts.length) {
      if (!this.widen(index)) {
        this.far ??= new Map();
        const far = this.far;
        const before = far.get(index) ?? 0;
        if (before + n === 0) far.delete(index);
        else far.set(index, before + n);
        return before === 0;
      }
    }
    const slot = index - this.offset;
    const before = this.counts[slot]!;
    this.counts[slot] = before + n;
    return before === 0;
  }

  /**
   * Moves the window so that it covers bucket `index` (doubling it, at most {@link MAX_WINDOW}
   * wide) and takes in the Map's buckets it now covers; false when it cannot reach `index`.
   */
  private widen(index: number): boolean {
    const length = this.counts.length;
    const lo = length === 0 ? index - WINDOW_PAD : Math.min(this.offset, index);
    const hi = length === 0 ? index + WINDOW_PAD : Math.max(this.offset + length, index + 1);
    if (hi - lo > MAX_WINDOW) return false;
    const span = Math.min(MAX_WINDOW, Math.max(hi - lo, 2 * length));
    // Spare room goes on the side the window grew towards.
    const offset = index < this.offset ? hi - span : lo;
    const counts = new Float64Array(span);
    if (length > 0) counts.set(this.counts, this.offset - offset);
    this.counts = counts;
    this.offset = offset;
    if (this.far) {
      for (const [i, n] of this.far) {
        if (i < offset || i >= offset + span) continue;
        counts[i - offset] = n;
        this.far.delete(i);
      }
    }
    return true;
  }
}

/** Integers below this have their bucket index in a table. */
const SMALL_INTEGERS = 4096;
/** Tables kept per isolate: accuracies come from persisted and gossiped partials too, so bound them. */
const MAX_INDEX_TABLES = 8;
const indexTables = new Map<number, Int32Array>();
const NO_TABLE = new Int32Array(0);

/**
 * Bucket indexes of the integers 0..SMALL_INTEGERS-1 for one γ, computed once per isolate with
 * the very expression `add` uses for other values, so a value lands in the same bucket either way.
 * Past MAX_INDEX_TABLES accuracies, an empty table: `add` then computes every index.
 */
function indexTable(inverseLogGamma: number): Int32Array {
  let table = indexTables.get(inverseLogGamma);
  if (!table) {
    if (indexTables.size >= MAX_INDEX_TABLES) return NO_TABLE;
    table = new Int32Array(SMALL_INTEGERS);
    for (let v = 1; v < SMALL_INTEGERS; v++) table[v] = Math.ceil(Math.log(v) * inverseLogGamma) | 0;
    indexTables.set(inverseLogGamma, table);
  }
  return table;
}
