// Where DuckTail's CPU goes in one live-tail scenario of `npm run bench -- tail`: a V8 sampling
// profile of its Worker inside workerd (through Miniflare's inspector), as self time per function
// and as time under each tail stage. Not part of `npm run bench`: the profiler slows the isolate.
//
//   node_modules/.bin/node bench/tail-profile.mjs [a|b|c]
//   PROFILE_PHASE=subscribe node_modules/.bin/node bench/tail-profile.mjs b   # only connect + subscribe
//   PROFILE_PHASE=load node_modules/.bin/node bench/tail-profile.mjs b        # only publishing and deliveries
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { buildWorker, workerOptions } from "../test/helpers/miniflare.mjs";
import { INGEST_CONFIG } from "./ingest.mjs";
import { childPids } from "./lib/cpu.mjs";
import { devtools, inclusiveTime, selfTime } from "./lib/devtools.mjs";
import { fmt, table } from "./lib/stats.mjs";
import { duckTailSystem } from "./lib/systems.mjs";
import { closeAll, Deliveries, openMany, Publisher, Subscriber } from "./lib/tail-load.mjs";
import { drive, keyTable, runOne, SCENARIOS, TAIL_VARS, tailShape } from "./tail.mjs";

const INSPECTOR_PORT = 9341;
const scenario = SCENARIOS.find((s) => s.name === (process.argv[2] ?? "b"));
if (!scenario) throw new Error(`no scenario ${process.argv[2]}; use a, b or c`);

const shape = { ...tailShape(), rounds: 1 };
const before = new Set(childPids());
const options = workerOptions(buildWorker(INGEST_CONFIG), { vars: { ...TAIL_VARS, DUCKTAIL_KEYS: keyTable(1) } });
const mf = new Miniflare(convertV4MiniflareOptions({ ...options, inspectorPort: INSPECTOR_PORT }));
const url = (await mf.ready).toString().replace(/\/$/, "");
const pid = childPids().find((p) => !before.has(p)) ?? null;
const cdp = await devtools(INSPECTOR_PORT);
await cdp.call("Profiler.enable");
await cdp.call("Profiler.setSamplingInterval", { interval: 200 });
const system = duckTailSystem({ url, pid });
const tenant = `tail-${scenario.name}1`;
/** Connects and subscribes the scenario's subscribers to the tenant, each counting into `sink`. */
const subscribeAll = (sink, sockets) =>
  openMany(scenario.subscribers, shape.connectConcurrency, (i) =>
    Subscriber.open({
      url: system.subscriberUrl(tenant, i),
      index: i,
      protocol: "ducktail",
      filter: scenario.filter(i),
      sink,
      sockets,
    }),
  );
if (process.env.PROFILE_PHASE === "load") {
  // Connect and subscribe first; profile only the publishing and the deliveries.
  await system.prepare(tenant, scenario);
  const sockets = new Set();
  const deliveries = new Deliveries(
    scenario.subscribers,
    scenario.matches,
    Math.ceil(scenario.rate * (shape.seconds + 1)) + 16,
  );
  const publishers = [];
  for (let i = 0; i < scenario.publishers; i++)
    publishers.push(await Publisher.open(system.publisherUrl(tenant), sockets));
  await subscribeAll(deliveries, sockets);
  await cdp.call("Profiler.start");
  const load = await drive({ publishers, rate: scenario.rate, shape, deliveries, pid, tag: tenant });
  await cdp.call("Profiler.stop").then(({ profile }) => report(profile));
  const counts = deliveries.summary();
  console.log(
    `\n(${scenario.name}) publishing only: ${counts.delivered} deliveries, lost ${counts.lost}, cpu ${fmt.pct(load.cpu.server)}`,
  );
  await closeAll(sockets);
} else if (process.env.PROFILE_PHASE === "subscribe") {
  // Only connecting and subscribing the scenario's subscribers.
  await system.prepare(tenant, scenario);
  await cdp.call("Profiler.start");
  const sockets = new Set();
  const sink = new Deliveries(scenario.subscribers, scenario.matches, 16);
  const t0 = performance.now();
  await subscribeAll(sink, sockets);
  console.log(`\n(${scenario.name}) ${scenario.subscribers} subscribed in ${fmt.int(performance.now() - t0)} ms\n`);
  await cdp.call("Profiler.stop").then(({ profile }) => report(profile));
  await closeAll(sockets);
} else {
  await cdp.call("Profiler.start");
  const run = await runOne(system, scenario, 1, shape, [pid]);
  console.log(
    `\n(${scenario.name}) ${scenario.what}: p50 ${fmt.ms(run.p50)} p95 ${fmt.ms(run.p95)} ms, lost ${run.lost}, cpu ${fmt.pct(run.serverCpu)}\n`,
  );
  await cdp.call("Profiler.stop").then(({ profile }) => report(profile));
}

function report(profile) {
  const self = selfTime(profile);
  const inclusive = inclusiveTime(profile);
  const cols = [
    { title: "share", value: (row) => fmt.pct(row.share) },
    { title: "function", value: (row) => row.fn, left: true },
  ];
  console.log(`self time\n${table(cols, self.slice(0, 25))}\n\ninclusive\n${table(cols, inclusive.slice(0, 30))}`);
}
cdp.close();
await mf.dispose();
