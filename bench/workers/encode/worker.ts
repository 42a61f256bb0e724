// Times DuckTail's flush encoder inside workerd, where it runs in production, on the rows
// bench/lib/events.mjs generates. A replica holds events as columns (src/columns/columns.ts),
// filled at ingest; `ms` times the whole way from row objects (building those columns, then
// Arrow → IPC → parquet-wasm ZSTD), `flushMs` only what a flush does with columns already held.
//
//   GET /encode?rows=N → { rows, bytes, ms, flushMs, tickMs }: one timed encode
//   GET /file?rows=N   → the Parquet bytes (so the runner can check them with DuckDB)
//
// One encode per request, so the runner can alternate it with DuckDB's COPY and both sides see
// the same machine noise; the runner also does the warm-up requests.
//
// workerd's clocks stand still while JavaScript runs and only advance across I/O (a Spectre
// mitigation), so the encode is bracketed by an awaited `scheduler.wait(0)`: the clock read
// after it is the real time. An empty bracket is timed too (`tickMs`); the runner subtracts it.
import "../../../src/columns/wasm";
import { EventBatch } from "../../../src/columns/batch";
import { encodeParquet } from "../../../src/columns/parquet";
import type { StoredEvent } from "../../../src/protocol/events";
import { storedEvents } from "../../lib/events.mjs";

/** Generated rows by count, kept across requests: in production they are already in memory. */
const generated = new Map<number, StoredEvent[]>();

/** The current time, as of now: awaiting a timer is I/O, so workerd moves its clock. */
async function now(): Promise<number> {
  await scheduler.wait(0);
  return Date.now();
}

async function timeOnce(work: () => void): Promise<number> {
  const start = await now();
  work();
  return (await now()) - start;
}

function rowsParam(url: URL): number {
  const n = Number(url.searchParams.get("rows"));
  if (!Number.isInteger(n) || n <= 0 || n > 1_000_000) throw new Error("rows must be an integer in 1..1,000,000");
  return n;
}

export default {
  async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const rows = rowsParam(url);
    let events = generated.get(rows);
    if (!events) {
      events = storedEvents(rows);
      generated.set(rows, events);
    }
    const rowsOf = events;
    if (url.pathname === "/file") return new Response(encodeParquet(EventBatch.from(rowsOf)));
    if (url.pathname !== "/encode") return new Response("not found", { status: 404 });

    const tickMs = await timeOnce(() => {});
    let bytes = 0;
    const ms = await timeOnce(() => {
      bytes = encodeParquet(EventBatch.from(rowsOf)).byteLength;
    });
    const held = EventBatch.from(rowsOf);
    const flushMs = await timeOnce(() => {
      encodeParquet(held);
    });
    return Response.json({ rows, bytes, ms, flushMs, tickMs });
  },
};
