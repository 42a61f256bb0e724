// Same DuckTail bundle, two ack cadences alternated: what inbound acks cost in scenario b.
import { buildWorker } from "../../test/helpers/miniflare.mjs";
import { INGEST_CONFIG } from "../ingest.mjs";
import { duckTailSystem } from "../lib/systems.mjs";
import { startDuckTail } from "../lib/workerd.mjs";
import { keyTable, runOne, SCENARIOS, TAIL_VARS, tailShape } from "../tail.mjs";
const rounds = Number(process.argv[2] ?? 4);
const modes = { acks8: ["8", "1000"], acks12: ["1", "1000"] };
const scenario = SCENARIOS.find((s) => s.name === "b");
const shape = { ...tailShape(), rounds: rounds * 2 };
const a = await startDuckTail(buildWorker(INGEST_CONFIG), { ...TAIL_VARS, DUCKTAIL_KEYS: keyTable(rounds * 2) });
const sys = duckTailSystem(a);
const out = { acks8: [], acks12: [] };
let n = 0;
for (let r = 1; r <= rounds; r++) {
  for (const m of r % 2 ? ["acks8", "acks12"] : ["acks12", "acks8"]) {
    [process.env.BENCH_TAIL_ACK_EVERY, process.env.BENCH_TAIL_ACK_DELAY_MS] = modes[m];
    const run = await runOne(sys, scenario, ++n, shape, [a.pid]);
    out[m].push(run);
    console.log(`round ${r} ${m}: p50 ${run.p50.toFixed(1)} p95 ${run.p95.toFixed(1)} cpu ${(run.serverCpu * 100).toFixed(0)}% lost ${run.lost}`);
  }
}
const med = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
for (const m of Object.keys(out)) console.log(`${m}: median p95 ${med(out[m].map((r) => r.p95)).toFixed(1)}, cpu ${(med(out[m].map((r) => r.serverCpu)) * 100).toFixed(0)}%`);
await a.mf.dispose();
