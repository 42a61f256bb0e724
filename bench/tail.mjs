// Section tail: DuckTail's cluster-wide live tail against partyserver rooms doing the same job,
// on the same workerd, in the same run, rounds interleaved; and what one subscriber costs ingest.
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { flush, loadShape, measure, openAll } from "./ingest.mjs";
import { cpuMeter, quiet } from "./lib/cpu.mjs";
import { fmt, latencySummary, median, round, table } from "./lib/stats.mjs";
import { duckTailSystem, keyOf, roomSystem, wsBase } from "./lib/systems.mjs";
import { closeAll, Deliveries, EventCounter, eventsFrame, openMany, Publisher, Subscriber } from "./lib/tail-load.mjs";
import { startBenchWorker, startDuckTail } from "./lib/workerd.mjs";

export const PARTYSERVER_CONFIG = fileURLToPath(new URL("./workers/partyserver/wrangler.toml", import.meta.url));
const PARTYSERVER_VERSION = JSON.parse(
  readFileSync(new URL("../node_modules/partyserver/package.json", import.meta.url), "utf8"),
).version;

/** Every event's `data.k`: what scenario (c)'s filters match, one subscriber per value. */
const K = (n) => n % 1000;

/**
 * The three loads of the issue. `tier` pins DuckTail's tenant (tier 2 = 4 shards); publishers
 * connect first, so on 4 shards each lands on its own and events are ingested cluster-wide.
 * `matches(sub, n)`: which subscriber should get event n.
 */
export const SCENARIOS = [
  {
    name: "a",
    what: "100 subscribers over 4 shards, all match, 500 ev/s",
    subscribers: 100,
    publishers: 4,
    rate: 500,
    tier: 2,
    filter: () => ({}),
    matches: () => true,
    baselines: ["broadcast"],
  },
  {
    name: "b",
    what: "1,000 subscribers, all match, 10 ev/s",
    subscribers: 1000,
    publishers: 1,
    rate: 10,
    tier: 1,
    filter: () => ({}),
    matches: () => true,
    baselines: ["broadcast", "hibernating broadcast", "broadcast + acks"],
  },
  {
    name: "c",
    what: "1,000 subscribers, distinct filters data.k = i, 500 ev/s, one match per event",
    subscribers: 1000,
    publishers: 1,
    rate: 500,
    tier: 1,
    filter: (i) => ({ where: [{ path: "data.k", op: "eq", value: i }] }),
    matches: (sub, n) => K(n) === sub,
    baselines: ["broadcast", "tag"],
  },
];

/** The targets, checked on the medians over the rounds. */
export const TARGETS = {
  ingestRatio: 0.8,
  aP95Ms: 30,
  bP95Ms: 50,
  cP95Ms: 5,
  cVsTag: 2,
  /** Connecting and subscribing 1,000 subscribers, (b) and (c). */
  subscribeMs: 1500,
};

/** A socket limit above 1,000 subscribers + publishers: (b) and (c) run on one shard, like one room. */
export const TAIL_VARS = {
  REPLICA_CONNECTION_LIMIT: "1100",
  ...(process.env.BENCH_TAIL_VARS ? JSON.parse(process.env.BENCH_TAIL_VARS) : {}),
};
const INGEST_TENANT = "tail-ingest";
const INGEST_BATCH = 50;

/** The run's shape (environment overrides in brackets). */
export function tailShape(env = process.env) {
  return {
    rounds: Number(env.BENCH_TAIL_ROUNDS ?? 3),
    warmupMs: Number(env.BENCH_TAIL_WARMUP_MS ?? 1000),
    seconds: Number(env.BENCH_TAIL_SECONDS ?? 5),
    /** How long after the last event a run waits for deliveries still on their way; what is missing then is lost. */
    drainMs: Number(env.BENCH_TAIL_DRAIN_MS ?? 2000),
    tickMs: Number(env.BENCH_TAIL_TICK_MS ?? 10),
    /** Sockets opening at once while subscribers connect (both systems alike). */
    connectConcurrency: Number(env.BENCH_TAIL_CONNECT_CONCURRENCY ?? 50),
    /** Which scenarios run (all by default), e.g. BENCH_TAIL_SCENARIOS=a,c. */
    scenarios: (env.BENCH_TAIL_SCENARIOS ?? "a,b,c").split(","),
    /** Whether the ingest ratio runs too (BENCH_TAIL_INGEST=0 skips it). */
    ingest: env.BENCH_TAIL_INGEST !== "0",
  };
}

