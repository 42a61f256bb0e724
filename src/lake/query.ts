import { eventJson } from "../columns/json";
import { readTable } from "../columns/parquet";
import { readEvents } from "../columns/read";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import { CONTEXT_COLUMNS, type EventContext, IMPORTANCE, type Importance, type StoredEvent } from "../protocol/events";
import type { SnapshotFile } from "./catalog/catalog";
import type { TenantCatalog } from "./catalog/client";

/** GET /events: a time range of receipt, optional filters, how many and in what format. */
export interface EventQuery {
  /** Epoch ms, inclusive; `received_at` (the partition key), not the client's `ts`. */
  from: number;
  /** Epoch ms, exclusive. */
  to: number;
  source: string[] | null;
  type: string[] | null;
  importance: Importance[] | null;
  /** Context fields that must be among the given values (`country=DE,AT`, `browser=Chrome`). */
  context: [field: (typeof CONTEXT_COLUMNS)[number][0], values: string[]][];
  /** `bot=true|false`: only events from (or not from) bots. */
  bot: boolean | null;
  limit: number;
  format: "json" | "ndjson";
  /** Read the lake as of this snapshot (`?snapshot=`), or as of the last snapshot at this time (`?asOf=`). */
  snapshot: number | null;
  asOf: number | null;
  /**
   * `?buffered=only`: the replicas' still-buffered rows alone, no lake files (a reader of the lake's
   * objects adds what is not flushed yet). Only for the latest snapshot. Default false.
   */
  bufferedOnly?: boolean;
}

/** The lake a query reads: a snapshot's files (in the range) and whether the replicas' buffers join them. */
export interface LakeView {
  snapshot: number;
  files: SnapshotFile[];
  /** False for a snapshot asked for by id or time: it holds what the lake held then, no more. */
  live: boolean;
}

const HOUR_MS = 3_600_000;
const MAX_RANGE_MS = 31 * 24 * HOUR_MS;
const MAX_LIMIT = { json: 10_000, ndjson: 1_000_000 };

/** A time parameter: epoch ms or ISO-8601; `fallback` when absent. */
export function time(raw: string | null, fallback: number, name: string): number {
  if (raw === null || raw === "") return fallback;
  const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(ms)) throw new DuckTailError(ErrorCode.badRequest, `${name} must be epoch ms or ISO-8601`);
  return ms;
}

function list(raw: string | null): string[] | null {
  if (raw === null || raw === "") return null;
  return raw.split(",").map((s) => s.trim());
}

/** Reads and checks the query string; the default is the last hour, newest 100 events, as JSON. */
export function parseEventQuery(url: URL, now = Date.now()): EventQuery {
  const p = url.searchParams;
  const to = time(p.get("to"), now + 1, "to");
  const from = time(p.get("from"), to - HOUR_MS, "from");
  if (!(from < to) || to - from > MAX_RANGE_MS) {
    throw new DuckTailError(ErrorCode.badRequest, "from must be before to, at most 31 days apart");
  }
  const format = (p.get("format") ?? "json") as EventQuery["format"];
  if (format !== "json" && format !== "ndjson")
    throw new DuckTailError(ErrorCode.badRequest, "format must be json or ndjson");
  const limit = p.get("limit") === null ? 100 : Number(p.get("limit"));
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT[format]) {
    throw new DuckTailError(ErrorCode.badRequest, `limit must be 1..${MAX_LIMIT[format]} for ${format}`);
  }
  const importance = list(p.get("importance"));
  for (const i of importance ?? []) {
    if (!IMPORTANCE.includes(i as Importance)) {
      throw new DuckTailError(ErrorCode.badRequest, `importance must be among ${IMPORTANCE.join(", ")}`);
    }
  }
  const bot = p.get("bot");
  if (bot !== null && bot !== "true" && bot !== "false") {
    throw new DuckTailError(ErrorCode.badRequest, "bot must be true or false");
  }
  const snapshot = p.get("snapshot");
  if (snapshot !== null && !/^\d{1,15}$/.test(snapshot)) {
    throw new DuckTailError(ErrorCode.badRequest, "snapshot must be a snapshot id (see GET /snapshots)");
  }
  const asOf = p.get("asOf");
  if (snapshot !== null && asOf !== null)
    throw new DuckTailError(ErrorCode.badRequest, "give snapshot or asOf, not both");
  const buffered = p.get("buffered");
  if (buffered !== null && buffered !== "only") throw new DuckTailError(ErrorCode.badRequest, "buffered must be only");
  if (buffered !== null && (snapshot !== null || asOf !== null)) {
    throw new DuckTailError(ErrorCode.badRequest, "buffered=only reads the latest snapshot: give no snapshot or asOf");
  }
  const context: EventQuery["context"] = [];
  for (const [field] of CONTEXT_COLUMNS) {
    const values = list(p.get(field));
    if (values) context.push([field, values]);
  }
  return {
    from,
    to,
    source: list(p.get("source")),
    type: list(p.get("type")),
    importance: importance as Importance[] | null,
    context,
    bot: bot === null ? null : bot === "true",
    limit,
    format,
    snapshot: snapshot === null ? null : Number(snapshot),
    asOf: asOf === null ? null : time(asOf, 0, "asOf"),
    bufferedOnly: buffered === "only",
  };
}

