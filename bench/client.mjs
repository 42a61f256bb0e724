// Section 4: what one `ducktail/client` can push, acked, against the real Worker under Miniflare,
// beside a bare pipelining WebSocket sending the same events in the same frames (the wire's limit
// in the same run); and the browser snippet's gzipped size.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { buildWorker } from "../test/helpers/miniflare.mjs";
import { eventInput } from "./lib/events.mjs";
import { frameBuilder } from "./lib/frames.mjs";
import { fmt, median, round, table } from "./lib/stats.mjs";
import { startDuckTail } from "./lib/workerd.mjs";
import { Conn } from "./lib/ws-load.mjs";

export const CLIENT_CASES = [
  { storageMode: "buffered", maxBatchSize: 100 },
  { storageMode: "confirmed", maxBatchSize: 100 },
  { storageMode: "buffered", maxBatchSize: 1000 },
];
const EVENTS = 50_000;
const WARMUP_EVENTS = 5_000;
const ROUNDS = 3;
/** Frames the bare socket keeps in flight: about what the client's batches reach at this rate. */
const RAW_WINDOW = 16;
export const DUCK_BUDGET = { max: 6 * 1024, aim: 4 * 1024 };

/** Tracks `n` events as fast as the client takes them; resolves when every one was acked. */
async function pushWithClient(url, { storageMode, maxBatchSize }, n, offset) {
  // dist/ is built by run.mjs before this section (and by `npm install`).
  const { DuckTailClient } = await import("../dist/client.js");
  const client = new DuckTailClient({ url, storageMode, maxBatchSize, batchInterval: 20, maxQueue: n + 1 });
  await client.connect();
  // Generated before the clock starts, as an app has its events at hand.
  const inputs = Array.from({ length: n }, (_, i) => eventInput(offset + i));
  const cpu = process.cpuUsage();
  const started = performance.now();
  const acked = [];
  for (const e of inputs) {
    acked.push(
      client.track(e.type, e.data, {
        id: e.id,
        source: e.source,
        importance: e.importance,
        userId: e.userId,
        anonymousId: e.anonymousId,
        sessionId: e.sessionId,
        timestamp: e.timestamp,
      }),
    );
  }
  const results = await Promise.allSettled(acked);
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  await client.close();
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length > 0) throw new Error(`${failed.length} tracks failed: ${failed[0].reason}`);
  return { ms, cpuUs: used.user + used.system };
}

/** The same events in frames of `maxBatchSize` over one bare socket, RAW_WINDOW frames in flight. */
async function pushRaw(url, { storageMode, maxBatchSize }, n) {
  const conn = await Conn.open(`${url.replace(/^http/, "ws")}/ws`);
  const build = frameBuilder(storageMode);
  const cpu = process.cpuUsage();
  const started = performance.now();
  await new Promise((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    let next = 0;
    const sendOne = () => {
      if (sent >= n) return;
      const batch = Math.min(maxBatchSize, n - sent);
      sent += batch;
      const id = `raw-${next++}`;
      conn.send(id, build(id, batch), (reply) => {
        if (reply.type !== "ack") return reject(new Error(`${reply.code}: ${reply.message}`));
        acked += reply.received;
        if (acked >= n) resolve();
        else sendOne();
      });
    };
    for (let i = 0; i < RAW_WINDOW; i++) sendOne();
  });
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  conn.close();
  return { ms, cpuUs: used.user + used.system };
}

export async function runClient(log) {
  const worker = await startDuckTail(buildWorker(), {});
  const rows = [];
  try {
    let offset = 0;
    for (const c of CLIENT_CASES) {
      await pushWithClient(worker.url, c, WARMUP_EVENTS, offset);
      offset += WARMUP_EVENTS;
      const client = [];
      const raw = [];
      for (let round = 0; round < ROUNDS; round++) {
        client.push(await pushWithClient(worker.url, c, EVENTS, offset));
        offset += EVENTS;
        raw.push(await pushRaw(worker.url, c, EVENTS));
      }
      const clientMs = median(client.map((r) => r.ms));
      const rawMs = median(raw.map((r) => r.ms));
      const row = {
        ...c,
        events: EVENTS,
        clientEventsPerSec: (EVENTS / clientMs) * 1000,
        rawEventsPerSec: (EVENTS / rawMs) * 1000,
        ratio: rawMs / clientMs,
        clientCpuUsPerEvent: median(client.map((r) => r.cpuUs)) / EVENTS,
        rawCpuUsPerEvent: median(raw.map((r) => r.cpuUs)) / EVENTS,
      };
      log(
        `  ${c.storageMode} ×${c.maxBatchSize}: client ${fmt.int(row.clientEventsPerSec)} ev/s, bare socket ${fmt.int(row.rawEventsPerSec)} ev/s`,
      );
      rows.push(row);
    }
  } finally {
    await worker.mf.dispose();
  }
  const duck = readFileSync(fileURLToPath(new URL("../dist/duck.js", import.meta.url)));
  return { rows, duckJs: { bytes: duck.byteLength, gzipBytes: gzipSync(duck, { level: 9 }).byteLength } };
}

export function printClient(result) {
  console.log(
    `\nClient: one DuckTailClient tracking ${fmt.int(EVENTS)} events at once (resolved when acked), beside one bare` +
      `\nWebSocket sending the same events in frames of the same size, ${RAW_WINDOW} frames in flight; median of ${ROUNDS}.` +
      "\nCPU µs/event is the Node process's (client side).\n",
  );
  console.log(
    table(
      [
        { title: "mode", value: (r) => r.storageMode },
        { title: "batch", value: (r) => r.maxBatchSize },
        { title: "client ev/s", value: (r) => fmt.int(r.clientEventsPerSec) },
        { title: "bare ev/s", value: (r) => fmt.int(r.rawEventsPerSec) },
        { title: "client/bare", value: (r) => fmt.pct(r.ratio) },
        { title: "client CPU µs/ev", value: (r) => r.clientCpuUsPerEvent.toFixed(2) },
        { title: "bare CPU µs/ev", value: (r) => r.rawCpuUsPerEvent.toFixed(2) },
      ],
      result.rows,
    ),
  );
  const { bytes, gzipBytes } = result.duckJs;
  const verdict =
    gzipBytes <= DUCK_BUDGET.aim
      ? "within the 4 KB aim"
      : gzipBytes <= DUCK_BUDGET.max
        ? "within the 6 KB budget"
        : "OVER the 6 KB budget";
  console.log(`\nduck.js: ${fmt.int(bytes)} bytes, ${fmt.int(gzipBytes)} gzipped (${verdict})`);
}

export function clientJson(result) {
  return {
    rows: result.rows.map((r) => ({
      ...r,
      clientEventsPerSec: round(r.clientEventsPerSec, 0),
      rawEventsPerSec: round(r.rawEventsPerSec, 0),
      ratio: round(r.ratio, 3),
      clientCpuUsPerEvent: round(r.clientCpuUsPerEvent, 3),
      rawCpuUsPerEvent: round(r.rawCpuUsPerEvent, 3),
    })),
    duckJs: { ...result.duckJs, budget: DUCK_BUDGET },
  };
}
