import {
  Bool,
  type Data,
  DataType,
  type Int64,
  makeData,
  RecordBatch,
  Struct,
  Table,
  type TimestampMillisecond,
  tableFromIPC,
  type Utf8,
} from "apache-arrow";
import { readParquet } from "parquet-wasm/esm";
import { CORE_COLUMNS, EVENT_SCHEMA } from "../columns/columns";
import type { CompactionSummary } from "./options";

// The Arrow row-merge engine: reads input objects, indexes their rows across batches, keeps one
// row per event id and sorts them, and copies the kept rows into one table, column by column.

/** An object to read: its key and (compressed) size. */
export interface LakeObject {
  key: string;
  size: number;
}

// Workers allow six simultaneous outgoing connections; more parallel gets would only queue.
const READ_CONCURRENCY = 6;

/**
 * The record batches of every input, or why the hour cannot be compacted, or, once over
 * `maxDecodedBytes`, only how many bytes each input decodes to (the reads go on to learn it,
 * holding nothing). Bodies are fetched a few at a time and decoded as they arrive, so only a
 * few compressed bodies are held besides the decoded data.
 */
export async function readInputs(
  bucket: R2Bucket,
  inputs: LakeObject[],
  maxDecodedBytes: number,
): Promise<RecordBatch[] | { decodedBytes: number; sizes: number[] } | string> {
  const tables: Table[] = [];
  const sizes: number[] = [];
  let decodedBytes = 0;
  let failure: string | null = null;
  let next = 0;
  const reader = async () => {
    while (failure === null && next < inputs.length) {
      const i = next++;
      const key = (inputs[i] as LakeObject).key;
      const body = await bucket.get(key);
      if (failure !== null) return;
      if (!body) {
        failure = `input ${key} vanished while compacting`;
        return;
      }
      const ipc = readParquet(new Uint8Array(await body.arrayBuffer())).intoIPCStream();
      sizes[i] = ipc.byteLength;
      decodedBytes += ipc.byteLength;
      if (decodedBytes > maxDecodedBytes) {
        tables.length = 0; // sizing only from here on
        continue;
      }
      const table = tableFromIPC(ipc);
      // The context columns may be missing (files written before them): their rows are null.
      const mismatch = EVENT_SCHEMA.fields.find((f, c) => {
        const type = table.schema.fields.find((g) => g.name === f.name)?.type;
        return (type !== undefined || c < CORE_COLUMNS) && String(type) !== String(f.type);
      });
      if (mismatch) {
        failure = `input ${key} has no ${mismatch.name} column of type ${mismatch.type}`;
        return;
      }
      tables[i] = table;
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, inputs.length) }, reader));
  if (failure !== null) return failure;
  if (decodedBytes > maxDecodedBytes) return { decodedBytes, sizes };
  return tables.flatMap((t) => t.batches);
}

/**
 * The inputs' rows, deduplicated and sorted, as one Arrow table, plus its rollup; or why not; or,
 * over `maxDecodedBytes`, how many bytes each input decodes to. Apart so the decoded inputs are
 * garbage once it returns, before the table is encoded.
 */
export async function merge(
  bucket: R2Bucket,
  inputs: LakeObject[],
  summary: CompactionSummary,
  maxDecodedBytes: number,
): Promise<{ table: Table } | { decodedBytes: number; sizes: number[] } | string> {
  const read = await readInputs(bucket, inputs, maxDecodedBytes);
  if (typeof read === "string" || !Array.isArray(read)) return read;
  const rows = indexRows(read);
  const order = keepAndSort(rows);
  summary.rowsIn = rows.ids.length;
  summary.rowsOut = order.length;
  summary.duplicates = summary.rowsIn - summary.rowsOut;
  return { table: gather(rows, order) };
}

/** An input's column; undefined for a context column the input does not have. */
type Column = Data<Utf8> | Data<TimestampMillisecond> | Data<Int64> | Data<Bool> | undefined;

