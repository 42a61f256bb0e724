// Quick A/B of the ingest section at one batch size: replica vs bare, interleaved rounds, the
// ratio of each pair and their median (not part of `npm run bench`).
//   node_modules/.bin/node bench/ab.mjs [rounds=4] [batch=100] [mode=buffered]   (BENCH_VARS as in ingest)
import { fileURLToPath } from "node:url";
import { buildWorker } from "../test/helpers/miniflare.mjs";
import { INGEST_CONFIG, loadShape } from "./ingest.mjs";
import { frameBuilder } from "./lib/frames.mjs";
import { startBenchWorker, startDuckTail } from "./lib/workerd.mjs";
import { Conn, runLoad } from "./lib/ws-load.mjs";

const [roundsArg = "4", batchArg = "100", mode = "buffered"] = process.argv.slice(2);
const batch = Number(batchArg);
const shape = loadShape();
const vars = process.env.BENCH_VARS ? JSON.parse(process.env.BENCH_VARS) : {};
const dt = await startDuckTail(buildWorker(INGEST_CONFIG), vars);
const bare = await startBenchWorker(fileURLToPath(new URL("./workers/bare", import.meta.url)), {
  durableObjects: { BARE: { className: "BareIngest", useSQLite: true } },
});
const open = async (url) => {
  const conns = [];
  for (let i = 0; i < shape.sockets; i++) conns.push(await Conn.open(`${url.replace(/^http/, "ws")}/ws`));
  return conns;
};
dt.conns = await open(dt.url);
bare.conns = await open(bare.url);
const run = async (t, tag) => {
  const r = await runLoad({
    conns: t.conns,
    window: shape.window,
    batch,
    build: frameBuilder(mode),
    warmupMs: shape.warmupMs,
    durationMs: shape.durationMs,
    serverPid: t.pid,
    tag,
  });
  await t.conns[0].call({ type: "flush", id: `${tag}-flush` });
  // Events per second of the server's CPU: steadier than wall-clock rates on a shared machine.
  return {
    rate: r.events / r.seconds,
    perCpu: r.events / r.seconds / (r.cpu?.server ?? Number.NaN),
    cpu: `server ${r.cpu?.server?.toFixed(2)}, client ${r.cpu?.client?.toFixed(2)}`,
  };
};
const ratios = [];
const cpuRatios = [];
for (let i = 0; i < Number(roundsArg); i++) {
  const b = await run(bare, `b${i}`);
  const d = await run(dt, `d${i}`);
  ratios.push(d.rate / b.rate);
  cpuRatios.push(d.perCpu / b.perCpu);
  console.log(
    `round ${i}: bare ${Math.round(b.rate)} replica ${Math.round(d.rate)} ratio ${(d.rate / b.rate).toFixed(3)}` +
      ` | per cpu-s: bare ${Math.round(b.perCpu)} replica ${Math.round(d.perCpu)} ratio ${(d.perCpu / b.perCpu).toFixed(3)}` +
      ` | cores: bare ${b.cpu}; replica ${d.cpu}`,
  );
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(3);
console.log(`median ratio ${median(ratios)} (per cpu-s ${median(cpuRatios)})`);
for (const c of [...dt.conns, ...bare.conns]) c.close();
await Promise.all([dt.mf.dispose(), bare.mf.dispose()]);
