import {
  Bool,
  type Data,
  Field,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  TimestampMillisecond,
  Utf8,
} from "apache-arrow";
import {
  CONTEXT_COLUMNS,
  type EventContext,
  IMPORTANCE,
  type Importance,
  importanceRank,
  type NormalizedEvent,
  type StoredEvent,
} from "../protocol/events";

/**
 * Events held as columns: strings as UTF-8 bytes + int32 offsets, numbers in typed arrays.
 *
 * This is how a replica buffers events, not an encoding step before the flush: a buffer of
 * JS objects costs ~1 KB of heap per event and its garbage collection took half the CPU of
 * ingest under load, while these few large ArrayBuffers are never scanned by the GC. A flush
 * hands slices of them to Arrow as they are (`makeData`): `vectorFromArray` needs runtime code
 * generation, which workerd forbids, and per-value builders are several times slower.
 */

const encoder = new TextEncoder();

/** Growable UTF-8 column: bytes + int32 offsets + validity bitmap (when nullable). */
class Utf8Builder {
  bytes: Uint8Array;
  offsets: Int32Array;
  validity: Uint8Array | null;
  size = 0;
  nulls = 0;
  rows = 0;
  /** Some value is not ASCII (byte offsets are not string offsets). */
  private nonAscii = false;
  /** The column decoded once, for reading many rows (`get`), and the size it was decoded at. */
  private text = "";
  private textSize = -1;

  constructor(capacity: number, nullable: boolean, bytesPerRow: number) {
    this.bytes = new Uint8Array(Math.max(64, capacity * bytesPerRow));
    this.offsets = new Int32Array(capacity + 1);
    this.validity = nullable ? new Uint8Array((capacity + 7) >> 3) : null;
  }

  push(value: string | null): void {
    if (value === null) {
      this.end(this.size, true);
      return;
    }
    // Worst case 3 bytes per UTF-16 unit.
    this.reserve(value.length * 3);
    const written = encoder.encodeInto(value, this.bytes.subarray(this.size)).written;
    if (written !== value.length) this.nonAscii = true;
    this.end(this.size + written, false);
  }

  /**
   * Appends `n` values given as their concatenation `text`, with one native UTF-8 encode straight
   * into the column: value k is `lengths[base + k]` UTF-16 units long, or null when that is -1
   * (the lengths become byte lengths). Answers false, appending nothing, when a surrogate pair
   * formed across two values: only encoding them apart gives each its own bytes.
   */
  appendText(text: string, lengths: Int32Array, base: number, n: number): boolean {
    this.reserve(text.length * 3);
    const at = this.size;
    const written = encoder.encodeInto(text, this.bytes.subarray(at)).written;
    if (
      written !== text.length &&
      !utf8Lengths(this.bytes.subarray(at, at + written), lengths.subarray(base, base + n))
    ) {
      return false;
    }
    this.appendRun(this.bytes, at, lengths, base, n, text.length);
    return true;
  }

  /**
   * Appends `n` values whose UTF-8 bytes lie one after another in `src` from `from`: value k is
   * `lengths[base + k]` bytes long, or null when that is -1. `units`, if known, is the values'
   * total UTF-16 length (they are ASCII when it equals the byte total); otherwise the bytes are
   * scanned. Returns where the next run starts in `src`.
   */
  appendRun(src: Uint8Array, from: number, lengths: Int32Array, base: number, n: number, units?: number): number {
    while (this.rows + n + 1 >= this.offsets.length) this.widen();
    const offsets = this.offsets;
    const validity = this.validity;
    let pos = this.size;
    let row = this.rows;
    for (let k = 0; k < n; k++, row++) {
      const length = lengths[base + k] as number;
      if (length < 0) {
        if (!validity) throw new TypeError("null in a non-nullable column");
        this.nulls++;
      } else {
        pos += length;
        if (validity) validity[row >> 3] = (validity[row >> 3] as number) | (1 << (row & 7));
      }
      offsets[row + 1] = pos;
    }
    const total = pos - this.size;
    const run = src.subarray(from, from + total);
    if (units === undefined) {
      if (!this.nonAscii) for (let i = 0; i < total; i++) if ((run[i] as number) >= 0x80) this.nonAscii = true;
    } else if (units !== total) this.nonAscii = true;
    if (src !== this.bytes) {
      this.reserve(total);
      this.bytes.set(run, this.size);
    }
    this.rows = row;
    this.size = pos;
    return from + total;
  }

