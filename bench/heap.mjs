// Does a replica's heap grow with malformed input? The Worker runs under Miniflare with V8's
// inspector open; the heap is read from the isolate that runs the Worker, its coordinator and
// its replicas (`Runtime.getHeapUsage` after two forced collections), not from the workerd
// process, whose memory also holds local SQLite, R2 emulation and logs. Rounds of malformed
// input of every kind (bad JSON, bad events, bad frames, bad keys, bad pixels) follow a warm-up,
// and the table prints the heap after each round: bounded means the rounds after the first add
// (next to) nothing.

import { readFileSync } from "node:fs";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import WebSocket from "ws";
import { workerOptions } from "../test/helpers/miniflare.mjs";
import { childPids } from "./lib/cpu.mjs";

const ROUNDS = Number(process.env.BENCH_HEAP_ROUNDS ?? 3);
/** Inputs per round: half as socket frames (cheap to send), the rest over HTTP. */
const PER_ROUND = Number(process.env.BENCH_HEAP_INPUTS ?? 20_000);
const KEYS = { heap_w: { tenant: "heap", scope: "write" }, heap_a: { tenant: "heap", scope: "admin" } };

/** A process's resident memory in MiB, from /proc; null where there is none. */
function processRssMiB(pid) {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : null;
  } catch {
    return null;
  }
}

/**
 * A CDP session to one isolate. workerd handles inspector messages when the isolate is next
 * entered, so a call not answered within 200 ms is followed by `nudge()` (a request to the Worker).
 */
async function inspector(url, nudge) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let next = 0;
  const waiting = new Map();
  ws.on("message", (m) => {
    const msg = JSON.parse(String(m));
    waiting.get(msg.id)?.(msg);
    waiting.delete(msg.id);
  });
  const call = (method, params = {}) =>
    new Promise((resolve) => {
      const id = ++next;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
      if (nudge) setTimeout(() => waiting.has(id) && nudge(), 200);
    });
  return {
    async heapBytes() {
      await call("HeapProfiler.collectGarbage");
      await call("HeapProfiler.collectGarbage");
      return (await call("Runtime.getHeapUsage")).result.usedSize;
    },
    close: () => ws.close(),
  };
}

/** The i-th malformed HTTP request: each kind in turn. */
function badRequest(url, i) {
  switch (i % 6) {
    case 0:
      return [`${url}/e?key=heap_w`, { method: "POST", body: `{"type": "x", bad json ${i}` }];
    case 1:
      return [`${url}/e?key=heap_w`, { method: "POST", body: JSON.stringify([{ nope: i }, { type: 7 }]) }];
    case 2:
      return [`${url}/e?key=heap_w&type=x&data=${i}`, {}];
    case 3:
      return [`${url}/e?key=wrong-${i}`, { method: "POST", body: '{"type":"x"}' }];
    case 4:
      return [`${url}/p.gif?e=pageview&k=nobody-${i}`, {}];
    default:
      return [`${url}/v1/track`, { method: "POST", body: JSON.stringify({ writeKey: "heap_w", event: `e${i}` }) }];
  }
}

/** The i-th malformed socket frame. */
function badFrame(i) {
  switch (i % 5) {
    case 0:
      return `{"type":"events","events":[{"type":"x","importance":"urgent-${i}"}]}`;
    case 1:
      return `not json ${i}`;
    case 2:
      return JSON.stringify({ type: `unknown-${i}` });
    case 3:
      return JSON.stringify({ type: "subscribe", filter: { source: [`*${i}*`], nope: 1 } });
    default:
      return JSON.stringify({ type: "events", id: `f${i}`, events: [{ type: "x", id: `x-\ud800${i}` }] });
  }
}

