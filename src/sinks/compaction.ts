import {
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
import { EVENT_SCHEMA } from "./columns";
import { encodeTable } from "./parquet";

/**
 * Compaction of a tenant's Parquet lake: the many small flush objects of a closed UTC hour
 * become one `compacted-<hourStart>.parquet`, deduplicated by event id and sorted by ts, plus an
 * hourly rollup. The compacted object is written (conditionally) before any input is deleted, and
 * a re-run merges it with whatever is left, so a crash at any point loses and duplicates nothing.
 * parquet-wasm must have been initialized first (see `./wasm`).
 */

const HOUR_MS = 3_600_000;
const MiB = 1024 * 1024;
// Workers allow six simultaneous outgoing connections; more parallel gets would only queue.
const READ_CONCURRENCY = 6;
// R2 deletes at most 1,000 keys per call.
const DELETE_BATCH = 1000;
const COMPACTED_NAME = /^compacted-\d+\.parquet$/;

/** Where and how much to compact. */
export interface CompactionOptions {
  /** Key prefix of the event objects, as given to `R2ParquetSink`. Default `"events"`. */
  prefix?: string;
  /** Key prefix of the hourly rollups: outside `prefix`, so globs over the events never read them. Default `"rollups"`. */
  rollupPrefix?: string;
  /** Skip an hour whose objects total more than this many (compressed) bytes. Default 64 MiB. */
  maxInputBytes?: number;
  /**
   * Skip an hour once its inputs decode to more than this many bytes of Arrow data: the real
   * memory bound, as event Parquet decodes to 4–30× its size and a compaction peaks at 3–5× the
   * decoded bytes (inputs, merged copy, IPC, parquet-wasm's copy) in an isolate of 128 MB.
   * Default 16 MiB.
   */
  maxDecodedBytes?: number;
  /** An hour is closed, so compacted, once its end plus this is before `now`. Default 15 minutes. */
  graceMs?: number;
  /** `compactAll` lists and starts no more after this much wall time (but always starts one hour). Default 20 s. */
  budgetMs?: number;
}

const DEFAULTS: Required<CompactionOptions> = {
  prefix: "events",
  rollupPrefix: "rollups",
  maxInputBytes: 64 * MiB,
  maxDecodedBytes: 16 * MiB,
  graceMs: 15 * 60_000,
  budgetMs: 20_000,
};

/** What compacting one hour did. */
export interface CompactionSummary {
  tenant: string;
  /** Start of the UTC hour (epoch ms). */
  hour: number;
  /** Objects read (an earlier compacted object included). */
  inputs: number;
  rowsIn: number;
  rowsOut: number;
  /** Rows dropped because another row had the same id. */
  duplicates: number;
  /** The compacted object. */
  key: string;
  rollupKey: string;
  bytesIn: number;
  bytesOut: number;
  /** Why nothing was written or deleted; absent when the hour was compacted. */
  skipped?: string;
}

/** The hourly rollup, `rollups/tenant=<t>/dt=<d>/hour=<HH>/rollup.json`. */
export interface HourRollup {
  tenant: string;
  /** Start of the UTC hour (epoch ms). */
  hour: number;
  /** The compacted object it describes. */
  key: string;
  /** Rows in the compacted object. */
  rows: number;
  /** Distinct event ids: equal to `rows`, since compaction keeps one row per id. */
  distinctIds: number;
  /** Rows dropped as duplicates in the compaction that wrote this rollup. */
  duplicates: number;
  /** Smallest and largest client `ts` (epoch ms); null for an empty hour. */
  minTs: number | null;
  maxTs: number | null;
  /** Rows per (source, type, importance), sorted by those. */
  counts: { source: string; type: string; importance: string; count: number }[];
}

/** What `compactAll` did and what it left for the next run. */
export interface CompactionRun {
  summaries: CompactionSummary[];
  /** Hours that needed compaction but were not started within the budget. */
  remaining: { tenant: string; hour: number }[];
  /** Tenants whose hours were not even listed within the budget. */
  unlistedTenants: string[];
}

/** `<prefix>/tenant=<t>/dt=<YYYY-MM-DD>/hour=<HH>/`: the folder `objectKey` writes an hour's objects to. */
export function hourPrefix(prefix: string, tenant: string, hourStart: number): string {
  const iso = new Date(hourStart).toISOString();
  return `${prefix}/tenant=${tenant}/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/`;
}

/** The one object a compacted hour holds. */
export function compactedKey(prefix: string, tenant: string, hourStart: number): string {
  return `${hourPrefix(prefix, tenant, hourStart)}compacted-${hourStart}.parquet`;
}

/** Where the rollup of an hour is written. */
export function rollupKey(rollupPrefix: string, tenant: string, hourStart: number): string {
  return `${hourPrefix(rollupPrefix, tenant, hourStart)}rollup.json`;
}

/**
 * Compacts one hour of a tenant: reads every object of the hour, keeps one row per event id (the
 * smallest received_at, replica, seq), sorts by ts (then received_at, id), writes
 * `compacted-<hourStart>.parquet` and the rollup, and only then deletes the objects it read.
 * The write is conditional on the compacted object being as listed, so two runs never undo each
 * other. Does not check that the hour is closed (`compactTenant` does); throws on R2 errors.
 */
export async function compactHour(
  bucket: R2Bucket,
  tenant: string,
  hourStart: number,
  options: CompactionOptions = {},
): Promise<CompactionSummary> {
  const o = { ...DEFAULTS, ...options };
  const summary = emptySummary(tenant, hourStart, o);
  const listed = await listAll(bucket, { prefix: hourPrefix(o.prefix, tenant, hourStart), delimiter: "/" });
  const inputs = listed.objects.filter((obj) => obj.key.endsWith(".parquet"));
  summary.inputs = inputs.length;
  for (const obj of inputs) summary.bytesIn += obj.size;
  const only = inputs.length === 1 ? inputs[0] : undefined;
  if (inputs.length === 0) return skip(summary, "no objects");
  if (only && COMPACTED_NAME.test(nameOf(only.key))) return skip(summary, "already compacted");
  if (summary.bytesIn > o.maxInputBytes) {
    return skip(summary, `inputs total ${summary.bytesIn} bytes, over maxInputBytes (${o.maxInputBytes})`);
  }

  const merged = await merge(bucket, inputs, summary, o.maxDecodedBytes);
  if (typeof merged === "string") return skip(summary, merged);
  const body = encodeTable(merged.table);

  const previous = inputs.find((obj) => obj.key === summary.key);
  const written = await bucket.put(summary.key, body, {
    // Another run may have rewritten the compacted object since we listed it: writing over it
    // could drop rows only it holds, whose inputs that run has deleted.
    onlyIf: previous ? { etagMatches: previous.etag } : { etagDoesNotMatch: "*" },
    httpMetadata: { contentType: "application/vnd.apache.parquet" },
    customMetadata: { rows: String(summary.rowsOut), inputs: String(summary.inputs) },
  });
  if (!written) return skip(summary, "the compacted object changed while compacting (another run?)");
  summary.bytesOut = written.size;
  await bucket.put(summary.rollupKey, JSON.stringify(merged.rollup), {
    httpMetadata: { contentType: "application/json" },
  });

  const leftovers = inputs.map((obj) => obj.key).filter((key) => key !== summary.key);
  for (let i = 0; i < leftovers.length; i += DELETE_BATCH) await bucket.delete(leftovers.slice(i, i + DELETE_BATCH));
  return summary;
}

/**
 * The start of every closed hour of a tenant that needs compaction (more than one object, or one
 * that is not compacted), oldest first. An hour is closed when its end plus `graceMs` is at or
 * before `now`.
 */
export async function pendingHours(
  bucket: R2Bucket,
  tenant: string,
  now: number,
  options: CompactionOptions = {},
): Promise<number[]> {
  const o = { ...DEFAULTS, ...options };
  const root = `${o.prefix}/tenant=${tenant}/`;
  const partition = /^dt=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\/([^/]+\.parquet)$/;
  const hours = new Map<number, { objects: number; compacted: boolean }>();
  for (const obj of (await listAll(bucket, { prefix: root })).objects) {
    const match = partition.exec(obj.key.slice(root.length));
    if (!match) continue;
    const hour = Date.parse(`${match[1]}T${match[2]}:00:00Z`);
    const seen = hours.get(hour) ?? { objects: 0, compacted: true };
    seen.objects++;
    seen.compacted &&= COMPACTED_NAME.test(match[3] as string);
    hours.set(hour, seen);
  }
  return [...hours]
    .filter(([hour, seen]) => hour + HOUR_MS + o.graceMs <= now && (seen.objects > 1 || !seen.compacted))
    .map(([hour]) => hour)
    .sort((a, b) => a - b);
}

/**
 * Compacts every closed hour of a tenant that needs it (see `pendingHours`), oldest first.
 * An hour that fails is reported with `skipped` and does not stop the others.
 */
export async function compactTenant(
  bucket: R2Bucket,
  tenant: string,
  now: number,
  options: CompactionOptions = {},
): Promise<CompactionSummary[]> {
  const summaries: CompactionSummary[] = [];
  for (const hour of await pendingHours(bucket, tenant, now, options)) {
    summaries.push(await compactOrReport(bucket, tenant, hour, options));
  }
  return summaries;
}

/** Every tenant with objects under the events prefix. */
export async function listTenants(bucket: R2Bucket, options: CompactionOptions = {}): Promise<string[]> {
  const root = `${options.prefix ?? DEFAULTS.prefix}/tenant=`;
  const listed = await listAll(bucket, { prefix: root, delimiter: "/" });
  return listed.prefixes.map((p) => p.slice(root.length, -1));
}

/**
 * Compacts the pending hours of every tenant, taking tenants in turn (one hour each per round)
 * so a tenant with a backlog does not starve the others. Starts no new hour once `budgetMs` of
 * wall time has passed (a cron invocation's limit; Workers clocks advance on I/O, which this is
 * mostly made of) and reports what it left.
 */
export async function compactAll(
  bucket: R2Bucket,
  now: number,
  options: CompactionOptions = {},
): Promise<CompactionRun> {
  const budgetMs = options.budgetMs ?? DEFAULTS.budgetMs;
  const started = Date.now();
  const overBudget = () => Date.now() - started >= budgetMs;
  const run: CompactionRun = { summaries: [], remaining: [], unlistedTenants: [] };
  const queues: { tenant: string; hours: number[] }[] = [];
  for (const tenant of await listTenants(bucket, options)) {
    // Listing goes on until one hour is found, so a run always makes progress.
    if (queues.some((q) => q.hours.length > 0) && overBudget()) run.unlistedTenants.push(tenant);
    else queues.push({ tenant, hours: await pendingHours(bucket, tenant, now, options) });
  }
  const rounds = Math.max(0, ...queues.map((q) => q.hours.length));
  for (let round = 0; round < rounds; round++) {
    for (const { tenant, hours } of queues) {
      const hour = hours[round];
      if (hour === undefined) continue;
      // At least one hour per run, so a slow listing cannot stall compaction for good.
      if (run.summaries.length > 0 && overBudget()) run.remaining.push({ tenant, hour });
      else run.summaries.push(await compactOrReport(bucket, tenant, hour, options));
    }
  }
  return run;
}

async function compactOrReport(
  bucket: R2Bucket,
  tenant: string,
  hour: number,
  options: CompactionOptions,
): Promise<CompactionSummary> {
  try {
    return await compactHour(bucket, tenant, hour, options);
  } catch (e) {
    return skip(emptySummary(tenant, hour, { ...DEFAULTS, ...options }), `failed: ${(e as Error).message}`);
  }
}

function emptySummary(tenant: string, hour: number, o: Required<CompactionOptions>): CompactionSummary {
  return {
    tenant,
    hour,
    inputs: 0,
    rowsIn: 0,
    rowsOut: 0,
    duplicates: 0,
    key: compactedKey(o.prefix, tenant, hour),
    rollupKey: rollupKey(o.rollupPrefix, tenant, hour),
    bytesIn: 0,
    bytesOut: 0,
  };
}

function skip(summary: CompactionSummary, reason: string): CompactionSummary {
  summary.skipped = reason;
  return summary;
}

function nameOf(key: string): string {
  return key.slice(key.lastIndexOf("/") + 1);
}

/** Every page of a listing. */
async function listAll(bucket: R2Bucket, options: R2ListOptions): Promise<{ objects: R2Object[]; prefixes: string[] }> {
  const objects: R2Object[] = [];
  const prefixes: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ ...options, cursor });
    objects.push(...page.objects);
    prefixes.push(...page.delimitedPrefixes);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return { objects, prefixes };
}