const tenantOf = (scenario, round) => `tail-${scenario}${round}`;

/** DUCKTAIL_KEYS for every tenant of the section: a read, a write and an admin key each. */
export function keyTable(rounds) {
  const tenants = [INGEST_TENANT];
  for (let r = 1; r <= rounds; r++) for (const s of SCENARIOS) tenants.push(tenantOf(s.name, r));
  const table = {};
  for (const tenant of tenants)
    for (const scope of ["read", "write", "admin"]) table[keyOf(tenant, scope)] = { tenant, scope };
  return JSON.stringify(table);
}

/**
 * Publishes at `rate` events/s on a steady timer: every tick sends what is due since the start as
 * one frame (so timer jitter never changes the rate), from the publishers in turn. Measures
 * from the end of the warm-up for `seconds`, then waits up to `drainMs` for what is on its way.
 */
export async function drive({ publishers, rate, shape, deliveries, pid, tag }) {
  let n = 0;
  let frames = 0;
  const start = performance.now();
  const send = () => {
    const due = Math.floor(((performance.now() - start) * rate) / 1000) - n;
    if (due <= 0) return;
    const ns = Array.from({ length: due }, (_, i) => n + i);
    n += due;
    publishers[frames++ % publishers.length].send(eventsFrame(tag, ns, K, performance.now()));
  };
  const timer = setInterval(send, shape.tickMs);
  try {
    await sleep(shape.warmupMs);
    const n0 = n;
    deliveries.open(n0);
    const meter = cpuMeter(pid);
    const measured = performance.now();
    await sleep(shape.seconds * 1000);
    send();
    clearInterval(timer);
    const seconds = (performance.now() - measured) / 1000;
    const cpu = meter.stop();
    deliveries.close(n);
    const drained = performance.now();
    while (!deliveries.complete && performance.now() - drained < shape.drainMs) await sleep(20);
    return { events: n - n0, seconds, cpu, drainMs: performance.now() - drained };
  } finally {
    clearInterval(timer);
  }
}

/**
 * One scenario on one system: connect (timed), let the servers go quiet, publish and count, then
 * close and wait until the sockets are gone and both workerds are quiet again (`pids`).
 */
export async function runOne(system, scenario, roundNo, shape, pids) {
  const name = tenantOf(scenario.name, roundNo);
  const sockets = new Set();
  const maxEvents = Math.ceil(scenario.rate * (shape.seconds + 1)) + 16;
  const deliveries = new Deliveries(scenario.subscribers, scenario.matches, maxEvents);
  try {
    await system.prepare(name, scenario);
    const publishers = [];
    for (let i = 0; i < scenario.publishers; i++)
      publishers.push(await Publisher.open(system.publisherUrl(name), sockets));
    const t0 = performance.now();
    const subs = await openMany(scenario.subscribers, shape.connectConcurrency, (i) =>
      Subscriber.open({
        url: system.subscriberUrl(name, i),
        index: i,
        protocol: system.protocol,
        filter: scenario.filter(i),
        sink: deliveries,
        sockets,
      }),
    );
    const subscribeMs = performance.now() - t0;
    const placement = await system.placement?.(name);
    await quiet(pids);
    const load = await drive({ publishers, rate: scenario.rate, shape, deliveries, pid: system.pid, tag: name });
    const counts = deliveries.summary();
    const errors = [...deliveries.errors, ...publishers.flatMap((p) => p.errors)];
    return {
      scenario: scenario.name,
      system: system.name,
      round: roundNo,
      subscribers: scenario.subscribers,
      subscribeMs,
      replicas: subs[0]?.replicas ?? null,
      placement: placement ?? null,
      sentPerSec: load.events / load.seconds,
      deliveriesPerSec: counts.delivered / load.seconds,
      ...latencySummary(deliveries.latencies),
      ...counts,
      lossRatio: counts.expected > 0 ? counts.lost / counts.expected : 0,
      extra: deliveries.extra,
      dropped: deliveries.dropped,
      serverCpu: load.cpu.server,
      clientCpu: load.cpu.client,
      drainMs: load.drainMs,
      errors: [...new Set(errors)].slice(0, 5),
    };
  } finally {
    await closeAll(sockets);
    await system.settle(name);
    await quiet(pids);
  }
}

