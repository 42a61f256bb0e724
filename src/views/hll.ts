import { hash32i } from "../hash";

/** Default HyperLogLog precision: 2^12 = 4,096 registers, ~1.6% standard error. */
export const HLL_DEFAULT_PRECISION = 12;
/** Precisions accepted by {@link HyperLogLog}: 4 (16 registers) to 16 (65,536 registers). */
export const HLL_MIN_PRECISION = 4;
export const HLL_MAX_PRECISION = 16;

// A sparse entry packs `index << RANK_BITS | rank` into one uint32; ranks never exceed 29.
const RANK_BITS = 6;
const RANK_MASK = (1 << RANK_BITS) - 1;

/**
 * Serialized form. A sketch with at most m/4 non-zero registers is `sparse`: the non-zero
 * registers as numbers `index * 64 + rank`, ascending (a few characters each, so a per-minute
 * partial with ten users stays tiny). Past that it is `dense`: all m registers, one byte each,
 * as base64 (5,464 characters at p = 12). The form is a function of the registers alone, so equal
 * sketches serialize to equal JSON.
 */
export type HyperLogLogJSON = { p: number; sparse: number[] } | { p: number; dense: string };

/**
 * HyperLogLog distinct counter (Flajolet et al. 2007) over 32-bit hashes of strings.
 * Starts sparse (a sorted packed array of the non-zero registers) and turns dense past m/4 of
 * them, so the thousands of small per-minute, per-key sketches of a view cost bytes, not 4 KiB each.
 * Sparse and dense hold the same registers: the estimate never depends on the representation.
 */
export class HyperLogLog {
  /** Precision: the sketch has 2^p registers. */
  readonly p: number;
  private readonly m: number;
  private dense: Uint8Array | null = null;
  private sparse: Uint32Array | null = new Uint32Array(8);
  private sparseLength = 0;

  /** @param p precision, {@link HLL_MIN_PRECISION}..{@link HLL_MAX_PRECISION}. Default 12. */
  constructor(p = HLL_DEFAULT_PRECISION) {
    if (!Number.isInteger(p) || p < HLL_MIN_PRECISION || p > HLL_MAX_PRECISION) {
      throw new RangeError(`HyperLogLog precision must be an integer in ${HLL_MIN_PRECISION}..${HLL_MAX_PRECISION}`);
    }
    this.p = p;
    this.m = 1 << p;
  }

  /** Counts `value` (a no-op if it was already counted, or collides with one that was). */
  add(value: string): void {
    const hash = hash32i(value);
    const rest = hash << this.p;
    const rank = rest === 0 ? 33 - this.p : Math.clz32(rest) + 1;
    this.raise(hash >>> (32 - this.p), rank);
  }

  /** Folds `other` into this sketch (register-wise max). `other` is not modified. */
  merge(other: HyperLogLog): this {
    if (other.p !== this.p) throw new RangeError(`cannot merge HyperLogLog p=${other.p} into p=${this.p}`);
    if (other.dense) {
      const into = this.toDense();
      const from = other.dense;
      for (let i = 0; i < into.length; i++) if (from[i]! > into[i]!) into[i] = from[i]!;
    } else {
      const entries = other.sparse!;
      for (let i = 0; i < other.sparseLength; i++) this.raise(entries[i]! >>> RANK_BITS, entries[i]! & RANK_MASK);
    }
    return this;
  }

  /**
   * Estimated number of distinct values added (a float; round it for display). Uses Ertl's
   * improved estimator ("New cardinality estimation algorithms for HyperLogLog sketches", 2017,
   * also Redis's): the raw HLL harmonic mean with its bias corrected from the register histogram
   * itself. Its σ term is linear counting generalized (the empty registers), its τ term corrects
   * saturated registers, so there is no switch between estimators and no bias bump where the
   * classic one hands over from linear counting (≈2.5·m), nor a table of empirical corrections.
   */
  count(): number {
    const m = this.m;
    const q = 32 - this.p;
    // histogram[k] = registers holding rank k, for k in 0..q+1.
    const histogram = new Float64Array(q + 2);
    if (this.dense) {
      for (const r of this.dense) histogram[r]!++;
    } else {
      histogram[0] = m - this.sparseLength;
      for (let i = 0; i < this.sparseLength; i++) histogram[this.sparse![i]! & RANK_MASK]!++;
    }
    let z = m * tau(1 - histogram[q + 1]! / m);
    for (let k = q; k >= 1; k--) z = 0.5 * (z + histogram[k]!);
    z += m * sigma(histogram[0]! / m);
    return (m * m) / (2 * Math.LN2 * z);
  }