/**
 * The record batches of every input, in listing order, or why the hour cannot be compacted.
 * Bodies are fetched a few at a time and decoded as they arrive, so only a few compressed
 * bodies are held besides the decoded data.
 */
async function readInputs(
  bucket: R2Bucket,
  inputs: R2Object[],
  maxDecodedBytes: number,
): Promise<RecordBatch[] | string> {
  const tables: Table[] = [];
  let decodedBytes = 0;
  let failure: string | null = null;
  let next = 0;
  const reader = async () => {
    while (failure === null && next < inputs.length) {
      const i = next++;
      const key = (inputs[i] as R2Object).key;
      const body = await bucket.get(key);
      if (failure !== null) return;
      if (!body) {
        failure = `input ${key} vanished while compacting`;
        return;
      }
      const ipc = readParquet(new Uint8Array(await body.arrayBuffer())).intoIPCStream();
      decodedBytes += ipc.byteLength;
      if (decodedBytes > maxDecodedBytes) {
        failure = `inputs decode to over maxDecodedBytes (${maxDecodedBytes})`;
        return;
      }
      const table = tableFromIPC(ipc);
      const mismatch = EVENT_SCHEMA.fields.find(
        (f) => String(table.schema.fields.find((g) => g.name === f.name)?.type) !== String(f.type),
      );
      if (mismatch) {
        failure = `input ${key} has no ${mismatch.name} column of type ${mismatch.type}`;
        return;
      }
      tables[i] = table;
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, inputs.length) }, reader));
  return failure ?? tables.flatMap((t) => t.batches);
}