/**
 * Ingest into one shard with no subscriber and with one match-all subscriber, alternating which
 * goes first, in the same run: the ingest section's load (bench/ingest.mjs), 50-event buffered frames.
 */
async function runIngestRatio(target, system, rounds, log) {
  const shape = loadShape();
  const url = `${wsBase(target.url)}/ws`;
  await system.prepare(INGEST_TENANT, { tier: 1 });
  const pub = { pid: target.pid, conns: await openAll(`${url}?key=${keyOf(INGEST_TENANT, "admin")}`, shape.sockets) };
  const runs = [];
  try {
    for (let r = 1; r <= rounds; r++) {
      const pair = {};
      for (const withSub of r % 2 === 1 ? [false, true] : [true, false]) {
        const sockets = new Set();
        const counter = new EventCounter();
        if (withSub) {
          const subUrl = `${url}?key=${keyOf(INGEST_TENANT, "read")}`;
          await Subscriber.open({ url: subUrl, index: 0, protocol: "ducktail", filter: {}, sink: counter, sockets });
        }
        // The subscriber's count over (about) the load's measured window: same timers, same start.
        let c0 = 0;
        let c1 = 0;
        setTimeout(() => (c0 = counter.events), shape.warmupMs);
        setTimeout(() => (c1 = counter.events), shape.warmupMs + shape.durationMs);
        await quiet([target.pid]);
        const tag = `i${r}-${withSub ? "sub" : "none"}`;
        const run = await measure(pub, INGEST_BATCH, "buffered", shape, tag);
        await closeAll(sockets);
        await flush(pub.conns[0], tag);
        await system.settle(INGEST_TENANT, shape.sockets);
        const tail = withSub ? { tailPerSec: (c1 - c0) / (shape.durationMs / 1000), dropped: counter.dropped } : {};
        pair[withSub ? "sub" : "none"] = { ...run, ...tail, errors: [...run.errors, ...counter.errors] };
      }
      runs.push({ round: r, ...pair, ratio: pair.sub.eventsPerSec / pair.none.eventsPerSec });
      log(`  ingest round ${r}/${rounds}: ratio ${fmt.pct(runs.at(-1).ratio)}`);
    }
  } finally {
    for (const c of pub.conns) c.close();
  }
  return { shape, batch: INGEST_BATCH, runs, ratio: median(runs.map((r) => r.ratio)) };
}

export async function runTail(duckTailDir, partyserverDir, log = console.log) {
  const shape = tailShape();
  const ducktail = await startDuckTail(duckTailDir, { ...TAIL_VARS, DUCKTAIL_KEYS: keyTable(shape.rounds) });
  const rooms = await startBenchWorker(partyserverDir, {
    durableObjects: {
      BROADCAST_ROOM: { className: "BroadcastRoom", useSQLite: true },
      HIBERNATING_BROADCAST_ROOM: { className: "HibernatingBroadcastRoom", useSQLite: true },
      TAG_ROOM: { className: "TagRoom", useSQLite: true },
    },
  });
  const systems = {
    ducktail: duckTailSystem(ducktail),
    broadcast: roomSystem(rooms, "broadcast"),
    "hibernating broadcast": roomSystem(rooms, "hibernating-broadcast"),
    "broadcast + acks": roomSystem(rooms, "broadcast", { acks: true }),
    tag: roomSystem(rooms, "tag"),
  };
  const runs = [];
  try {
    for (let r = 1; r <= shape.rounds; r++) {
      for (const scenario of SCENARIOS.filter((s) => shape.scenarios.includes(s.name))) {
        // Rotate who goes first each round, so neither system always follows the other's cleanup.
        const order = ["ducktail", ...scenario.baselines];
        for (let i = 0; i < order.length; i++) {
          const system = systems[order[(i + r - 1) % order.length]];
          const run = await runOne(system, scenario, r, shape, [ducktail.pid, rooms.pid]);
          runs.push(run);
          log(
            `  round ${r}/${shape.rounds} (${scenario.name}) ${system.name}: p95 ${fmt.ms(run.p95)} ms,` +
              ` lost ${run.lost}/${run.expected}, subscribe ${fmt.int(run.subscribeMs)} ms`,
          );
        }
      }
    }
    const ingest = shape.ingest ? await runIngestRatio(ducktail, systems.ducktail, shape.rounds, log) : null;
    return summarize(shape, runs, ingest);
  } finally {
    await Promise.all([ducktail.mf.dispose(), rooms.mf.dispose()]);
  }
}

