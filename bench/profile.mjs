// Where a replica's CPU goes under WebSocket load: a V8 sampling profile of DuckTail's Worker
// inside workerd (through Miniflare's inspector), summarized as self time per function and, for
// the replica, as the time of each ingest stage relative to JSON.parse of the frames.
//
//   node_modules/.bin/node bench/profile.mjs [buffered|confirmed] [batch] [seconds]
//   PROFILE_REPLAY=20000 node_modules/.bin/node bench/profile.mjs   # replay.mjs's frames, in-process
//   PROFILE_BARE=1 node_modules/.bin/node bench/profile.mjs           # the bare DO under the same load
//
// Same load and vars as the ingest section of `npm run bench`; not part of it (the profiler
// slows the isolate down, so its figures are not comparable). The stage shares are the steadiest
// measure of a change to the hot path: both sides of each ratio come from the same run, so a
// shared machine's noise mostly cancels (replay: ±2 points; live: ±5).
import { fileURLToPath } from "node:url";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { buildWorker, workerOptions } from "../test/helpers/miniflare.mjs";
import { INGEST_CONFIG, INGEST_VARS, loadShape } from "./ingest.mjs";
import { devtools, selfTime } from "./lib/devtools.mjs";
import { frameBuilder } from "./lib/frames.mjs";
import { fmt, table } from "./lib/stats.mjs";
import { Conn, runLoad } from "./lib/ws-load.mjs";

const [mode = "buffered", batchArg = "100", secondsArg = "3"] = process.argv.slice(2);
const batch = Number(batchArg);
const replayFrames = Number(process.env.PROFILE_REPLAY ?? 0);
const bare = Boolean(process.env.PROFILE_BARE);
const INSPECTOR_PORT = 9339;

// The functions of each ingest stage. V8 inlines small functions into their callers (validateBatch
// into take, say), so a stage is known by any of its functions on a sample's stack, not just its entry.
const STAGES = [
  ["parse", ["parseFrame"]],
  ["validate", ["validateBatch", "normalize", "parseTimestamp", "eventBytes"]],
  ["columns", ["pushBatch", "append", "appendRun", "appendText", "openBlock"]],
  [
    "views",
    [
      "addEach",
      "afterAppend",
      "countPageview",
      "partialOf",
      "cleanPath",
      "latencyOf",
      "latencyRoute",
      "errorFingerprint",
      "refillViewEvent",
      "hash32i",
      "raise",
    ],
  ],
];

/**
 * Samples per ingest stage of the replica (by the functions on each sample's stack), as % of the
 * samples in parseFrame (JSON.parse of the frame: what the bare DO does too).
 */
function stages(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const counts = {};
  for (const id of profile.samples) {
    const stack = new Set();
    for (let x = id; x !== undefined; x = parent.get(x)) stack.add(nodes.get(x).callFrame.functionName);
    const own = nodes.get(id).callFrame.functionName;
    const known = STAGES.find(([, names]) => names.some((n) => stack.has(n)))?.[0];
    // `add` alone (the fused views' pass, inlined into take) is views; anything else under a message is the socket path.
    const stage =
      known ??
      (own === "add" && stack.has("take")
        ? "views"
        : stack.has("webSocketMessage")
          ? "socket, ack, rest of take"
          : own === "(garbage collector)"
            ? "gc"
            : "outside messages (flushes, timers, idle)");
    counts[stage] = (counts[stage] ?? 0) + 1;
  }
  return Object.entries(counts)
    .map(([stage, n]) => ({ stage, ofParse: n / (counts.parse ?? Number.NaN) }))
    .sort((a, b) => b.ofParse - a.ofParse);
}

const vars = { ...INGEST_VARS, ...(process.env.BENCH_VARS ? JSON.parse(process.env.BENCH_VARS) : {}) };
const options = bare
  ? {
      ...workerOptions(fileURLToPath(new URL("./workers/bare", import.meta.url))),
      durableObjects: { BARE: { className: "BareIngest", useSQLite: true } },
      r2Buckets: [],
      bindings: {},
    }
  : workerOptions(buildWorker(INGEST_CONFIG), { vars });
const mf = new Miniflare(convertV4MiniflareOptions({ ...options, inspectorPort: INSPECTOR_PORT }));
const url = (await mf.ready).toString().replace(/\/$/, "");
const shape = loadShape();
const conns = [];
for (let i = 0; i < shape.sockets; i++) conns.push(await Conn.open(`${url.replace(/^http/, "ws")}/ws`));
const load = (durationMs, tag) =>
  runLoad({ conns, window: shape.window, batch, build: frameBuilder(mode), warmupMs: 0, durationMs, tag });
/** Has the ingest worker replay `frames` canned frames in-process (see workers/ingest/worker.ts). */
const replay = (frames) =>
  new Promise((resolve) => {
    conns[0].ws.once("message", resolve);
    conns[0].ws.send(`__replay:${frames}:replica`);
  });

if (replayFrames) await replay(4000);
else await load(shape.warmupMs, "warm");
const cdp = await devtools(INSPECTOR_PORT);
await cdp.call("Profiler.enable");
await cdp.call("Profiler.setSamplingInterval", { interval: replayFrames ? 100 : 200 });
await cdp.call("Profiler.start");
const started = performance.now();
const r = replayFrames ? null : await load(Number(secondsArg) * 1000, "prof");
if (replayFrames) await replay(replayFrames);
const { profile } = await cdp.call("Profiler.stop");
if (process.env.PROFILE_OUT) (await import("node:fs")).writeFileSync(process.env.PROFILE_OUT, JSON.stringify(profile));

console.log(
  r
    ? `\n${bare ? "bare DO" : "replica"}, ${mode}, batch ${batch}: ${fmt.int(r.events / r.seconds)} events/s while profiled\n`
    : `\nreplica, ${replayFrames} replayed 100-event frames in ${fmt.int(performance.now() - started)} ms while profiled\n`,
);
console.log(
  table(
    [
      { title: "self", value: (row) => fmt.pct(row.share) },
      { title: "function", value: (row) => row.fn, left: true },
    ],
    selfTime(profile).slice(0, 20),
  ),
);
if (!bare) {
  console.log("\nIngest stages, as time relative to JSON.parse of the frames (parse = 100%):\n");
  console.log(
    table(
      [
        { title: "of parse", value: (row) => fmt.pct(row.ofParse) },
        { title: "stage", value: (row) => row.stage, left: true },
      ],
      stages(profile),
    ),
  );
}
cdp.close();
for (const c of conns) c.close();
await mf.dispose();
