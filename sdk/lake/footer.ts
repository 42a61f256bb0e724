/**
 * The row groups of a Parquet footer (the Thrift compact-encoded FileMetaData) with the bounds of
 * one INT64 column (`received_at`, epoch ms), for pruning row groups by a query's time range
 * before any of their pages are fetched. parquet-wasm's metadata API has no statistics, so this
 * reads the few fields it needs and skips the rest
 * (https://github.com/apache/parquet-format/blob/master/src/main/thrift/parquet.thrift).
 */

/** One row group: its rows, and the column's bounds (null when the footer has none). */
export interface RowGroupBounds {
  rows: number;
  min: number | null;
  max: number | null;
}

/** The footer's length, from an object's last 8 bytes (`<u32 LE length>PAR1`). */
export function footerLength(last8: Uint8Array): number {
  if (last8.length < 8 || String.fromCharCode(...last8.subarray(last8.length - 4)) !== "PAR1") {
    throw new Error("not a Parquet object (no PAR1 at its end)");
  }
  return new DataView(last8.buffer, last8.byteOffset + last8.length - 8, 4).getUint32(0, true);
}

// Thrift compact protocol types.
const T = {
  stop: 0,
  true: 1,
  false: 2,
  byte: 3,
  i16: 4,
  i32: 5,
  i64: 6,
  double: 7,
  binary: 8,
  list: 9,
  set: 10,
  map: 11,
  struct: 12,
};

class Compact {
  private at = 0;
  constructor(private readonly bytes: Uint8Array) {}

  private byte(): number {
    if (this.at >= this.bytes.length) throw new Error("Parquet footer ends early");
    return this.bytes[this.at++] as number;
  }
  varint(): bigint {
    let shift = 0n;
    let out = 0n;
    for (;;) {
      const b = this.byte();
      out |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return out;
      shift += 7n;
    }
  }
  zigzag(): bigint {
    const v = this.varint();
    return (v >> 1n) ^ -(v & 1n);
  }
  binary(): Uint8Array {
    const n = Number(this.varint());
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  /** A list's element type and size. */
  listHeader(): [type: number, size: number] {
    const b = this.byte();
    const size = b >> 4 === 15 ? Number(this.varint()) : b >> 4;
    return [b & 0x0f, size];
  }
  /** Calls `field` for each field of a struct; it returns false for those it did not read (skipped). */
  struct(field: (id: number, type: number) => boolean): void {
    let last = 0;
    for (;;) {
      const b = this.byte();
      const type = b & 0x0f;
      if (type === T.stop) return;
      const delta = b >> 4;
      const id = delta === 0 ? Number(this.zigzag()) : last + delta;
      last = id;
      if (!field(id, type)) this.skip(type);
    }
  }
  list(element: () => void): void {
    const [, size] = this.listHeader();
    for (let i = 0; i < size; i++) element();
  }
  skip(type: number): void {
    switch (type) {
      case T.true:
      case T.false:
        return;
      case T.byte:
        this.at++;
        return;
      case T.i16:
      case T.i32:
      case T.i64:
        this.varint();
        return;
      case T.double:
        this.at += 8;
        return;
      case T.binary:
        this.binary();
        return;
      case T.list:
      case T.set: {
        const [element, size] = this.listHeader();
        // Booleans in a list are one byte each, unlike in a struct.
        for (let i = 0; i < size; i++) element === T.true || element === T.false ? this.at++ : this.skip(element);
        return;
      }
      case T.map: {
        const size = Number(this.varint());
        if (size === 0) return;
        const kinds = this.byte();
        for (let i = 0; i < size; i++) {
          this.skip(kinds >> 4);
          this.skip(kinds & 0x0f);
        }
        return;
      }
      case T.struct:
        this.struct(() => false);
        return;
      default:
        throw new Error(`Parquet footer: unknown Thrift type ${type}`);
    }
  }
}

const int64 = (b: Uint8Array | null) =>
  b && b.length === 8 ? Number(new DataView(b.buffer, b.byteOffset, 8).getBigInt64(0, true)) : null;

/** Each row group's rows and the bounds of the INT64 column `column` (a top-level column's name). */
export function rowGroupBounds(footer: Uint8Array, column: string): RowGroupBounds[] {
  const r = new Compact(footer);
  const groups: RowGroupBounds[] = [];
  r.struct((id) => {
    if (id !== 4) return false; // FileMetaData.row_groups
    r.list(() => {
      const group: RowGroupBounds = { rows: 0, min: null, max: null };
      r.struct((gid) => {
        if (gid === 3) {
          group.rows = Number(r.zigzag()); // RowGroup.num_rows
          return true;
        }
        if (gid !== 1) return false; // RowGroup.columns
        r.list(() =>
          r.struct((cid) => {
            if (cid !== 3) return false; // ColumnChunk.meta_data
            let path = "";
            let min: Uint8Array | null = null;
            let max: Uint8Array | null = null;
            r.struct((mid) => {
              if (mid === 3) {
                const parts: string[] = [];
                r.list(() => parts.push(new TextDecoder().decode(r.binary())));
                path = parts.join(".");
                return true;
              }
              if (mid !== 12) return false; // ColumnMetaData.statistics
              r.struct((sid) => {
                // min_value / max_value (6, 5), else the deprecated min / max (2, 1): same for signed INT64.
                if (sid === 6 || (sid === 2 && min === null)) min = r.binary();
                else if (sid === 5 || (sid === 1 && max === null)) max = r.binary();
                else return false;
                return true;
              });
              return true;
            });
            if (path === column) {
              group.min = int64(min);
              group.max = int64(max);
            }
            return true;
          }),
        );
        return true;
      });
      groups.push(group);
    });
    return true;
  });
  return groups;
}
