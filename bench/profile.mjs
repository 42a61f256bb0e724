// Where a replica's CPU goes under WebSocket load: a V8 sampling profile of DuckTail's Worker
// inside workerd (through Miniflare's inspector), summarized as self time per function.
//
//   node_modules/.bin/node bench/profile.mjs [buffered|confirmed] [batch] [seconds]
//
// Same load and vars as the ingest section of `npm run bench`; not part of it (the profiler
// slows the isolate down, so its figures are not comparable).
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import WebSocket from "ws";
import { buildWorker, workerOptions } from "../test/helpers/miniflare.mjs";
import { INGEST_CONFIG, INGEST_VARS, loadShape } from "./ingest.mjs";
import { frameBuilder } from "./lib/frames.mjs";
import { fmt, table } from "./lib/stats.mjs";
import { Conn, runLoad } from "./lib/ws-load.mjs";

const [mode = "buffered", batchArg = "100", secondsArg = "3"] = process.argv.slice(2);
const batch = Number(batchArg);
const INSPECTOR_PORT = 9339;

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
async function devtools(url) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  const waiting = new Map();
  let next = 0;
  ws.on("message", (data) => {
    const msg = JSON.parse(data.toString());
    waiting.get(msg.id)?.(msg.result);
    waiting.delete(msg.id);
  });
  return {
    call: (method, params = {}) =>
      new Promise((resolve) => {
        const id = ++next;
        waiting.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/** Self samples per function ("name file:line"), as shares of all samples. */
function selfTime(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const id of profile.samples) {
    const { functionName, url, lineNumber } = nodes.get(id).callFrame;
    const key = `${functionName || "(anonymous)"} ${url ? `${url.split("/").pop()}:${lineNumber + 1}` : ""}`.trim();
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([fn, n]) => ({ fn, share: n / profile.samples.length })).sort((a, b) => b.share - a.share);
}

const vars = { ...INGEST_VARS, ...(process.env.BENCH_VARS ? JSON.parse(process.env.BENCH_VARS) : {}) };
const options = workerOptions(buildWorker(INGEST_CONFIG), { vars });
const mf = new Miniflare(convertV4MiniflareOptions({ ...options, inspectorPort: INSPECTOR_PORT }));
const url = (await mf.ready).toString().replace(/\/$/, "");
const shape = loadShape();
const conns = [];
for (let i = 0; i < shape.sockets; i++) conns.push(await Conn.open(`${url.replace(/^http/, "ws")}/ws`));
const load = (durationMs, tag) =>
  runLoad({ conns, window: shape.window, batch, build: frameBuilder(mode), warmupMs: 0, durationMs, tag });

await load(shape.warmupMs, "warm");
const targets = await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json`)).json();
const target = targets.find((t) => t.title?.includes("core:user:"));
if (!target) throw new Error(`no user worker among inspector targets: ${targets.map((t) => t.title).join(", ")}`);
const cdp = await devtools(target.webSocketDebuggerUrl);
await cdp.call("Profiler.enable");
await cdp.call("Profiler.setSamplingInterval", { interval: 200 });
await cdp.call("Profiler.start");
const r = await load(Number(secondsArg) * 1000, "prof");
const { profile } = await cdp.call("Profiler.stop");
if (process.env.PROFILE_OUT) (await import("node:fs")).writeFileSync(process.env.PROFILE_OUT, JSON.stringify(profile));

console.log(`\n${mode}, batch ${batch}: ${fmt.int(r.events / r.seconds)} events/s while profiled\n`);
console.log(
  table(
    [
      { title: "self", value: (row) => fmt.pct(row.share) },
      { title: "function", value: (row) => row.fn, left: true },
    ],
    selfTime(profile).slice(0, 20),
  ),
);
cdp.close();
for (const c of conns) c.close();
await mf.dispose();
