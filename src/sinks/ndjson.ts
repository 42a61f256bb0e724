import type { Bool, Data, Int64, Utf8 } from "apache-arrow";
import type { EventBatch } from "../columns/batch";
import { eventJson } from "../columns/json";
import { CONTEXT_COLUMNS } from "../protocol/events";
import { objectKey } from "./r2-parquet";
import { type FlushContext, type Sink, settleAll } from "./sink";
import { DEFAULT_STORAGE_TIMEOUT_MS, timedBucket } from "./timeout";

/**
 * One NDJSON line per event (see {@link eventJson}), as UTF-8 written straight from the batch's
 * Arrow columns: values are copied as bytes (escaped only where they hold `"`, `\\` or control
 * characters) and `data` as the JSON text it is, with no row objects or strings in between.
 */
export function ndjsonBytes(batch: EventBatch): Uint8Array {
  const out = new ByteWriter(1024 + batch.length * 64);
  for (const rb of batch.table().batches) {
    const columns = FIELDS.map(([, name]) => rb.getChild(name)?.data[0] as Data);
    const words = columns.map((data, c) => (FIELDS[c]?.[2] === "int" ? int64Words(data as Data<Int64>) : null));
    const contexts = CONTEXT_COLUMNS.map(([, name]) => rb.getChild(name)?.data[0] as Data<Utf8>);
    const bot = rb.getChild("is_bot")?.data[0] as Data<Bool>;
    for (let i = 0; i < rb.numRows; i++) {
      for (let c = 0; c < FIELDS.length; c++) {
        const [prefix, , kind] = FIELDS[c] as (typeof FIELDS)[number];
        out.ascii(prefix);
        const data = columns[c] as Data;
        const w = words[c];
        if (w) out.ascii(String((w[2 * i + 1] as number) * 4294967296 + ((w[2 * i] as number) >>> 0)));
        else if (!data.getValid(i)) out.ascii("null");
        else {
          const utf8 = data as Data<Utf8>;
          const bytes = utf8.values.subarray(utf8.valueOffsets[i], utf8.valueOffsets[i + 1]);
          if (kind === "json") out.bytes(bytes);
          else out.jsonString(bytes);
        }
      }
      writeContext(out, contexts, bot, i);
      out.ascii("}\n");
    }
  }
  return out.result();
}

/** One NDJSON line per event (see {@link eventJson}). */
export function toNdjson(batch: EventBatch): string {
  return new TextDecoder().decode(ndjsonBytes(batch));
}

/** `,"context":{...}` for row `i` when any of its context columns holds a value (as `eventJson`). */
function writeContext(out: ByteWriter, contexts: Data<Utf8>[], bot: Data<Bool>, i: number): void {
  if (!bot.getValid(i) && !contexts.some((c) => c.getValid(i))) return;
  CONTEXT_COLUMNS.forEach(([field], c) => {
    out.ascii(c === 0 ? `,"context":{"${field}":` : `,"${field}":`);
    const data = contexts[c] as Data<Utf8>;
    if (data.getValid(i)) out.jsonString(data.values.subarray(data.valueOffsets[i], data.valueOffsets[i + 1]));
    else out.ascii("null");
  });
  const bit = bot.offset + i;
  out.ascii(`,"bot":${bot.getValid(i) ? Boolean(((bot.values[bit >> 3] as number) >> (bit & 7)) & 1) : null}}`);
}

/** The JSON keys of `eventJson`, in its order, with the column each is read from. */
const FIELDS: [prefix: string, column: string, kind: "text" | "int" | "json"][] = [
  ['{"id":', "id", "text"],
  [',"tenant":', "tenant", "text"],
  [',"ts":', "ts", "int"],
  [',"receivedAt":', "received_at", "int"],
  [',"source":', "source", "text"],
  [',"type":', "type", "text"],
  [',"importance":', "importance", "text"],
  [',"userId":', "user_id", "text"],
  [',"anonymousId":', "anonymous_id", "text"],
  [',"sessionId":', "session_id", "text"],
  [',"data":', "data", "json"],
  [',"replica":', "replica", "text"],
  [',"seq":', "seq", "int"],
];

/** A 64-bit column as 32-bit words (low, high), read as numbers exact below 2^53, without BigInt. */
function int64Words(data: Data<Int64>): Int32Array {
  const v = data.values as unknown as BigInt64Array;
  return new Int32Array(v.buffer, v.byteOffset, v.length * 2);
}

const HEX = "0123456789abcdef";
const SHORT_ESCAPES: Record<number, string> = {
  8: "\\b",
  9: "\\t",
  10: "\\n",
  12: "\\f",
  13: "\\r",
  34: '\\"',
  92: "\\\\",
};

/** A growing UTF-8 buffer. */
class ByteWriter {
  private buf: Uint8Array;
  private pos = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
  }

  ascii(text: string): void {
    this.reserve(text.length);
    for (let i = 0; i < text.length; i++) this.buf[this.pos++] = text.charCodeAt(i);
  }

  bytes(src: Uint8Array): void {
    this.reserve(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** A JSON string of UTF-8 bytes: quoted, with `"`, `\\` and control bytes escaped as JSON.stringify does. */
  jsonString(src: Uint8Array): void {
    this.ascii('"');
    let plain = 0;
    for (let i = 0; i < src.length; i++) {
      const b = src[i] as number;
      if (b >= 0x20 && b !== 0x22 && b !== 0x5c) continue;
      this.bytes(src.subarray(plain, i));
      this.ascii(SHORT_ESCAPES[b] ?? `\\u00${HEX[b >> 4]}${HEX[b & 15]}`);
      plain = i + 1;
    }
    this.bytes(src.subarray(plain));
    this.ascii('"');
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  private reserve(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + extra));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
}

/** Gzip with the platform's CompressionStream (native zlib in workerd). */
export async function gzip(text: string | Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Gzipped NDJSON objects in R2, one per UTC hour of the batch, at `<prefix>/tenant=…/hour=…/<replica>-<seq>.ndjson.gz`.
 * Every put is bounded by `ctx.timeoutMs`; its errors are transient (retried).
 */
export class R2NdjsonSink implements Sink {
  readonly name: string;
  readonly releasesBatch = true;
  constructor(
    private readonly bucket: R2Bucket,
    private readonly prefix = "ndjson",
    name = "r2-ndjson",
  ) {
    this.name = name;
  }

  async write(batch: EventBatch, ctx: FlushContext): Promise<string[]> {
    const bucket = timedBucket(this.bucket, ctx.timeoutMs ?? DEFAULT_STORAGE_TIMEOUT_MS);
    return settleAll(
      batch.byHour().map(async ([hour, rows]) => {
        const key = objectKey(this.prefix, ctx.tenant, hour, ctx.replica, ctx.seq).replace(/\.parquet$/, ".ndjson.gz");
        await bucket.put(key, await gzip(ndjsonBytes(rows)), {
          httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
          customMetadata: { rows: String(rows.length), replica: ctx.replica, seq: String(ctx.seq) },
        });
        return key;
      }),
    );
  }
}