const FIGURES = [
  "subscribeMs",
  "sentPerSec",
  "deliveriesPerSec",
  "p50",
  "p95",
  "p99",
  "max",
  "expected",
  "lost",
  "lossRatio",
  "duplicates",
  "extra",
  "dropped",
  "serverCpu",
  "clientCpu",
];

/** Per scenario and system: the rounds and a row of medians (each figure's median over the rounds). */
function summarize(shape, runs, ingest) {
  const groups = [];
  for (const scenario of SCENARIOS.filter((s) => shape.scenarios.includes(s.name))) {
    for (const system of ["ducktail", ...scenario.baselines.map((b) => `partyserver ${b}`)]) {
      const rounds = runs.filter((x) => x.scenario === scenario.name && x.system === system);
      const med = { scenario: scenario.name, system, round: "median", subscribers: scenario.subscribers, errors: [] };
      for (const f of FIGURES) med[f] = median(rounds.map((x) => x[f]).filter((v) => v !== null));
      groups.push({ scenario: scenario.name, system, rounds, median: med });
    }
  }
  return {
    partyserver: PARTYSERVER_VERSION,
    shape,
    scenarios: SCENARIOS.map(({ name, what }) => ({ name, what })),
    groups,
    ingest,
    targets: targetChecks(groups, ingest),
  };
}

function targetChecks(groups, ingest) {
  const med = (scenario, system) => groups.find((g) => g.scenario === scenario && g.system === system)?.median;
  const dt = (s) => med(s, "ducktail");
  const lost = groups
    .filter((g) => g.system === "ducktail")
    .reduce((n, g) => n + g.rounds.reduce((m, x) => m + x.lost, 0), 0);
  const expected = groups
    .filter((g) => g.system === "ducktail")
    .reduce((n, g) => n + g.rounds.reduce((m, x) => m + x.expected, 0), 0);
  const tagP95 = med("c", "partyserver tag")?.p95 ?? null;
  const checks = [];
  if (ingest) {
    checks.push([
      "ingest with 1 match-all subscriber / none",
      `≥ ${TARGETS.ingestRatio}×`,
      fmt.ratio(ingest.ratio),
      ingest.ratio >= TARGETS.ingestRatio,
    ]);
  }
  if (dt("a"))
    checks.push(["(a) p95", `≤ ${TARGETS.aP95Ms} ms`, `${fmt.ms(dt("a").p95)} ms`, dt("a").p95 <= TARGETS.aP95Ms]);
  if (dt("b")) {
    checks.push(
      ["(b) p95", `≤ ${TARGETS.bP95Ms} ms`, `${fmt.ms(dt("b").p95)} ms`, dt("b").p95 <= TARGETS.bP95Ms],
      [
        "(b) p95 vs partyserver broadcast",
        `≤ ${fmt.ms(med("b", "partyserver broadcast").p95)} ms`,
        `${fmt.ms(dt("b").p95)} ms`,
        dt("b").p95 <= med("b", "partyserver broadcast").p95,
      ],
    );
  }
  if (dt("c")) {
    checks.push(
      ["(c) p95", `≤ ${TARGETS.cP95Ms} ms`, `${fmt.ms(dt("c").p95)} ms`, dt("c").p95 <= TARGETS.cP95Ms],
      [
        "(c) p95 vs partyserver tag room",
        `≤ ${TARGETS.cVsTag}× ${fmt.ms(tagP95)} ms`,
        `${fmt.ms(dt("c").p95)} ms (${fmt.ratio(dt("c").p95 / tagP95)}×)`,
        dt("c").p95 <= TARGETS.cVsTag * tagP95,
      ],
    );
  }
  for (const s of ["b", "c"]) {
    if (!dt(s)) continue;
    checks.push([
      `(${s}) subscribe 1,000`,
      `≤ ${fmt.int(TARGETS.subscribeMs)} ms`,
      `${fmt.int(dt(s).subscribeMs)} ms`,
      dt(s).subscribeMs <= TARGETS.subscribeMs,
    ]);
  }
  checks.push(["zero loss, every DuckTail run", "0 lost", `${fmt.int(lost)} of ${fmt.int(expected)}`, lost === 0]);
  return checks.map(([what, target, measured, pass]) => ({ what, target, measured, pass }));
}