/**
 * The hour's rows, deduplicated and sorted, as one Arrow table, plus its rollup; or why not.
 * Apart so the decoded inputs are garbage once it returns, before the table is encoded.
 */
async function merge(
  bucket: R2Bucket,
  inputs: R2Object[],
  summary: CompactionSummary,
  maxDecodedBytes: number,
): Promise<{ table: Table; rollup: HourRollup } | string> {
  const read = await readInputs(bucket, inputs, maxDecodedBytes);
  if (typeof read === "string") return read;
  const rows = indexRows(read);
  const order = keepAndSort(rows);
  summary.rowsIn = rows.ids.length;
  summary.rowsOut = order.length;
  summary.duplicates = summary.rowsIn - summary.rowsOut;
  return { table: gather(rows, order), rollup: rollupOf(rows, order, summary) };
}

type Column = Data<Utf8> | Data<TimestampMillisecond> | Data<Int64>;

/** Every input row, addressed by a row number across batches, with what dedup and sort compare. */
interface Rows {
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
const SOURCE = column("source");
const TYPE = column("type");
const IMPORTANCE = column("importance");
const REPLICA = column("replica");
const SEQ = column("seq");

function indexRows(batches: RecordBatch[]): Rows {
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
function gather(rows: Rows, order: Uint32Array): Table {
  const children = EVENT_SCHEMA.fields.map((f, c) =>
    DataType.isUtf8(f.type)
      ? gatherUtf8(rows, c, order)
      : gatherInt64(rows, c, order, f.type as TimestampMillisecond | Int64),
  );
  const struct = makeData({ type: new Struct(EVENT_SCHEMA.fields), length: order.length, nullCount: 0, children });
  return new Table(EVENT_SCHEMA, [new RecordBatch(EVENT_SCHEMA, struct)]);
}

function gatherUtf8(rows: Rows, c: number, order: Uint32Array): Data<Utf8> {
  const sources = rows.columns[c] as Data<Utf8>[];
  const n = order.length;
  let size = 0;
  let nulls = 0;
  for (const r of order) {
    const data = sources[rows.batchOf[r] as number] as Data<Utf8>;
    const i = rows.rowOf[r] as number;
    if (!data.getValid(i)) nulls++;
    else size += (data.valueOffsets[i + 1] as number) - (data.valueOffsets[i] as number);
  }
  const bytes = new Uint8Array(size);
  const offsets = new Int32Array(n + 1);
  const validity = nulls > 0 ? new Uint8Array((n + 7) >> 3) : null;
  let pos = 0;
  for (let k = 0; k < n; k++) {
    const r = order[k] as number;
    const data = sources[rows.batchOf[r] as number] as Data<Utf8>;
    const i = rows.rowOf[r] as number;
    if (data.getValid(i)) {
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

function rollupOf(rows: Rows, order: Uint32Array, summary: CompactionSummary): HourRollup {
  const counts = new Map<string, HourRollup["counts"][number]>();
  let minTs: number | null = null;
  let maxTs: number | null = null;
  for (const r of order) {
    const ts = rows.ts[r] as number;
    if (minTs === null || ts < minTs) minTs = ts;
    if (maxTs === null || ts > maxTs) maxTs = ts;
    const source = text(rows, SOURCE, r) as string;
    const type = text(rows, TYPE, r) as string;
    const importance = text(rows, IMPORTANCE, r) as string;
    const group = JSON.stringify([source, type, importance]);
    const entry = counts.get(group);
    if (entry) entry.count++;
    else counts.set(group, { source, type, importance, count: 1 });
  }
  return {
    tenant: summary.tenant,
    hour: summary.hour,
    key: summary.key,
    rows: order.length,
    distinctIds: order.length,
    duplicates: rows.ids.length - order.length,
    minTs,
    maxTs,
    counts: [...counts.values()].sort(
      (a, b) =>
        compareText(a.source, b.source) || compareText(a.type, b.type) || compareText(a.importance, b.importance),
    ),
  };
}