  /** Appends `length` UTF-8 bytes from `src` at `from`. */
  pushBytes(src: Uint8Array, from: number, length: number): void {
    this.reserve(length);
    const part = src.subarray(from, from + length);
    if (!this.nonAscii) for (let i = 0; i < length; i++) if ((part[i] as number) >= 0x80) this.nonAscii = true;
    this.bytes.set(part, this.size);
    this.end(this.size + length, false);
  }

  pushNull(): void {
    this.end(this.size, true);
  }

  /** Empties the column, keeping its buffers for the rows to come. */
  clear(): void {
    this.size = 0;
    this.nulls = 0;
    this.rows = 0;
    this.nonAscii = false;
    this.text = "";
    this.textSize = -1;
    this.validity?.fill(0);
  }

  /** The value of row `i` as a string (null when null). */
  get(i: number, decoder: TextDecoder): string | null {
    if (this.isNull(i)) return null;
    const from = this.offsets[i] as number;
    const to = this.offsets[i + 1] as number;
    if (this.nonAscii) return decoder.decode(this.bytes.subarray(from, to));
    // All ASCII: byte offsets are string offsets, so decode the column once and slice it.
    if (this.textSize !== this.size) {
      this.text = decoder.decode(this.bytes.subarray(0, this.size));
      this.textSize = this.size;
    }
    return this.text.slice(from, to);
  }

  isNull(i: number): boolean {
    return this.validity !== null && ((this.validity[i >> 3] as number) & (1 << (i & 7))) === 0;
  }

  data(): Data<Utf8> {
    return makeData({
      type: new Utf8(),
      length: this.rows,
      nullCount: this.nulls,
      nullBitmap: this.nulls > 0 ? this.validity : null,
      valueOffsets: this.offsets.subarray(0, this.rows + 1),
      data: this.bytes.subarray(0, this.size),
    });
  }

  /** Closes the next row at byte `pos`. */
  private end(pos: number, isNull: boolean): void {
    this.grow();
    const row = this.rows++;
    if (isNull) {
      if (!this.validity) throw new TypeError("null in a non-nullable column");
      this.nulls++;
    } else if (this.validity) this.validity[row >> 3] = (this.validity[row >> 3] as number) | (1 << (row & 7));
    this.size = pos;
    this.offsets[row + 1] = pos;
  }

  private reserve(extra: number): void {
    const need = this.size + extra;
    if (need <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(need, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.size));
    this.bytes = grown;
  }

  private grow(): void {
    if (this.rows + 2 <= this.offsets.length) return;
    this.widen();
  }

  private widen(): void {
    const offsets = new Int32Array(this.offsets.length * 2);
    offsets.set(this.offsets);
    this.offsets = offsets;
    if (this.validity) {
      const validity = new Uint8Array((offsets.length + 7) >> 3);
      validity.set(this.validity);
      this.validity = validity;
    }
  }
}

/** The Parquet columns of docs/ARCHITECTURE.md, in order. */
export const EVENT_SCHEMA = new Schema([
  new Field("id", new Utf8(), false),
  new Field("tenant", new Utf8(), false),
  new Field("ts", new TimestampMillisecond(), false),
  new Field("received_at", new TimestampMillisecond(), false),
  new Field("source", new Utf8(), false),
  new Field("type", new Utf8(), false),
  new Field("importance", new Utf8(), false),
  new Field("user_id", new Utf8(), true),
  new Field("anonymous_id", new Utf8(), true),
  new Field("session_id", new Utf8(), true),
  new Field("data", new Utf8(), false),
  new Field("replica", new Utf8(), false),
  new Field("seq", new Int64(), false),
  // The request's context (src/context.ts), added after the first release: files written
  // before have none of these columns (DuckDB: read_parquet(..., union_by_name = true)).
  ...CONTEXT_COLUMNS.map(([, name]) => new Field(name, new Utf8(), true)),
  new Field("is_bot", new Bool(), true),
]);

/** The columns every events file has; the context columns after them may be missing in older files. */
export const CORE_COLUMNS = 13;

/** Fixed per-event overhead counted in `bytes` besides the UTF-8 of the strings. */
const ROW_OVERHEAD = 40;
/** Blob format of `encode`: 2 added each row's context; blobs of version 1 (no context) still read. */
const FORMAT_VERSION = 2;
const STRING_COLUMNS = 7;
/** Initial bytes per row of the string columns (id, source, type, user, anonymous, session, data). */
const DEFAULT_BYTES_PER_ROW = [36, 8, 8, 16, 36, 36, 128];