/** Every input row, addressed by a row number across batches, with what dedup and sort compare. */
export interface Rows {
  /** `columns[c][b]`: column `c` of EVENT_SCHEMA in input batch `b`. */
  columns: Column[][];
  batchOf: Uint32Array;
  rowOf: Uint32Array;
  ids: string[];
  ts: Float64Array;
  receivedAt: Float64Array;
  decoder: TextDecoder;
}

const column = (name: string) => EVENT_SCHEMA.fields.findIndex((f) => f.name === name);
const ID = column("id");
const TS = column("ts");
const RECEIVED_AT = column("received_at");
const REPLICA = column("replica");
const SEQ = column("seq");

export function indexRows(batches: RecordBatch[]): Rows {
  const columns = EVENT_SCHEMA.fields.map((f) =>
    batches.map((b) => b.data.children[b.schema.fields.findIndex((g) => g.name === f.name)] as Column),
  );
  let n = 0;
  for (const b of batches) n += b.numRows;
  const rows: Rows = {
    columns,
    batchOf: new Uint32Array(n),
    rowOf: new Uint32Array(n),
    ids: new Array<string>(n),
    ts: new Float64Array(n),
    receivedAt: new Float64Array(n),
    decoder: new TextDecoder(),
  };
  let r = 0;
  batches.forEach((b, bi) => {
    for (let i = 0; i < b.numRows; i++, r++) {
      rows.batchOf[r] = bi;
      rows.rowOf[r] = i;
      rows.ids[r] = text(rows, ID, r) as string;
      rows.ts[r] = int64(rows, TS, r);
      rows.receivedAt[r] = int64(rows, RECEIVED_AT, r);
    }
  });
  return rows;
}

/** The text of column `name` (of EVENT_SCHEMA) in row `r`; null when null or the input has no such column. */
export function textAt(rows: Rows, name: string, r: number): string | null {
  const c = column(name);
  return (rows.columns[c] as Column[])[rows.batchOf[r] as number] === undefined ? null : text(rows, c, r);
}

function text(rows: Rows, c: number, r: number): string | null {
  const data = (rows.columns[c] as Column[])[rows.batchOf[r] as number] as Data<Utf8>;
  const i = rows.rowOf[r] as number;
  if (!data.getValid(i)) return null;
  return rows.decoder.decode(data.values.subarray(data.valueOffsets[i], data.valueOffsets[i + 1]));
}

function int64(rows: Rows, c: number, r: number): number {
  const data = (rows.columns[c] as Column[])[rows.batchOf[r] as number] as Data<Int64>;
  return Number((data.values as unknown as BigInt64Array)[rows.rowOf[r] as number]);
}

/** One row per id (smallest received_at, replica, seq: the same choice on every run), sorted by ts, received_at, id. */
function keepAndSort(rows: Rows): Uint32Array {
  const kept = new Map<string, number>();
  for (let r = 0; r < rows.ids.length; r++) {
    const id = rows.ids[r] as string;
    const other = kept.get(id);
    if (other === undefined || firstReceived(rows, r, other) < 0) kept.set(id, r);
  }
  return Uint32Array.from(kept.values()).sort(
    (a, b) =>
      (rows.ts[a] as number) - (rows.ts[b] as number) ||
      (rows.receivedAt[a] as number) - (rows.receivedAt[b] as number) ||
      compareText(rows.ids[a] as string, rows.ids[b] as string),
  );
}