export function printTail(result, out = console.log) {
  const { shape } = result;
  out(
    `\nLive tail: DuckTail vs partyserver rooms (partyserver ${result.partyserver}, same workerd), ${shape.rounds} rounds interleaved,` +
      `\n${shape.warmupMs / 1000} s warm-up then ${shape.seconds} s measured per run; deliveries still on their way after` +
      ` the last event get ${shape.drainMs / 1000} s, the rest are lost.` +
      "\nlatency = the event's send time (stamped by the publisher) → the subscriber's receipt, every expected delivery;" +
      "\nlost = expected (subscriber, event) pairs never received; extra = deliveries a subscriber had to discard (a broadcast" +
      "\nroom sends everyone everything); dropped = events DuckTail reported dropped for a slow reader." +
      "\ncpu = share of one core: the system's workerd / this load generator (publishers and every subscriber)." +
      "\nbroadcast + acks = the broadcast room with subscribers that ack as DuckTail's do (`tailAck` every 8 frames); the room" +
      "\nreads and drops the acks: what the tail's flow control costs the runtime alone, without DuckTail." +
      `\nsubscribe = connecting all subscribers (DuckTail: until each got \`subscribed\`), ${shape.connectConcurrency} at a time.`,
  );
  for (const s of result.scenarios) out(`  (${s.name}) ${s.what}`);
  out("");
  const rows = result.groups.flatMap((g) => [...g.rounds, g.median]);
  out(
    table(
      [
        { title: "", value: (r) => r.scenario, left: true },
        { title: "system", value: (r) => r.system, left: true },
        { title: "round", value: (r) => String(r.round), left: true },
        { title: "subscribe ms", value: (r) => fmt.int(r.subscribeMs) },
        { title: "sent ev/s", value: (r) => fmt.int(r.sentPerSec) },
        { title: "deliveries/s", value: (r) => fmt.int(r.deliveriesPerSec) },
        { title: "p50 ms", value: (r) => fmt.ms(r.p50) },
        { title: "p95 ms", value: (r) => fmt.ms(r.p95) },
        { title: "p99 ms", value: (r) => fmt.ms(r.p99) },
        { title: "max ms", value: (r) => fmt.ms(r.max) },
        {
          title: "lost",
          value: (r) =>
            `${fmt.int(r.lost)} (${(r.lossRatio * 100).toFixed(r.lossRatio > 0 && r.lossRatio < 0.01 ? 2 : 0)}%)`,
        },
        { title: "dup", value: (r) => fmt.int(r.duplicates) },
        { title: "extra", value: (r) => fmt.int(r.extra) },
        { title: "dropped", value: (r) => fmt.int(r.dropped) },
        { title: "cpu srv/client", value: (r) => `${fmt.pct(r.serverCpu)}/${fmt.pct(r.clientCpu)}` },
        { title: "errors", value: (r) => r.errors.join("; "), left: true },
      ],
      rows,
    ),
  );
  const placed = result.groups.find((g) => g.scenario === "a" && g.system === "ducktail")?.rounds[0];
  if (placed?.placement) {
    out(
      `\n(a) DuckTail sockets per shard (publisher + subscribers): ${placed.placement.join(", ")}; subscriptions reached ${placed.replicas} replicas.`,
    );
  }
  if (result.ingest) printIngestRatio(result.ingest, out);
  printAckCost(result, out);
  out("\nTargets (medians over the rounds):\n");
  out(
    table(
      [
        { title: "target", value: (t) => t.what, left: true },
        { title: "wanted", value: (t) => t.target, left: true },
        { title: "measured", value: (t) => t.measured, left: true },
        { title: "", value: (t) => (t.pass ? "PASS" : "FAIL"), left: true },
      ],
      result.targets,
    ),
  );
}

/** (b)'s server CPU per delivery: DuckTail, the room, and the room receiving DuckTail's acks. */
function printAckCost(result, out) {
  const rows = ["ducktail", "partyserver broadcast", "partyserver broadcast + acks"]
    .map((system) => result.groups.find((g) => g.scenario === "b" && g.system === system)?.median)
    .filter((m) => m && m.serverCpu !== null && m.deliveriesPerSec > 0);
  if (rows.length < 3) return;
  out("\n(b) server CPU per delivery (medians: cpu ÷ deliveries/s):");
  for (const m of rows) out(`  ${m.system.padEnd(30)} ${((m.serverCpu / m.deliveriesPerSec) * 1e6).toFixed(1)} µs`);
  printSocketKinds(result, out);
}