/** A column of the same string on every row (tenant, replica). */
function constantUtf8(value: string, rows: number): Data<Utf8> {
  const one = new TextEncoder().encode(value);
  const bytes = new Uint8Array(one.length * rows);
  for (let i = 0; i < rows; i++) bytes.set(one, i * one.length);
  const offsets = new Int32Array(rows + 1);
  for (let i = 0; i <= rows; i++) offsets[i] = i * one.length;
  return makeData({ type: new Utf8(), length: rows, nullCount: 0, valueOffsets: offsets, data: bytes });
}

/** A string column whose row i is `values[index[i]]`: null where the index is -1 or the value null. */
function indexedUtf8(values: readonly (string | null)[], index: Int32Array, rows: number): Data<Utf8> {
  const encoded = values.map((v) => (v === null ? null : encoder.encode(v)));
  const offsets = new Int32Array(rows + 1);
  const validity = new Uint8Array((rows + 7) >> 3);
  let size = 0;
  let nulls = 0;
  for (let i = 0; i < rows; i++) {
    const k = index[i] as number;
    const v = k < 0 ? null : encoded[k];
    if (v) {
      size += v.length;
      validity[i >> 3] = (validity[i >> 3] as number) | (1 << (i & 7));
    } else nulls++;
    offsets[i + 1] = size;
  }
  const bytes = new Uint8Array(size);
  for (let i = 0; i < rows; i++) {
    const k = index[i] as number;
    const v = k < 0 ? null : encoded[k];
    if (v) bytes.set(v, offsets[i] as number);
  }
  return makeData({
    type: new Utf8(),
    length: rows,
    nullCount: nulls,
    nullBitmap: validity,
    valueOffsets: offsets,
    data: bytes,
  });
}

/** A boolean column whose row i is `values[index[i]]`, null as {@link indexedUtf8}. */
function indexedBool(values: readonly (boolean | null)[], index: Int32Array, rows: number): Data<Bool> {
  const bits = new Uint8Array((rows + 7) >> 3);
  const validity = new Uint8Array((rows + 7) >> 3);
  let nulls = 0;
  for (let i = 0; i < rows; i++) {
    const k = index[i] as number;
    const v = k < 0 ? null : (values[k] ?? null);
    if (v === null) {
      nulls++;
      continue;
    }
    validity[i >> 3] = (validity[i >> 3] as number) | (1 << (i & 7));
    if (v) bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7));
  }
  return makeData({ type: new Bool(), length: rows, nullCount: nulls, nullBitmap: validity, data: bits });
}

/** Rows `from` appends at a time: the strings of a chunk are concatenated and encoded together. */
const FROM_CHUNK_ROWS = 1024;
/** A typed array reused from call to call, grown on demand: for use within one synchronous call. */
class Scratch<T extends Int32Array | Uint8Array> {
  private array: T;

  constructor(
    private readonly make: (length: number) => T,
    length: number,
  ) {
    this.array = make(length);
  }

  /** The array, at least `n` entries long. */
  atLeast(n: number): T {
    if (this.array.length < n) this.array = this.make(Math.max(n, this.array.length * 2));
    return this.array;
  }
}

const lengthsScratch = new Scratch((n) => new Int32Array(n), 1024);
const bytesScratch = new Scratch((n) => new Uint8Array(n), 16384);

/**
 * Turns the UTF-16 lengths of consecutive values (-1 for null) into the byte lengths of their
 * UTF-8 in `bytes`, the encoding of their concatenation. A lead byte tells its sequence's length;
 * a 4-byte sequence is two UTF-16 units (a surrogate pair), any other one unit (a lone surrogate
 * was written as the 3-byte U+FFFD). Answers false when a pair straddles two values: only
 * encoding them apart gives each its own bytes.
 */
function utf8Lengths(bytes: Uint8Array, lengths: Int32Array): boolean {
  let pos = 0;
  for (let k = 0; k < lengths.length; k++) {
    let units = lengths[k] as number;
    if (units <= 0) continue;
    const start = pos;
    while (units > 0) {
      const b = bytes[pos] as number;
      if (b < 0x80) pos += 1;
      else if (b < 0xe0) pos += 2;
      else if (b < 0xf0) pos += 3;
      else {
        if (units === 1) return false;
        pos += 4;
        units--;
      }
      units--;
    }
    lengths[k] = pos - start;
  }
  return pos === bytes.length;
}