  /** A copy of all 2^p registers (for inspection and tests). */
  registers(): Uint8Array {
    if (this.dense) return this.dense.slice();
    const out = new Uint8Array(this.m);
    for (let i = 0; i < this.sparseLength; i++) out[this.sparse![i]! >>> RANK_BITS] = this.sparse![i]! & RANK_MASK;
    return out;
  }

  toJSON(): HyperLogLogJSON {
    if (this.dense) return { p: this.p, dense: toBase64(this.dense) };
    return { p: this.p, sparse: Array.from(this.sparse!.subarray(0, this.sparseLength)) };
  }

  static fromJSON(json: unknown): HyperLogLog {
    const j = json as Partial<{ p: number; sparse: number[]; dense: string }>;
    const hll = new HyperLogLog(j.p);
    if (typeof j.dense === "string") {
      const registers = fromBase64(j.dense);
      if (registers.length !== hll.m) throw new RangeError(`HyperLogLog p=${hll.p} needs ${hll.m} registers`);
      hll.dense = registers;
      hll.sparse = null;
    } else {
      for (const entry of j.sparse ?? []) hll.raise(entry >>> RANK_BITS, entry & RANK_MASK);
    }
    return hll;
  }

  /** Sets register `index` to `rank` if that is higher. */
  private raise(index: number, rank: number): void {
    if (this.dense) {
      if (rank > this.dense[index]!) this.dense[index] = rank;
      return;
    }
    const entries = this.sparse!;
    let lo = 0;
    let hi = this.sparseLength;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (entries[mid]! >>> RANK_BITS < index) lo = mid + 1;
      else hi = mid;
    }
    if (lo < this.sparseLength && entries[lo]! >>> RANK_BITS === index) {
      if (rank > (entries[lo]! & RANK_MASK)) entries[lo] = (index << RANK_BITS) | rank;
      return;
    }
    if (this.sparseLength + 1 > this.m >>> 2) {
      this.toDense()[index] = rank;
      return;
    }
    if (this.sparseLength < entries.length) {
      entries.copyWithin(lo + 1, lo, this.sparseLength);
    } else {
      this.sparse = new Uint32Array(entries.length * 2);
      this.sparse.set(entries.subarray(0, lo));
      this.sparse.set(entries.subarray(lo, this.sparseLength), lo + 1);
    }
    this.sparse![lo] = (index << RANK_BITS) | rank;
    this.sparseLength++;
  }

  private toDense(): Uint8Array {
    if (this.dense) return this.dense;
    const dense = this.registers();
    this.dense = dense;
    this.sparse = null;
    this.sparseLength = 0;
    return dense;
  }
}

/** σ(x) = x + Σ_{k≥1} x^(2^k)·2^(k-1), the small-range (empty register) term of Ertl's estimator. */
function sigma(x: number): number {
  if (x === 1) return Number.POSITIVE_INFINITY;
  let y = 1;
  let z = x;
  let previous: number;
  do {
    x *= x;
    previous = z;
    z += x * y;
    y += y;
  } while (z !== previous);
  return z;
}

/** τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))²·2^-k) / 3, the term for saturated registers. */
function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let y = 1;
  let z = 1 - x;
  let previous: number;
  do {
    x = Math.sqrt(x);
    previous = z;
    y *= 0.5;
    z -= (1 - x) ** 2 * y;
  } while (z !== previous);
  return z / 3;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  // Chunked: String.fromCharCode takes its bytes as arguments, and argument lists have a limit.
  for (let i = 0; i < bytes.length; i += 8192) binary += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
