// Quick A/B of the ingest section at one batch size: replica vs bare, interleaved rounds, the
// ratio of each pair and their median (not part of `npm run bench`).
//   node_modules/.bin/node bench/ab.mjs [rounds=4] [batch=100] [mode=buffered]   (BENCH_VARS as in ingest)
// With AB_BASE=<bundle dir> (a `buildWorker(INGEST_CONFIG)` of other code, e.g. a clean checkout
// of the last commit), that replica runs in the same rounds too, to compare two versions paired.
import { fileURLToPath } from "node:url";
import { buildWorker } from "../test/helpers/miniflare.mjs";
import { flush, INGEST_CONFIG, loadShape, measure, openAll } from "./ingest.mjs";
import { startBenchWorker, startDuckTail } from "./lib/workerd.mjs";

const [roundsArg = "4", batchArg = "100", mode = "buffered"] = process.argv.slice(2);
const batch = Number(batchArg);
const shape = loadShape();
const vars = process.env.BENCH_VARS ? JSON.parse(process.env.BENCH_VARS) : {};
const dt = await startDuckTail(buildWorker(INGEST_CONFIG), vars);
const base = process.env.AB_BASE ? await startDuckTail(process.env.AB_BASE, vars) : null;
const bare = await startBenchWorker(fileURLToPath(new URL("./workers/bare", import.meta.url)), {
  durableObjects: { BARE: { className: "BareIngest", useSQLite: true } },
});
const targets = [dt, bare, ...(base ? [base] : [])];
for (const t of targets) t.conns = await openAll(`${t.url.replace(/^http/, "ws")}/ws`, shape.sockets);

const run = async (t, tag) => {
  const r = await measure(t, batch, mode, shape, tag);
  await flush(t.conns[0], tag);
  // Events per second of the server's CPU: steadier than wall-clock rates on a shared machine.
  return { ...r, perCpu: r.eventsPerSec / (r.serverCpu ?? Number.NaN) };
};
const cores = (r) => `server ${r.serverCpu?.toFixed(2)}, client ${r.clientCpu?.toFixed(2)}`;
const ratios = [];
const cpuRatios = [];
const baseRatios = [];
for (let i = 0; i < Number(roundsArg); i++) {
  const b = await run(bare, `b${i}`);
  const d = await run(dt, `d${i}`);
  const o = base ? await run(base, `o${i}`) : null;
  ratios.push(d.eventsPerSec / b.eventsPerSec);
  cpuRatios.push(d.perCpu / b.perCpu);
  if (o) baseRatios.push(o.eventsPerSec / b.eventsPerSec);
  console.log(
    `round ${i}: bare ${Math.round(b.eventsPerSec)} replica ${Math.round(d.eventsPerSec)} ratio ${(d.eventsPerSec / b.eventsPerSec).toFixed(3)}` +
      (o ? ` base ${Math.round(o.eventsPerSec)} ratio ${(o.eventsPerSec / b.eventsPerSec).toFixed(3)}` : "") +
      ` | per cpu-s: bare ${Math.round(b.perCpu)} replica ${Math.round(d.perCpu)} ratio ${(d.perCpu / b.perCpu).toFixed(3)}` +
      ` | cores: bare ${cores(b)}; replica ${cores(d)}`,
  );
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(3);
const baseMedian = base ? `, base ${median(baseRatios)}` : "";
console.log(`median ratio ${median(ratios)} (per cpu-s ${median(cpuRatios)})${baseMedian}`);
for (const t of targets) for (const c of t.conns) c.close();
await Promise.all(targets.map((t) => t.mf.dispose()));