/** String column `c` of an event, in `stringColumns()` order. */
function columnValue(e: NormalizedEvent, c: number): string | null {
  return [e.id, e.source, e.type, e.userId, e.anonymousId, e.sessionId, e.data][c] as string | null;
}

/** An int64 column from doubles (exact below 2^53), written as lo/hi words without BigInt. */
function int64Data<T extends Int64 | TimestampMillisecond>(type: T, values: Float64Array, rows: number): Data<T> {
  const words = new Uint32Array(rows * 2);
  for (let i = 0; i < rows; i++) {
    const v = values[i] as number;
    words[2 * i] = v % 4294967296;
    words[2 * i + 1] = Math.floor(v / 4294967296);
  }
  return makeData({
    type,
    length: rows,
    nullCount: 0,
    data: new BigInt64Array(words.buffer),
  } as never) as unknown as Data<T>;
}

/**
 * A growable block of one replica's events in seq order (see the comment at the top).
 * `tenant` and `replica` are the same on every row, so they are kept once.
 */
export class EventColumns {
  private readonly id: Utf8Builder;
  private readonly source: Utf8Builder;
  private readonly type: Utf8Builder;
  private readonly userId: Utf8Builder;
  private readonly anonymousId: Utf8Builder;
  private readonly sessionId: Utf8Builder;
  private readonly payload: Utf8Builder;
  private ts: Float64Array;
  private received: Float64Array;
  private seqs: Float64Array;
  /** Importance rank in the low bits; bit 7 = committed to SQLite. */
  private flags: Uint8Array;
  /** Each row's context: an index into `contexts`, -1 for none. A request's events share one. */
  private contextOf: Int32Array;
  private contexts: EventContext[] = [];
  /** Each of `contexts` as the JSON text it came as: what the SQLite blob holds, never re-serialized. */
  private contextTexts: string[] = [];
  /** `contexts` by their JSON text (what the Worker sends), so a batch looks its context up once. */
  private readonly contextIds = new Map<string, number>();
  private rows = 0;
  private byteCount = 0;
  /** Uncommitted `low` rows: what `dropLow` may take. */
  lowUncommitted = 0;
  /** Earliest `receivedAt` among high/critical rows and among the others (age flush). */
  firstUrgent = Number.POSITIVE_INFINITY;
  firstNormal = Number.POSITIVE_INFINITY;

  /**
   * @param capacity rows to make room for before growing.
   * @param bytesPerRow expected UTF-8 bytes per row of each string column (see {@link bytesPerRow});
   *   the defaults suit events of a few hundred bytes.
   */
  constructor(
    readonly tenant: string,
    readonly replica: string,
    capacity = 256,
    bytesPerRow: readonly number[] = DEFAULT_BYTES_PER_ROW,
  ) {
    const bytes = (c: number) => bytesPerRow[c] ?? 0;
    this.id = new Utf8Builder(capacity, false, bytes(0));
    this.source = new Utf8Builder(capacity, false, bytes(1));
    this.type = new Utf8Builder(capacity, false, bytes(2));
    this.userId = new Utf8Builder(capacity, true, bytes(3));
    this.anonymousId = new Utf8Builder(capacity, true, bytes(4));
    this.sessionId = new Utf8Builder(capacity, true, bytes(5));
    this.payload = new Utf8Builder(capacity, false, bytes(6));
    this.ts = new Float64Array(capacity);
    this.received = new Float64Array(capacity);
    this.seqs = new Float64Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.contextOf = new Int32Array(capacity);
  }

  /**
   * UTF-8 bytes per row of each string column so far, with an eighth to spare: what a block that
   * should hold rows like these needs, so that it is allocated once instead of doubling its way there.
   */
  bytesPerRow(): number[] {
    return this.stringColumns().map((c) => Math.ceil((c.size / Math.max(1, this.rows)) * 1.125));
  }

  /**
   * Builds columns from rows (tests, benchmarks, tools, recovery of the older JSON format): their
   * strings a chunk at a time, as the ingest path does, each row with its own receipt time and seq.
   */
  static from(events: readonly StoredEvent[], committed = false): EventColumns {
    const first = events[0];
    const columns = new EventColumns(first?.tenant ?? "", first?.replica ?? "", Math.max(1, events.length));
    for (const e of events) {
      if (e.tenant !== columns.tenant || e.replica !== columns.replica) {
        throw new TypeError("EventColumns hold one replica's events");
      }
    }
    for (let i = 0; i < events.length; i += FROM_CHUNK_ROWS) {
      const chunk = events.slice(i, i + FROM_CHUNK_ROWS);
      columns.appendStrings(chunk);
      for (const e of chunk) {
        columns.grow();
        const context = e.context ? columns.contextIndex(JSON.stringify(e.context)) : -1;
        columns.finish(importanceRank(e.importance), e.ts, e.receivedAt, e.seq, committed, context);
      }
    }
    return columns;
  }

