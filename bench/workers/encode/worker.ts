// Times DuckTail's flush encoder (StoredEvent[] in memory → Arrow → IPC → parquet-wasm ZSTD)
// inside workerd, where it runs in production, on the rows bench/lib/events.mjs generates.
//
//   GET /encode?rows=N&iterations=K → { rows, bytes, ms: number[], tickMs }
//   GET /file?rows=N               → the Parquet bytes (so the runner can check them with DuckDB)
//
// workerd's clocks stand still while JavaScript runs and only advance across I/O (a Spectre
// mitigation), so each timed encode is bracketed by an awaited `scheduler.wait(0)`: the clock
// read after it is the real time. One such bracket with nothing inside is timed too (`tickMs`),
// and the runner subtracts it.
import "../../../src/sinks/wasm";
import { encodeParquet } from "../../../src/sinks/parquet";
import { storedEvents } from "../../lib/events.mjs";

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

function intParam(url: URL, name: string, fallback: number): number {
  const n = Number(url.searchParams.get(name) ?? fallback);
  if (!Number.isInteger(n) || n <= 0 || n > 1_000_000) throw new Error(`bad ${name}`);
  return n;
}

export default {
  async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const rows = intParam(url, "rows", 10_000);
    // Generating the rows is not part of the measurement: in production they are already in memory.
    const events = storedEvents(rows);
    if (url.pathname === "/file") return new Response(encodeParquet(events));
    if (url.pathname !== "/encode") return new Response("not found", { status: 404 });

    const iterations = intParam(url, "iterations", 3);
    // Warm-up: JIT, wasm memory growth; its output gives the file size.
    const bytes = encodeParquet(events).byteLength;
    const tickMs = await timeOnce(() => {});
    const ms: number[] = [];
    for (let i = 0; i < iterations; i++) ms.push(await timeOnce(() => encodeParquet(events)));
    return Response.json({ rows, bytes, ms, tickMs });
  },
};