/**
 * (b)'s p95 by the kind of socket the fan-out writes to: the broadcast room's `accept()`ed
 * sockets, and hibernatable ones (`ctx.acceptWebSocket`), which DuckTail's are and the
 * hibernating room's are. What the platform's hibernatable send costs, apart from DuckTail.
 */
function printSocketKinds(result, out) {
  const p95 = (system) => result.groups.find((g) => g.scenario === "b" && g.system === system)?.median.p95;
  const accepted = p95("partyserver broadcast");
  const hibernating = p95("partyserver hibernating broadcast");
  const ducktail = p95("ducktail");
  if (accepted === undefined || hibernating === undefined || ducktail === undefined) return;
  out("\n(b) p95 by socket kind (medians; the target above compares DuckTail with the accept()ed room):");
  out(`  accept()ed sockets:    partyserver broadcast              ${fmt.ms(accepted)} ms`);
  out(`  hibernatable sockets:  partyserver hibernating broadcast  ${fmt.ms(hibernating)} ms`);
  out(`  hibernatable sockets:  DuckTail                           ${fmt.ms(ducktail)} ms`);
}

function printIngestRatio(ingest, out) {
  const { shape } = ingest;
  out(
    `\nIngest into one shard, ${ingest.batch}-event buffered frames, ${shape.sockets} sockets × ${shape.window} in flight,` +
      ` ${shape.durationMs / 1000} s measured after ${shape.warmupMs / 1000} s;` +
      "\nwithout a subscriber and with one match-all subscriber (acking as the SDK does), alternating which goes first." +
      "\ntail ev/s = events that reached the subscriber (over about the same window); dropped = what DuckTail dropped for it.\n",
  );
  out(
    table(
      [
        { title: "round", value: (r) => String(r.round), left: true },
        { title: "none ev/s", value: (r) => fmt.int(r.none.eventsPerSec) },
        { title: "cpu srv/client", value: (r) => `${fmt.pct(r.none.serverCpu)}/${fmt.pct(r.none.clientCpu)}` },
        { title: "1 sub ev/s", value: (r) => fmt.int(r.sub.eventsPerSec) },
        { title: "cpu srv/client ", value: (r) => `${fmt.pct(r.sub.serverCpu)}/${fmt.pct(r.sub.clientCpu)}` },
        { title: "tail ev/s", value: (r) => fmt.int(r.sub.tailPerSec) },
        { title: "dropped", value: (r) => fmt.int(r.sub.dropped) },
        { title: "ratio", value: (r) => fmt.ratio(r.ratio) },
        { title: "errors", value: (r) => [...r.none.errors, ...r.sub.errors].slice(0, 3).join("; "), left: true },
      ],
      ingest.runs,
    ),
  );
  out(`median ratio: ${fmt.ratio(ingest.ratio)}`);
}

/** The JSON form: figures rounded, latency samples left out. */
export function tailJson(result) {
  const pick = (r) => ({
    round: r.round,
    subscribers: r.subscribers,
    ...Object.fromEntries(FIGURES.map((f) => [f, round(r[f], f.endsWith("Cpu") || f === "lossRatio" ? 4 : 2)])),
    ...(r.placement && { placement: r.placement, replicas: r.replicas }),
    errors: r.errors,
  });
  const ingestRun = (r) => ({
    eventsPerSec: round(r.eventsPerSec, 0),
    p50Ms: round(r.p50Ms, 3),
    p99Ms: round(r.p99Ms, 3),
    serverCpu: round(r.serverCpu, 3),
    clientCpu: round(r.clientCpu, 3),
    ...(r.tailPerSec !== undefined && { tailPerSec: round(r.tailPerSec, 0), dropped: r.dropped }),
    errors: r.errors,
  });
  return {
    partyserver: result.partyserver,
    shape: result.shape,
    scenarios: result.scenarios,
    groups: result.groups.map((g) => ({
      scenario: g.scenario,
      system: g.system,
      rounds: g.rounds.map(pick),
      median: pick(g.median),
    })),
    ingest: result.ingest && {
      shape: result.ingest.shape,
      batch: result.ingest.batch,
      ratio: round(result.ingest.ratio, 3),
      runs: result.ingest.runs.map((r) => ({
        round: r.round,
        none: ingestRun(r.none),
        sub: ingestRun(r.sub),
        ratio: round(r.ratio, 3),
      })),
    },
    targets: result.targets,
  };
}