  get length(): number {
    return this.rows;
  }

  /** Rows this block holds before it has to grow. */
  get capacity(): number {
    return this.ts.length;
  }

  /** Bytes allocated for the UTF-8 of the string columns (used or not). */
  get allocatedBytes(): number {
    let total = 0;
    for (const c of this.stringColumns()) total += c.bytes.length;
    return total;
  }

  /**
   * Empties the block for reuse, keeping its buffers (see `EventBuffer`): only once nothing reads
   * its rows any more, since every batch and Arrow table over them sees the new rows instead.
   */
  clear(): void {
    for (const c of this.stringColumns()) c.clear();
    this.contexts = [];
    this.contextTexts = [];
    this.contextIds.clear();
    this.rows = 0;
    this.byteCount = 0;
    this.lowUncommitted = 0;
    this.firstUrgent = Number.POSITIVE_INFINITY;
    this.firstNormal = Number.POSITIVE_INFINITY;
  }

  /** UTF-8 bytes of the strings plus a fixed overhead per row: what buffer limits count. */
  get bytes(): number {
    return this.byteCount;
  }

  /**
   * The index of a context given as its JSON text, added on first sight (null: none). Trusted: the
   * text comes from the Worker (src/context.ts), never from a client.
   */
  contextIndex(json: string | null): number {
    if (json === null) return -1;
    let k = this.contextIds.get(json);
    if (k === undefined) {
      const context = JSON.parse(json) as EventContext;
      // Nothing known (no cf, no User-Agent, IP dropped) reads back from Parquet as no context.
      k = -1;
      if (Object.values(context).some((v) => v !== null)) {
        k = this.contexts.push(context) - 1;
        this.contextTexts.push(json);
      }
      this.contextIds.set(json, k);
    }
    return k;
  }

  /** Appends one row, its strings encoded value by value (the reference the batch path is tested against). */
  push(e: NormalizedEvent, receivedAt: number, seq: number, committed: boolean, context: string | null = null): void {
    this.grow();
    const before = this.stringBytes();
    this.id.push(e.id);
    this.source.push(e.source);
    this.type.push(e.type);
    this.userId.push(e.userId);
    this.anonymousId.push(e.anonymousId);
    this.sessionId.push(e.sessionId);
    this.payload.push(e.data);
    this.byteCount += this.stringBytes() - before;
    this.finish(importanceRank(e.importance), e.ts, receivedAt, seq, committed, this.contextIndex(context));
  }

  /**
   * Appends a batch stamped with one receipt time and consecutive seqs from `firstSeq` (the
   * ingest path). Each column's strings are concatenated (cheap in V8) and encoded to UTF-8 with
   * one native call straight into the column: an `encodeInto` per value crosses into the runtime
   * 700 times a frame, and a per-character loop costs more than the JSON.parse that produced them.
   */
  pushBatch(
    events: readonly NormalizedEvent[],
    receivedAt: number,
    firstSeq: number,
    committed: boolean,
    context: string | null = null,
  ): void {
    this.appendStrings(events);
    const ctx = this.contextIndex(context);
    for (let k = 0; k < events.length; k++) {
      this.grow();
      const e = events[k] as NormalizedEvent;
      this.finish(importanceRank(e.importance), e.ts, receivedAt, firstSeq + k, committed, ctx);
    }
  }