async function socket(url) {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws?key=heap_w`);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  return ws;
}

/** Sends `n` frames on `ws`, at most 64 unanswered (every bad frame is answered with an error). */
async function sendFrames(ws, from, n) {
  let answered = 0;
  let sent = 0;
  await new Promise((resolve) => {
    const pump = () => {
      while (sent < n && sent - answered < 64) ws.send(badFrame(from + sent++));
    };
    ws.on("message", function onMessage() {
      if (++answered === n) {
        ws.off("message", onMessage);
        resolve();
      } else pump();
    });
    pump();
  });
}

async function sendRequests(url, from, n) {
  const lanes = 16;
  let i = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (i < n) {
        const [target, init] = badRequest(url, from + i++);
        await (await fetch(target, init)).arrayBuffer();
      }
    }),
  );
}

export async function runHeap(bundleDir, log) {
  const before = new Set(childPids());
  const options = workerOptions(bundleDir, { vars: { DUCKTAIL_KEYS: JSON.stringify(KEYS) } });
  const mf = new Miniflare(convertV4MiniflareOptions({ ...options, inspectorPort: 0 }));
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const pid = childPids().find((p) => !before.has(p)) ?? null;
  const isolate = await inspector(`${(await mf.getInspectorURL()).toString().replace(/\/$/, "")}/core:user:`, () =>
    fetch(`${url}/health`).then((r) => r.arrayBuffer()),
  );
  try {
    await fetch(`${url}/e?key=heap_w`, { method: "POST", body: '{"type":"warm"}' });
    const sockets = [await socket(url), await socket(url)];
    const round = async (from, n) => {
      const frames = Math.floor(n / 2);
      await Promise.all([
        sendFrames(sockets[0], from, Math.floor(frames / 2)),
        sendFrames(sockets[1], from + frames, frames - Math.floor(frames / 2)),
        sendRequests(url, from, n - frames),
      ]);
    };
    log(`heap: warm-up (${PER_ROUND / 10} inputs)`);
    await round(0, PER_ROUND / 10);
    const rows = [{ round: "after warm-up", inputs: 0, heap: await isolate.heapBytes(), rss: processRssMiB(pid) }];
    for (let r = 1; r <= ROUNDS; r++) {
      log(`heap: round ${r} of ${ROUNDS} (${PER_ROUND} malformed inputs)`);
      const started = Date.now();
      await round(r * PER_ROUND, PER_ROUND);
      rows.push({
        round: `round ${r}`,
        inputs: PER_ROUND,
        seconds: (Date.now() - started) / 1000,
        heap: await isolate.heapBytes(),
        rss: processRssMiB(pid),
      });
    }
    for (const ws of sockets) ws.close();
    const stats = await (await fetch(`${url}/buffer/stats/aggregate?key=heap_a`)).json();
    return { rows, rejected: stats.rejected ?? stats.totals?.rejected ?? null };
  } finally {
    isolate.close();
    await mf.dispose();
  }
}

export function printHeap({ rows, rejected }) {
  console.log("\nHeap under malformed input: the isolate running the Worker, coordinator and replicas (V8's");
  console.log("used heap after two forced GCs, from the inspector), beside the workerd process's RSS.");
  console.log(`Each round: ${PER_ROUND} inputs, half as bad socket frames, half as bad HTTP requests (bad JSON,`);
  console.log("bad events, bad data, wrong keys, bad pixels, Segment calls without ids).\n");
  console.log("round          inputs  seconds  heap MiB  growth B/input  workerd RSS MiB");
  console.log("-------------  ------  -------  --------  --------------  ---------------");
  rows.forEach((row, i) => {
    const prev = rows[i - 1];
    const growth = prev && row.inputs ? ((row.heap - prev.heap) / row.inputs).toFixed(1) : "";
    console.log(
      `${row.round.padEnd(13)}  ${String(row.inputs || "").padStart(6)}  ${row.seconds ? row.seconds.toFixed(1).padStart(7) : "       "}  ${(row.heap / 2 ** 20).toFixed(2).padStart(8)}  ${growth.padStart(14)}  ${row.rss === null ? "" : String(row.rss).padStart(15)}`,
    );
  });
  if (rejected !== null) console.log(`\nevents rejected in the replicas' stats: ${rejected}`);
}

export function heapJson(result) {
  return result;
}
