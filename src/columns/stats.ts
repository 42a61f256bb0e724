import { type Data, DataType, type Table } from "apache-arrow";

/**
 * What a lake catalog records of one Parquet file it did not have to read: its size, the size of
 * its footer, and per column the value and null counts and min/max as DuckLake encodes them
 * (https://ducklake.select/docs/stable/specification/data_types, "Type Encoding for Statistics").
 * Computed from the Arrow table the file was encoded from, in one pass per column over its
 * buffers: no row objects, no decoding of strings.
 */

/** One column's statistics. `min`/`max` are bounds (null: unknown), in DuckLake's string encoding. */
export interface ColumnStats {
  column: string;
  valueCount: number;
  nullCount: number;
  min: string | null;
  max: string | null;
}

/** A Parquet object as a catalog records it. */
export interface DataFileInfo {
  /** The object's key in the bucket. */
  key: string;
  /** Start of the UTC hour of receipt of its rows (the partition it belongs to). */
  hour: number;
  rows: number;
  bytes: number;
  /** Length of the Parquet footer (the Thrift FileMetaData). */
  footerBytes: number;
  columns: ColumnStats[];
}

/** Columns whose min/max would only fill the catalog: JSON text, compared as bytes, prunes nothing. */
const NO_BOUNDS = new Set(["data"]);
/** Longer strings get no bounds: a catalog row per file and column must stay small. */
const MAX_BOUND_BYTES = 256;

const decoder = new TextDecoder();

/** The catalog's record of a Parquet object encoded from `table`. */
export function describeFile(key: string, hour: number, parquet: Uint8Array, table: Table): DataFileInfo {
  return describeTable(key, hour, table, parquet.byteLength, parquetFooterSize(parquet));
}

/** The same, for an object known by its size and footer length rather than its bytes. */
export function describeTable(
  key: string,
  hour: number,
  table: Table,
  bytes: number,
  footerBytes: number,
): DataFileInfo {
  return { key, hour, rows: table.numRows, bytes, footerBytes, columns: columnStats(table) };
}

/**
 * Length of a Parquet file's Thrift footer: the 4-byte little-endian length before the closing
 * "PAR1". Takes the whole file or just its last 8 bytes.
 */
export function parquetFooterSize(parquet: Uint8Array): number {
  const n = parquet.byteLength;
  if (n < 8) throw new Error("not a Parquet file: too short");
  return new DataView(parquet.buffer, parquet.byteOffset + n - 8, 4).getUint32(0, true);
}

/** Per-column statistics of every column of `table`, in schema order. */
export function columnStats(table: Table): ColumnStats[] {
  return table.schema.fields.map((field, c) => {
    const chunks = table.batches.map((b) => b.data.children[c] as Data);
    const stats: ColumnStats = { column: field.name, valueCount: 0, nullCount: 0, min: null, max: null };
    for (const d of chunks) {
      stats.valueCount += d.length;
      stats.nullCount += d.nullCount;
    }
    if (NO_BOUNDS.has(field.name) || stats.nullCount === stats.valueCount) return stats;
    if (DataType.isUtf8(field.type)) utf8Bounds(chunks, stats);
    else if (DataType.isTimestamp(field.type)) int64Bounds(chunks, stats, (v) => timestampText(Number(v)));
    else if (DataType.isInt(field.type)) int64Bounds(chunks, stats, (v) => v.toString());
    else if (DataType.isBool(field.type)) boolBounds(chunks, stats);
    return stats;
  });
}

/** Smallest and largest string by UTF-8 bytes (DuckDB's VARCHAR order); none when one is too long. */
function utf8Bounds(chunks: Data[], stats: ColumnStats): void {
  let min: Uint8Array | null = null;
  let max: Uint8Array | null = null;
  for (const d of chunks) {
    const offsets = d.valueOffsets as Int32Array;
    const values = d.values as Uint8Array;
    for (let i = 0; i < d.length; i++) {
      if (d.nullCount > 0 && !d.getValid(i)) continue;
      const value = values.subarray(offsets[i] as number, offsets[i + 1] as number);
      if (value.length > MAX_BOUND_BYTES) return;
      if (min === null || compareBytes(value, min) < 0) min = value;
      if (max === null || compareBytes(value, max) > 0) max = value;
    }
  }
  stats.min = min && decoder.decode(min);
  stats.max = max && decoder.decode(max);
}

function int64Bounds(chunks: Data[], stats: ColumnStats, text: (v: bigint) => string): void {
  let min: bigint | null = null;
  let max: bigint | null = null;
  for (const d of chunks) {
    const values = d.values as BigInt64Array;
    for (let i = 0; i < d.length; i++) {
      if (d.nullCount > 0 && !d.getValid(i)) continue;
      const v = values[i] as bigint;
      if (min === null || v < min) min = v;
      if (max === null || v > max) max = v;
    }
  }
  stats.min = min === null ? null : text(min);
  stats.max = max === null ? null : text(max);
}

function boolBounds(chunks: Data[], stats: ColumnStats): void {
  let seen = 0; // bit 0: a false, bit 1: a true
  for (const d of chunks) {
    for (let i = 0; i < d.length; i++) {
      if (d.nullCount > 0 && !d.getValid(i)) continue;
      const bit = d.offset + i;
      seen |= ((d.values as Uint8Array)[bit >> 3] as number) & (1 << (bit & 7)) ? 2 : 1;
    }
  }
  stats.min = seen & 1 ? "0" : "1";
  stats.max = seen & 2 ? "1" : "0";
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

/** `YYYY-MM-DD HH:MM:SS[.mmm]` (UTC): DuckLake's encoding of a `timestamp` value. */
export function timestampText(ms: number): string {
  const iso = new Date(ms).toISOString();
  const fraction = iso.slice(20, 23);
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${fraction === "000" ? "" : `.${fraction}`}`;
}