  /** The string columns of `events`, appended the way {@link pushBatch} describes (and counted in `bytes`). */
  private appendStrings(events: readonly NormalizedEvent[]): void {
    const n = events.length;
    // lengths[c * n + k]: the length of column c's value in event k (-1 for null), in UTF-16
    // units until the encode, then in bytes.
    const lengths = lengthsScratch.atLeast(STRING_COLUMNS * n);
    const before = this.stringBytes();
    let id = "";
    let source = "";
    let type = "";
    let userId = "";
    let anonymousId = "";
    let sessionId = "";
    let data = "";
    for (let k = 0; k < n; k++) {
      const e = events[k] as NormalizedEvent;
      id += e.id;
      lengths[k] = e.id.length;
      source += e.source;
      lengths[n + k] = e.source.length;
      type += e.type;
      lengths[2 * n + k] = e.type.length;
      lengths[3 * n + k] = e.userId === null ? -1 : e.userId.length;
      if (e.userId !== null) userId += e.userId;
      lengths[4 * n + k] = e.anonymousId === null ? -1 : e.anonymousId.length;
      if (e.anonymousId !== null) anonymousId += e.anonymousId;
      lengths[5 * n + k] = e.sessionId === null ? -1 : e.sessionId.length;
      if (e.sessionId !== null) sessionId += e.sessionId;
      data += e.data;
      lengths[6 * n + k] = e.data.length;
    }
    const texts = [id, source, type, userId, anonymousId, sessionId, data];
    const columns = this.stringColumns();
    // The six short columns in one native encode (each call into the runtime costs about what
    // encoding a few KB does): when it is all ASCII, each column's bytes are as long as its text.
    const short = id + source + type + userId + anonymousId + sessionId;
    const bytes = bytesScratch.atLeast(short.length * 3);
    let c = 0;
    if (encoder.encodeInto(short, bytes).written === short.length) {
      for (let from = 0; c < STRING_COLUMNS - 1; c++) {
        from = (columns[c] as Utf8Builder).appendRun(bytes, from, lengths, c * n, n, (texts[c] as string).length);
      }
    }
    for (; c < STRING_COLUMNS; c++) {
      const column = columns[c] as Utf8Builder;
      if (!column.appendText(texts[c] as string, lengths, c * n, n)) {
        // A surrogate pair formed across two values: encode each value on its own (never in practice).
        for (let k = 0; k < n; k++) column.push(columnValue(events[k] as NormalizedEvent, c));
      }
    }
    this.byteCount += this.stringBytes() - before;
  }

  seqAt(i: number): number {
    return this.seqs[i] as number;
  }

  receivedAtAt(i: number): number {
    return this.received[i] as number;
  }

  importanceRankAt(i: number): number {
    return (this.flags[i] as number) & 0x7f;
  }

  committedAt(i: number): boolean {
    return ((this.flags[i] as number) & 0x80) !== 0;
  }

  /** Marks rows [start, end) committed to SQLite (they were written there after they came). */
  markCommitted(start: number, end: number): void {
    for (let i = start; i < end; i++) {
      const flags = this.flags[i] as number;
      if ((flags & 0x80) !== 0) continue;
      if ((flags & 0x7f) === 0) this.lowUncommitted--;
      this.flags[i] = flags | 0x80;
    }
  }

  /** The first row index whose seq is greater than `seq` (rows are in seq order). */
  indexAfter(seq: number): number {
    let lo = 0;
    let hi = this.rows;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.seqs[mid] as number) <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** What row `i` counts toward `bytes`. */
  rowBytes(i: number): number {
    let total = ROW_OVERHEAD;
    for (const c of this.stringColumns()) total += (c.offsets[i + 1] as number) - (c.offsets[i] as number);
    return total;
  }

  /** Row `i` as an object (sinks that want rows; not used on the ingest path). */
  row(i: number, decoder = new TextDecoder()): StoredEvent {
    return {
      id: this.id.get(i, decoder) as string,
      tenant: this.tenant,
      ts: this.ts[i] as number,
      receivedAt: this.received[i] as number,
      source: this.source.get(i, decoder) as string,
      type: this.type.get(i, decoder) as string,
      importance: IMPORTANCE[this.importanceRankAt(i)] as Importance,
      userId: this.userId.get(i, decoder),
      anonymousId: this.anonymousId.get(i, decoder),
      sessionId: this.sessionId.get(i, decoder),
      data: this.payload.get(i, decoder) as string,
      replica: this.replica,
      seq: this.seqs[i] as number,
      ...(this.contextAt(i) && { context: this.contextAt(i) as EventContext }),
    };
  }

  /** Row `i`'s context, or null. */
  contextAt(i: number): EventContext | null {
    const k = this.contextOf[i] as number;
    return k < 0 ? null : (this.contexts[k] as EventContext);
  }

  /** A copy holding only the rows `keep` says yes to. */
  filter(keep: (i: number) => boolean): EventColumns {
    const out = new EventColumns(this.tenant, this.replica, Math.max(1, this.rows));
    for (let i = 0; i < this.rows; i++) if (keep(i)) out.copyRow(this, i);
    return out;
  }