function firstReceived(rows: Rows, a: number, b: number): number {
  return (
    (rows.receivedAt[a] as number) - (rows.receivedAt[b] as number) ||
    compareText(text(rows, REPLICA, a) as string, text(rows, REPLICA, b) as string) ||
    int64(rows, SEQ, a) - int64(rows, SEQ, b)
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The rows in `order` as one Arrow table with EVENT_SCHEMA, copied column by column from the inputs' buffers. */
export function gather(rows: Rows, order: Uint32Array): Table {
  const children = EVENT_SCHEMA.fields.map((f, c) =>
    DataType.isUtf8(f.type)
      ? gatherUtf8(rows, c, order)
      : DataType.isBool(f.type)
        ? gatherBool(rows, c, order)
        : gatherInt64(rows, c, order, f.type as TimestampMillisecond | Int64),
  );
  const struct = makeData({ type: new Struct(EVENT_SCHEMA.fields), length: order.length, nullCount: 0, children });
  return new Table(EVENT_SCHEMA, [new RecordBatch(EVENT_SCHEMA, struct)]);
}

function gatherUtf8(rows: Rows, c: number, order: Uint32Array): Data<Utf8> {
  const sources = rows.columns[c] as (Data<Utf8> | undefined)[];
  const n = order.length;
  let size = 0;
  let nulls = 0;
  for (const r of order) {
    const data = sources[rows.batchOf[r] as number];
    const i = rows.rowOf[r] as number;
    if (!data?.getValid(i)) nulls++;
    else size += (data.valueOffsets[i + 1] as number) - (data.valueOffsets[i] as number);
  }
  const bytes = new Uint8Array(size);
  const offsets = new Int32Array(n + 1);
  const validity = nulls > 0 ? new Uint8Array((n + 7) >> 3) : null;
  let pos = 0;
  for (let k = 0; k < n; k++) {
    const r = order[k] as number;
    const data = sources[rows.batchOf[r] as number];
    const i = rows.rowOf[r] as number;
    if (data?.getValid(i)) {
      const start = data.valueOffsets[i] as number;
      const end = data.valueOffsets[i + 1] as number;
      bytes.set(data.values.subarray(start, end), pos);
      pos += end - start;
      if (validity) validity[k >> 3] = (validity[k >> 3] as number) | (1 << (k & 7));
    }
    offsets[k + 1] = pos;
  }
  return makeData({
    type: EVENT_SCHEMA.fields[c]?.type as Utf8,
    length: n,
    nullCount: nulls,
    nullBitmap: validity,
    valueOffsets: offsets,
    data: bytes,
  });
}

/** A boolean column (is_bot); null where the input has no such column. */
function gatherBool(rows: Rows, c: number, order: Uint32Array): Data<Bool> {
  const sources = rows.columns[c] as (Data<Bool> | undefined)[];
  const n = order.length;
  const bits = new Uint8Array((n + 7) >> 3);
  const validity = new Uint8Array((n + 7) >> 3);
  let nulls = 0;
  for (let k = 0; k < n; k++) {
    const r = order[k] as number;
    const data = sources[rows.batchOf[r] as number];
    const i = rows.rowOf[r] as number;
    if (!data?.getValid(i)) {
      nulls++;
      continue;
    }
    validity[k >> 3] = (validity[k >> 3] as number) | (1 << (k & 7));
    const bit = data.offset + i;
    if (((data.values[bit >> 3] as number) >> (bit & 7)) & 1) bits[k >> 3] = (bits[k >> 3] as number) | (1 << (k & 7));
  }
  return makeData({ type: new Bool(), length: n, nullCount: nulls, nullBitmap: validity, data: bits });
}

/** Copies the 64-bit words as they are: no BigInt and no rounding through doubles. */
function gatherInt64<T extends TimestampMillisecond | Int64>(
  rows: Rows,
  c: number,
  order: Uint32Array,
  type: T,
): Data<T> {
  const sources = (rows.columns[c] as Data<T>[]).map((d) => {
    const v = d.values as unknown as BigInt64Array;
    return new Uint32Array(v.buffer, v.byteOffset, v.length * 2);
  });
  const words = new Uint32Array(order.length * 2);
  for (let k = 0; k < order.length; k++) {
    const r = order[k] as number;
    const from = sources[rows.batchOf[r] as number] as Uint32Array;
    const i = (rows.rowOf[r] as number) * 2;
    words[2 * k] = from[i] as number;
    words[2 * k + 1] = from[i + 1] as number;
  }
  return makeData({
    type,
    length: order.length,
    nullCount: 0,
    data: new BigInt64Array(words.buffer),
  } as never) as unknown as Data<T>;
}
