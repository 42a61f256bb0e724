import {
  type Data,
  Field,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  TimestampMillisecond,
  Utf8,
} from "apache-arrow";
import type { StoredEvent } from "../protocol/events";

/**
 * Arrow columns built straight from typed arrays: `vectorFromArray` needs runtime code
 * generation (forbidden in workerd) and per-value builders are several times slower.
 */

/** Growable UTF-8 column: bytes + int32 offsets + optional validity bitmap. */
class Utf8Column {
  private bytes: Uint8Array;
  private length = 0;
  private readonly offsets: Int32Array;
  private readonly validity: Uint8Array | null;
  private nulls = 0;
  private row = 0;
  private static readonly encoder = new TextEncoder();

  constructor(rows: number, nullable: boolean, bytesHint: number) {
    this.bytes = new Uint8Array(Math.max(64, bytesHint));
    this.offsets = new Int32Array(rows + 1);
    this.validity = nullable ? new Uint8Array((rows + 7) >> 3) : null;
  }

  push(value: string | null): void {
    const row = this.row++;
    if (value === null) {
      this.nulls++;
      this.offsets[row + 1] = this.length;
      return;
    }
    if (this.validity) this.validity[row >> 3] = (this.validity[row >> 3] ?? 0) | (1 << (row & 7));
    // Worst case 3 bytes per UTF-16 unit.
    const need = this.length + value.length * 3;
    if (need > this.bytes.length) {
      const grown = new Uint8Array(Math.max(need, this.bytes.length * 2));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
    }
    let pos = this.length;
    let ascii = true;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      this.bytes[pos++] = c;
    }
    if (!ascii) {
      pos = this.length + Utf8Column.encoder.encodeInto(value, this.bytes.subarray(this.length)).written;
    }
    this.length = pos;
    this.offsets[row + 1] = pos;
  }

  data(): Data<Utf8> {
    return makeData({
      type: new Utf8(),
      length: this.row,
      nullCount: this.nulls,
      nullBitmap: this.nulls > 0 ? this.validity : null,
      valueOffsets: this.offsets,
      data: this.bytes.subarray(0, this.length),
    });
  }
}

function int64Data<T extends Int64 | TimestampMillisecond>(type: T, values: BigInt64Array): Data<T> {
  return makeData({ type, length: values.length, nullCount: 0, data: values } as never) as unknown as Data<T>;
}

/** The Parquet columns of DESIGN.md, in order. */
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
]);

/** Builds the Arrow table of a flush batch. */
export function eventsToArrow(events: readonly StoredEvent[]): Table {
  const n = events.length;
  const small = n * 24;
  const id = new Utf8Column(n, false, n * 36);
  const tenant = new Utf8Column(n, false, small);
  const source = new Utf8Column(n, false, small);
  const type = new Utf8Column(n, false, small);
  const importance = new Utf8Column(n, false, n * 8);
  const userId = new Utf8Column(n, true, small);
  const anonymousId = new Utf8Column(n, true, n * 36);
  const sessionId = new Utf8Column(n, true, n * 36);
  const data = new Utf8Column(n, false, n * 128);
  const replica = new Utf8Column(n, false, small);
  const ts = new BigInt64Array(n);
  const receivedAt = new BigInt64Array(n);
  const seq = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const e = events[i] as StoredEvent;
    id.push(e.id);
    tenant.push(e.tenant);
    ts[i] = BigInt(e.ts);
    receivedAt[i] = BigInt(e.receivedAt);
    source.push(e.source);
    type.push(e.type);
    importance.push(e.importance);
    userId.push(e.userId);
    anonymousId.push(e.anonymousId);
    sessionId.push(e.sessionId);
    data.push(e.data);
    replica.push(e.replica);
    seq[i] = BigInt(e.seq);
  }
  const children = [
    id.data(),
    tenant.data(),
    int64Data(new TimestampMillisecond(), ts),
    int64Data(new TimestampMillisecond(), receivedAt),
    source.data(),
    type.data(),
    importance.data(),
    userId.data(),
    anonymousId.data(),
    sessionId.data(),
    data.data(),
    replica.data(),
    int64Data(new Int64(), seq),
  ];
  const struct = makeData({ type: new Struct(EVENT_SCHEMA.fields), length: n, nullCount: 0, children });
  return new Table([new RecordBatch(EVENT_SCHEMA, struct)]);
}