  /** Every row as an Arrow record batch with the events columns (zero-copy for the strings). */
  recordBatch(): RecordBatch {
    const n = this.rows;
    const importance = new Utf8Builder(n, false, 8);
    for (let i = 0; i < n; i++) importance.push(IMPORTANCE[this.importanceRankAt(i)] as string);
    const children = [
      this.id.data(),
      constantUtf8(this.tenant, n),
      int64Data(new TimestampMillisecond(), this.ts, n),
      int64Data(new TimestampMillisecond(), this.received, n),
      this.source.data(),
      this.type.data(),
      importance.data(),
      this.userId.data(),
      this.anonymousId.data(),
      this.sessionId.data(),
      this.payload.data(),
      constantUtf8(this.replica, n),
      int64Data(new Int64(), this.seqs, n),
      ...CONTEXT_COLUMNS.map(([field]) =>
        indexedUtf8(
          this.contexts.map((c) => c[field] ?? null),
          this.contextOf,
          n,
        ),
      ),
      indexedBool(
        this.contexts.map((c) => c.bot ?? null),
        this.contextOf,
        n,
      ),
    ];
    const struct = makeData({ type: new Struct(EVENT_SCHEMA.fields), length: n, nullCount: 0, children });
    return new RecordBatch(EVENT_SCHEMA, struct);
  }

