import {
  Field,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Timestamp,
  TimeUnit,
  Utf8,
  type Vector,
} from "apache-arrow";
import type { RollupRow } from "../protocol/lake";
import { HyperLogLog } from "../views/hll";
import { pageviewPath } from "../views/views";
import type { Grain } from "./catalog/rollup-tables";

/**
 * Rollups as pure functions: an hour's events become rows per (source, type, importance) and per
 * page path, each with a HyperLogLog of its visitors (`user_id`, else `anonymous_id`, as the
 * pageviews view counts them); a day or month merges the finer grain's rows, sketch into sketch,
 * so its `uniques` are the merged sketch's estimate and never a sum. Rows are written as Parquet
 * with ROLLUP_COLUMNS (src/lake/catalog/rollup-tables.ts).
 */

/** A rollup row with its sketch, as built and merged (`RollupRow` is what GET /rollups answers). */
export interface RollupEntry {
  period: number;
  source: string | null;
  type: string | null;
  importance: string | null;
  /** A page's path (its row counts page views); null for a (source, type, importance) row. */
  path: string | null;
  events: number;
  sketch: HyperLogLog;
}

const PAGE_TYPES = new Set(["pageview", "page"]);

export const ROLLUP_SCHEMA = new Schema([
  new Field("period", new Timestamp(TimeUnit.MILLISECOND), false),
  new Field("source", new Utf8(), true),
  new Field("type", new Utf8(), true),
  new Field("importance", new Utf8(), true),
  new Field("path", new Utf8(), true),
  new Field("events", new Int64(), false),
  new Field("uniques", new Int64(), false),
  new Field("sketch", new Utf8(), false),
]);

/** The rows of one hour from its events (an Arrow table with the events columns, e.g. a compacted hour). */
export function rollupEvents(events: Table, period: number): RollupEntry[] {
  const groups = new Map<string, RollupEntry>();
  const entry = (source: string | null, type: string | null, importance: string | null, path: string | null) => {
    const key = JSON.stringify([source, type, importance, path]);
    let e = groups.get(key);
    if (!e) {
      e = { period, source, type, importance, path, events: 0, sketch: new HyperLogLog() };
      groups.set(key, e);
    }
    return e;
  };
  for (const batch of events.batches) {
    const col = (name: string) => batch.getChild(name) as Vector | null;
    const [source, type, importance, userId, anonymousId, data] = [
      "source",
      "type",
      "importance",
      "user_id",
      "anonymous_id",
      "data",
    ].map(col);
    for (let i = 0; i < batch.numRows; i++) {
      const t = (type?.get(i) as string | null) ?? null;
      const visitor = (userId?.get(i) as string | null) ?? (anonymousId?.get(i) as string | null) ?? null;
      const group = entry(source?.get(i) ?? null, t, importance?.get(i) ?? null, null);
      group.events++;
      if (visitor !== null) group.sketch.add(visitor);
      if (t === null || !PAGE_TYPES.has(t)) continue;
      const page = entry(null, null, null, pageviewPath(parseData(data?.get(i) as string | null)));
      page.events++;
      if (visitor !== null) page.sketch.add(visitor);
    }
  }
  return sortEntries([...groups.values()]);
}

/**
 * Rolls `rows` (of any finer periods) up into `period`: events summed, sketches merged, per
 * (source, type, importance) and per path. The inputs' sketches are not modified.
 */
export function mergeRollups(rows: readonly RollupEntry[], period: number): RollupEntry[] {
  const groups = new Map<string, RollupEntry>();
  for (const r of rows) {
    const key = JSON.stringify([r.source, r.type, r.importance, r.path]);
    const e = groups.get(key);
    if (e) {
      e.events += r.events;
      e.sketch.merge(r.sketch);
    } else {
      groups.set(key, { ...r, period, sketch: new HyperLogLog(r.sketch.p).merge(r.sketch) });
    }
  }
  return sortEntries([...groups.values()]);
}