/**
 * The snapshot a query reads and its files in the query's range, from the catalog: the one asked
 * for, or the latest (then joined by what the replicas still buffer). Never a bucket listing.
 */
export async function openLake(catalog: TenantCatalog, q: EventQuery): Promise<LakeView> {
  const read = await catalog.read({
    ...(q.snapshot !== null && { snapshot: q.snapshot }),
    ...(q.asOf !== null && { asOf: q.asOf }),
    from: q.from,
    to: q.to,
  });
  if ("missing" in read) throw new DuckTailError(ErrorCode.notFound, read.missing);
  const files = q.bufferedOnly ? [] : read.files;
  return { snapshot: read.snapshot, files, live: q.snapshot === null && q.asOf === null };
}

function matchesContext(c: EventContext | undefined, q: EventQuery): boolean {
  if (q.bot !== null && (c?.bot ?? null) !== q.bot) return false;
  for (const [field, values] of q.context) if (!values.includes(c?.[field] as string)) return false;
  return true;
}

export function matchesQuery(e: StoredEvent, q: EventQuery): boolean {
  return (
    e.receivedAt >= q.from &&
    e.receivedAt < q.to &&
    (q.source === null || q.source.includes(e.source)) &&
    (q.type === null || q.type.includes(e.type)) &&
    (q.importance === null || q.importance.includes(e.importance)) &&
    (q.bot === null && q.context.length === 0 ? true : matchesContext(e.context, q))
  );
}

/** Newest receipt first; ties by replica and seq, descending. */
export const newestFirst = (a: StoredEvent, b: StoredEvent) =>
  b.receivedAt - a.receivedAt || (a.replica < b.replica ? 1 : a.replica > b.replica ? -1 : b.seq - a.seq);

/**
 * The matching events, newest first: hour partition by hour partition from `to` back to `from`,
 * each hour's rows from the snapshot's files (minus the rows their delete files remove) merged,
 * for a live view, with the rows still buffered in the replicas. A row both flushed and still
 * buffered (a flush in progress) comes once. Memory holds one hour at a time.
 */
export async function* queryEvents(
  bucket: R2Bucket,
  lake: LakeView,
  q: EventQuery,
  buffered: StoredEvent[],
): AsyncGenerator<StoredEvent> {
  let left = q.limit;
  const seen = new Set<string>();
  const live = lake.live ? buffered.filter((e) => matchesQuery(e, q)) : [];
  for (let hour = Math.floor((q.to - 1) / HOUR_MS) * HOUR_MS; hour >= q.from - (q.from % HOUR_MS); hour -= HOUR_MS) {
    const rows = live.filter((e) => e.receivedAt >= hour && e.receivedAt < hour + HOUR_MS);
    for (const file of lake.files) {
      if (file.hour !== hour) continue;
      for (const e of await fileRows(bucket, file)) if (matchesQuery(e, q)) rows.push(e);
    }
    rows.sort(newestFirst);
    for (const e of rows) {
      const id = `${e.replica}/${e.seq}`;
      if (seen.has(id)) continue;
      seen.add(id);
      yield e;
      if (--left === 0) return;
    }
  }
}

/** A data file's rows, minus the positions its delete file lists. */
async function fileRows(bucket: R2Bucket, file: SnapshotFile): Promise<StoredEvent[]> {
  const rows = readEvents(await objectBytes(bucket, file.key));
  if (!file.deletes) return rows;
  const positions = readTable(await objectBytes(bucket, file.deletes.key)).getChild("pos");
  const deleted = new Set<number>();
  for (let i = 0; i < (positions?.length ?? 0); i++) deleted.add(Number(positions?.get(i)));
  return rows.filter((_, i) => !deleted.has(i));
}

/** An object a snapshot lists: it stays in R2 until the snapshot expires, so its absence is an error. */
async function objectBytes(bucket: R2Bucket, key: string): Promise<Uint8Array> {
  const obj = await bucket.get(key);
  if (!obj) throw new DuckTailError(ErrorCode.internal, `the lake lists ${key} but R2 has no such object`);
  return new Uint8Array(await obj.arrayBuffer());
}

/**
 * The query's answer: JSON `{from, to, snapshot, events, count}`, or NDJSON streamed as rows are
 * found; both name the snapshot read in the `DuckTail-Snapshot` header.
 */
export async function eventsResponse(
  rows: AsyncGenerator<StoredEvent>,
  q: EventQuery,
  snapshot: number,
): Promise<Response> {
  if (q.format === "json") {
    // At most 10,000 rows: gathered first, so a failure is an error status, not a cut-off body.
    const parts: string[] = [];
    for await (const e of rows) parts.push(eventJson(e));
    const body = `{"from":${q.from},"to":${q.to},"snapshot":${snapshot},"events":[${parts.join(",")}],"count":${parts.length}}`;
    return new Response(body, {
      headers: { "content-type": "application/json", "ducktail-snapshot": String(snapshot) },
    });
  }
  const enc = new TextEncoder();
  return new Response(
    new ReadableStream({
      async pull(controller) {
        const next = await rows.next();
        if (next.done) controller.close();
        else controller.enqueue(enc.encode(`${eventJson(next.value)}\n`));
      },
    }),
    { headers: { "content-type": "application/x-ndjson", "ducktail-snapshot": String(snapshot) } },
  );
}