  /**
   * Rows [start, end) as one binary blob for SQLite (confirmed/durable batches): a few
   * memcpys instead of JSON. Layout (little-endian): u32 version, u32 rows, u32 context bytes,
   * 4 bytes reserved; f64 ts, received_at, seq per row; i32 byte length per row of the 7 string
   * columns (-1 = null); i32 context per row (-1 = none; version 2); u8 flags per row; the UTF-8
   * bytes of each string column in turn; then the rows' contexts as a JSON array (version 2).
   */
  encode(start: number, end: number): Uint8Array {
    const n = end - start;
    const strings = this.stringColumns();
    let stringBytes = 0;
    for (const c of strings) stringBytes += (c.offsets[end] as number) - (c.offsets[start] as number);
    // The contexts these rows use, renumbered from 0: a batch's rows share one, a block may hold many.
    const local = new Map<number, number>();
    const contextOf = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const k = this.contextOf[start + i] as number;
      if (k >= 0 && !local.has(k)) local.set(k, local.size);
      contextOf[i] = k < 0 ? -1 : (local.get(k) as number);
    }
    const contextBytes =
      local.size > 0 ? encoder.encode(`[${[...local.keys()].map((k) => this.contextTexts[k]).join(",")}]`) : null;
    const numericBytes = 16 + n * 24 + n * 4 * (STRING_COLUMNS + 1);
    const out = new Uint8Array(numericBytes + n + stringBytes + (contextBytes?.length ?? 0));
    const header = new Uint32Array(out.buffer, 0, 3);
    header[0] = FORMAT_VERSION;
    header[1] = n;
    header[2] = contextBytes?.length ?? 0;
    new Int32Array(out.buffer, 16 + n * 24 + n * 4 * STRING_COLUMNS, n).set(contextOf);
    if (contextBytes) out.set(contextBytes, out.length - contextBytes.length);
    const numbers = new Float64Array(out.buffer, 16, n * 3);
    numbers.set(this.ts.subarray(start, end), 0);
    numbers.set(this.received.subarray(start, end), n);
    numbers.set(this.seqs.subarray(start, end), 2 * n);
    const lengths = new Int32Array(out.buffer, 16 + n * 24, n * STRING_COLUMNS);
    let pos = numericBytes;
    out.set(this.flags.subarray(start, end), pos);
    pos += n;
    for (let k = 0; k < STRING_COLUMNS; k++) {
      const c = strings[k] as Utf8Builder;
      for (let i = 0; i < n; i++) {
        const row = start + i;
        lengths[k * n + i] = c.isNull(row) ? -1 : (c.offsets[row + 1] as number) - (c.offsets[row] as number);
      }
      const from = c.offsets[start] as number;
      const to = c.offsets[end] as number;
      out.set(c.bytes.subarray(from, to), pos);
      pos += to - from;
    }
    return out;
  }

  /** Appends the rows of a blob made by `encode` (this version or version 1). */
  appendEncoded(blob: Uint8Array): void {
    const bytes = blob.byteOffset % 8 === 0 ? blob : blob.slice();
    const header = new Uint32Array(bytes.buffer, bytes.byteOffset, 3);
    const version = header[0] as number;
    if (version !== 1 && version !== FORMAT_VERSION) throw new Error(`unknown buffer blob version ${version}`);
    const n = header[1] as number;
    const numbers = new Float64Array(bytes.buffer, bytes.byteOffset + 16, n * 3);
    const lengths = new Int32Array(bytes.buffer, bytes.byteOffset + 16 + n * 24, n * STRING_COLUMNS);
    const contextsAt = 16 + n * 24 + n * 4 * STRING_COLUMNS;
    const flagsAt = version === 1 ? contextsAt : contextsAt + n * 4;
    // This block's index of each context the blob's rows use.
    const contextOf = version === 1 ? null : new Int32Array(bytes.buffer, bytes.byteOffset + contextsAt, n);
    const contextBytes = version === 1 ? 0 : (header[2] as number);
    const table = contextBytes
      ? (JSON.parse(new TextDecoder().decode(bytes.subarray(bytes.length - contextBytes))) as EventContext[]).map((c) =>
          this.contextIndex(JSON.stringify(c)),
        )
      : [];
    const before = this.stringBytes();
    const strings = this.stringColumns();
    let pos = flagsAt + n;
    for (let k = 0; k < STRING_COLUMNS; k++) pos = (strings[k] as Utf8Builder).appendRun(bytes, pos, lengths, k * n, n);
    this.byteCount += this.stringBytes() - before;
    for (let i = 0; i < n; i++) {
      this.grow();
      const flags = bytes[flagsAt + i] as number;
      const k = contextOf ? (contextOf[i] as number) : -1;
      this.finish(
        flags & 0x7f,
        numbers[i] as number,
        numbers[n + i] as number,
        numbers[2 * n + i] as number,
        flags >= 0x80,
        k < 0 ? -1 : (table[k] as number),
      );
    }
  }

  private copyRow(from: EventColumns, i: number): void {
    this.grow();
    const before = this.stringBytes();
    const mine = this.stringColumns();
    const theirs = from.stringColumns();
    for (let k = 0; k < STRING_COLUMNS; k++) {
      const c = theirs[k] as Utf8Builder;
      const target = mine[k] as Utf8Builder;
      if (c.isNull(i)) target.pushNull();
      else {
        const start = c.offsets[i] as number;
        target.pushBytes(c.bytes, start, (c.offsets[i + 1] as number) - start);
      }
    }
    this.byteCount += this.stringBytes() - before;
    const flags = from.flags[i] as number;
    const context = from.contextAt(i);
    this.finish(
      flags & 0x7f,
      from.ts[i] as number,
      from.received[i] as number,
      from.seqs[i] as number,
      flags >= 0x80,
      context ? this.contextIndex(JSON.stringify(context)) : -1,
    );
  }

  /** Closes row `rows` once its strings are in (and counted in `byteCount`). */
  private finish(rank: number, ts: number, receivedAt: number, seq: number, committed: boolean, context: number): void {
    const i = this.rows++;
    this.ts[i] = ts;
    this.received[i] = receivedAt;
    this.seqs[i] = seq;
    this.flags[i] = rank | (committed ? 0x80 : 0);
    this.contextOf[i] = context;
    this.byteCount += ROW_OVERHEAD;
    if (rank === 0 && !committed) this.lowUncommitted++;
    if (rank >= 2) {
      if (receivedAt < this.firstUrgent) this.firstUrgent = receivedAt;
    } else if (receivedAt < this.firstNormal) this.firstNormal = receivedAt;
  }

  private stringColumns(): Utf8Builder[] {
    return [this.id, this.source, this.type, this.userId, this.anonymousId, this.sessionId, this.payload];
  }

  private stringBytes(): number {
    return (
      this.id.size +
      this.source.size +
      this.type.size +
      this.userId.size +
      this.anonymousId.size +
      this.sessionId.size +
      this.payload.size
    );
  }

  private grow(): void {
    if (this.rows < this.ts.length) return;
    const capacity = this.ts.length * 2;
    const widen = <T extends Float64Array | Uint8Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(capacity);
      b.set(a);
      return b;
    };
    this.ts = widen(this.ts, (n) => new Float64Array(n));
    this.received = widen(this.received, (n) => new Float64Array(n));
    this.seqs = widen(this.seqs, (n) => new Float64Array(n));
    this.flags = widen(this.flags, (n) => new Uint8Array(n));
    this.contextOf = widen(this.contextOf, (n) => new Int32Array(n));
  }
}
