// The replica's own CPU per 100-event frame, measured inside its isolate (not part of `npm run bench`):
//
//   node_modules/.bin/node bench/replay.mjs        # FRAMES=4000 ROUNDS=5 BENCH_VARS='{"VIEWS":"none"}'
//
// The ingest worker replays canned frames through the real socket path (see `replay` in
// workers/ingest/worker.ts), then the same frames parsed and acked the way the bare DO does; the
// difference is what DuckTail adds per frame. Over the network both sides also pay the runtime's
// per-message cost (~60 µs here), which this leaves out, so it is for comparing changes to the
// replica, a few µs apart, where the ingest section's throughput ratio is too noisy to tell.
import WebSocket from "ws";
import { buildWorker } from "../test/helpers/miniflare.mjs";
import { INGEST_CONFIG } from "./ingest.mjs";
import { cpuSeconds } from "./lib/cpu.mjs";
import { startDuckTail } from "./lib/workerd.mjs";

const frames = Number(process.env.FRAMES ?? 4000);
const rounds = Number(process.env.ROUNDS ?? 5);
const vars = process.env.BENCH_VARS ? JSON.parse(process.env.BENCH_VARS) : {};
const ducktail = await startDuckTail(buildWorker(INGEST_CONFIG), vars);
const ws = new WebSocket(`${ducktail.url.replace(/^http/, "ws")}/ws`);
await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
const call = (text) =>
  new Promise((resolve) => {
    ws.once("message", resolve);
    ws.send(text);
  });
await call('{"type":"ping"}');
// workerd's CPU time, not wall time: on a shared machine other tenants' load stretches the wall
// clock far more than it changes the CPU a frame takes (10 ms ticks: keep FRAMES in the thousands).
const timed = async (side) => {
  const started = cpuSeconds(ducktail.pid);
  await call(`__replay:${frames}:${side}`);
  return ((cpuSeconds(ducktail.pid) - started) * 1e6) / frames;
};
await timed("replica"); // warm-up: JIT, views, first blocks
await timed("bare");
const us = { bare: [], replica: [] };
for (let r = 0; r < rounds; r++) for (const side of ["bare", "replica"]) us[side].push(await timed(side));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const [bare, replica] = [median(us.bare), median(us.replica)];
console.log(
  `µs per 100-event frame, in-process (median of ${rounds}): bare ${bare.toFixed(1)}, replica ${replica.toFixed(1)}, ` +
    `DuckTail adds ${(replica - bare).toFixed(1)} (fastest rounds: ${(Math.min(...us.replica) - Math.min(...us.bare)).toFixed(1)})   [replica rounds: ${us.replica.map((x) => x.toFixed(0)).join(" ")}]`,
);
ws.close();
await ducktail.mf.dispose();