/** Rows as an Arrow table with ROLLUP_SCHEMA (the Parquet of a rollup file). */
export function rollupTable(rows: readonly RollupEntry[]): Table {
  const n = rows.length;
  const text = (f: (r: RollupEntry) => string | null) => utf8(rows.map(f));
  const int64 = (f: (r: RollupEntry) => number) => BigInt64Array.from(rows, (r) => BigInt(f(r)));
  const children = [
    makeData({
      type: ROLLUP_SCHEMA.fields[0]?.type as Timestamp,
      length: n,
      nullCount: 0,
      data: int64((r) => r.period),
    }),
    text((r) => r.source),
    text((r) => r.type),
    text((r) => r.importance),
    text((r) => r.path),
    makeData({ type: new Int64(), length: n, nullCount: 0, data: int64((r) => r.events) }),
    makeData({ type: new Int64(), length: n, nullCount: 0, data: int64((r) => Math.round(r.sketch.count())) }),
    text((r) => JSON.stringify(r.sketch.toJSON())),
  ];
  const struct = makeData({ type: new Struct(ROLLUP_SCHEMA.fields), length: n, nullCount: 0, children } as never);
  return new Table(ROLLUP_SCHEMA, [new RecordBatch(ROLLUP_SCHEMA, struct as never)]);
}

/** A rollup file's rows back, sketches included. */
export function readRollups(table: Table): RollupEntry[] {
  const out: RollupEntry[] = [];
  for (const batch of table.batches) {
    const col = (name: string) => batch.getChild(name) as Vector;
    const [period, source, type, importance, path, events, sketch] = [
      "period",
      "source",
      "type",
      "importance",
      "path",
      "events",
      "sketch",
    ].map(col) as Vector[];
    for (let i = 0; i < batch.numRows; i++) {
      out.push({
        period: Number(period?.get(i)),
        source: source?.get(i) ?? null,
        type: type?.get(i) ?? null,
        importance: importance?.get(i) ?? null,
        path: path?.get(i) ?? null,
        events: Number(events?.get(i)),
        sketch: HyperLogLog.fromJSON(JSON.parse(sketch?.get(i) as string)),
      });
    }
  }
  return out;
}

/** A row as GET /rollups answers it: the estimate, not the sketch. */
export function rollupRow(grain: Grain, e: RollupEntry): RollupRow {
  return {
    grain,
    period: new Date(e.period).toISOString(),
    source: e.source,
    type: e.type,
    importance: e.importance,
    path: e.path,
    events: e.events,
    uniques: Math.round(e.sketch.count()),
  };
}

function parseData(text: string | null): Record<string, unknown> {
  if (text === null) return {};
  try {
    const data = JSON.parse(text) as unknown;
    return data !== null && typeof data === "object" ? (data as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function utf8(values: readonly (string | null)[]) {
  const encoder = new TextEncoder();
  const encoded = values.map((v) => (v === null ? null : encoder.encode(v)));
  const offsets = new Int32Array(values.length + 1);
  let size = 0;
  let nulls = 0;
  encoded.forEach((b, i) => {
    if (b === null) nulls++;
    else size += b.length;
    offsets[i + 1] = size;
  });
  const bytes = new Uint8Array(size);
  const validity = new Uint8Array((values.length + 7) >> 3);
  encoded.forEach((b, i) => {
    if (b === null) return;
    bytes.set(b, offsets[i] as number);
    validity[i >> 3] = (validity[i >> 3] as number) | (1 << (i & 7));
  });
  return makeData({
    type: new Utf8(),
    length: values.length,
    nullCount: nulls,
    nullBitmap: nulls > 0 ? validity : null,
    valueOffsets: offsets,
    data: bytes,
  } as never);
}

function sortEntries(rows: RollupEntry[]): RollupEntry[] {
  const key = (r: RollupEntry) =>
    JSON.stringify([r.period, r.path ?? "", r.source ?? "", r.type ?? "", r.importance ?? ""]);
  return rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
