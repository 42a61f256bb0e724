// Section views: how long GET /buffer/mv/pageviews?window=1h takes when the view is merged from
// 4, 16 and 128 shards, beside 1 shard (the route's floor) in the same run.

import { wranglerVars } from "../test/helpers/miniflare.mjs";
import { cpuMeter, quiet } from "./lib/cpu.mjs";
import { eventInput } from "./lib/events.mjs";
import { fmt, latencySummary, median, round, table } from "./lib/stats.mjs";
import { getJson, keyOf, pinTier, wsBase } from "./lib/systems.mjs";
import { openMany } from "./lib/tail-load.mjs";
import { startDuckTail } from "./lib/workerd.mjs";
import { Conn } from "./lib/ws-load.mjs";

export const SHARD_COUNTS = [1, 4, 16, 128];
export const TARGET = { shards: 128, p95Ms: 50 };
/** Events written to every shard before timing, so every shard's partials take part in the merge. */
const EVENTS_PER_SHARD = 200;
const WARMUP_QUERIES = 5;
const QUERY = "/buffer/mv/pageviews?window=1h";

export function viewsShape(env = process.env) {
  return {
    rounds: Number(env.BENCH_VIEWS_ROUNDS ?? 3),
    /** Queries per shard count and round, one at a time (closed loop). */
    queries: Number(env.BENCH_VIEWS_QUERIES ?? 100),
  };
}

const tenantOf = (shards) => `views-${shards}`;

/** The tier that runs `shards` shards, from wrangler.toml's SHARD_TIERn_COUNT (tier 1 is one shard). */
function tierFor(shards) {
  if (shards === 1) return 1;
  const vars = wranglerVars();
  for (let t = 2; t <= 7; t++) if (Number(vars[`SHARD_TIER${t}_COUNT`]) === shards) return t;
  throw new Error(`no tier runs ${shards} shards`);
}

function keyTable() {
  const table = {};
  for (const shards of SHARD_COUNTS) {
    const tenant = tenantOf(shards);
    for (const scope of ["read", "admin"]) table[keyOf(tenant, scope)] = { tenant, scope };
  }
  return JSON.stringify(table);
}

/**
 * Pins the tenant to the tier of `shards` (opening them), then writes EVENTS_PER_SHARD events
 * into each shard through its admin socket (GET /buffer/ws?shard=n), 8 shards at a time.
 * Returns the pageviews written, which the merged answer must count.
 */
async function populate(target, shards) {
  const tenant = tenantOf(shards);
  const admin = keyOf(tenant, "admin");
  const started = performance.now();
  await pinTier(target, tenant, tierFor(shards));
  const pinMs = performance.now() - started;
  let pageviews = 0;
  await openMany(shards, 8, async (n) => {
    const events = Array.from({ length: EVENTS_PER_SHARD }, (_, j) => eventInput(n * EVENTS_PER_SHARD + j));
    pageviews += events.filter((e) => e.type === "pageview").length;
    const conn = await Conn.open(`${wsBase(target.url)}/buffer/ws?shard=${n}&key=${admin}`);
    try {
      const reply = await conn.call({ type: "events", id: `v${n}`, events });
      if (reply.type !== "ack" || reply.stored !== events.length)
        throw new Error(`shard ${n}: ${JSON.stringify(reply)}`);
    } finally {
      conn.close();
    }
  });
  return { pinMs, pageviews };
}

/** One query: its latency, and whether every shard answered and every pageview was counted. */
async function query(target, shards, pageviews) {
  const t = performance.now();
  const body = await getJson(`${target.url}${QUERY}`, {
    headers: { authorization: `Bearer ${keyOf(tenantOf(shards), "read")}` },
  });
  const ms = performance.now() - t;
  const counted = body.rows.reduce((n, r) => n + r.views, 0);
  const complete = body.replicas.answered === shards && body.replicas.missing.length === 0 && counted === pageviews;
  return { ms, complete, answered: body.replicas.answered, counted };
}

async function measureRound(target, shards, pageviews, shape) {
  for (let i = 0; i < WARMUP_QUERIES; i++) await query(target, shards, pageviews);
  const latencies = [];
  let incomplete = 0;
  const meter = cpuMeter(target.pid);
  const started = performance.now();
  for (let i = 0; i < shape.queries; i++) {
    const answer = await query(target, shards, pageviews);
    latencies.push(answer.ms);
    if (!answer.complete) incomplete++;
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = meter.stop();
  return {
    shards,
    queries: shape.queries,
    perSec: shape.queries / seconds,
    ...latencySummary(latencies),
    incomplete,
    serverCpu: cpu.server,
    clientCpu: cpu.client,
  };
}

export async function runViews(bundleDir, log = console.log) {
  const shape = viewsShape();
  const target = await startDuckTail(bundleDir, { DUCKTAIL_KEYS: keyTable() });
  try {
    const setup = {};
    for (const shards of SHARD_COUNTS) {
      setup[shards] = await populate(target, shards);
      log(
        `  ${shards} shards: opened in ${fmt.int(setup[shards].pinMs)} ms, ${EVENTS_PER_SHARD} events written to each`,
      );
    }
    const runs = [];
    for (let r = 1; r <= shape.rounds; r++) {
      // Rotate which shard count goes first, so none always follows the biggest merge.
      for (let i = 0; i < SHARD_COUNTS.length; i++) {
        const shards = SHARD_COUNTS[(i + r - 1) % SHARD_COUNTS.length];
        await quiet([target.pid]);
        const run = await measureRound(target, shards, setup[shards].pageviews, shape);
        runs.push({ round: r, ...run });
        log(`  round ${r}/${shape.rounds}, ${shards} shards: p95 ${fmt.ms(run.p95)} ms`);
      }
    }
    const groups = SHARD_COUNTS.map((shards) => {
      const rounds = runs.filter((x) => x.shards === shards);
      const med = { round: "median", shards, queries: shape.queries };
      for (const f of ["perSec", "p50", "p95", "p99", "max", "serverCpu", "clientCpu"]) {
        med[f] = median(rounds.map((x) => x[f]));
      }
      med.incomplete = rounds.reduce((n, x) => n + x.incomplete, 0);
      return { shards, pinMs: setup[shards].pinMs, pageviews: setup[shards].pageviews, rounds, median: med };
    });
    const atTarget = groups.find((g) => g.shards === TARGET.shards).median;
    const check = { ...TARGET, p95: atTarget.p95, pass: atTarget.p95 <= TARGET.p95Ms && atTarget.incomplete === 0 };
    return { shape, eventsPerShard: EVENTS_PER_SHARD, groups, target: check };
  } finally {
    await target.mf.dispose();
  }
}

export function printViews(result, out = console.log) {
  const { shape } = result;
  out(
    `\nViews: GET ${QUERY} (the Worker → the tenant's view aggregator, which merges the minutes every shard` +
      `\npushed to it), ${shape.queries} queries one at a time per shard count and round after ${WARMUP_QUERIES}` +
      ` warm-up ones, ${shape.rounds} rounds,` +
      `\nshard counts interleaved. Each tenant is pinned to its shard count, and each shard holds ${result.eventsPerShard} events` +
      "\n(about half pageviews); `incomplete` = answers where a shard was missing or the merged count was not every" +
      "\npageview written. 1 shard is the floor: the same route with nothing to gather. cpu = workerd / this process.\n",
  );
  out(
    table(
      [
        { title: "shards", value: (r) => fmt.int(r.shards) },
        { title: "round", value: (r) => String(r.round), left: true },
        { title: "queries/s", value: (r) => fmt.int(r.perSec) },
        { title: "p50 ms", value: (r) => fmt.ms(r.p50) },
        { title: "p95 ms", value: (r) => fmt.ms(r.p95) },
        { title: "p99 ms", value: (r) => fmt.ms(r.p99) },
        { title: "max ms", value: (r) => fmt.ms(r.max) },
        { title: "incomplete", value: (r) => fmt.int(r.incomplete) },
        { title: "cpu srv/client", value: (r) => `${fmt.pct(r.serverCpu)}/${fmt.pct(r.clientCpu)}` },
      ],
      result.groups.flatMap((g) => [...g.rounds, g.median]),
    ),
  );
  out(
    `\nopening the shards (POST /buffer/scale, untimed above): ${result.groups.map((g) => `${g.shards}: ${fmt.int(g.pinMs)} ms`).join(", ")}`,
  );
  const t = result.target;
  out(
    `target: p95 ≤ ${t.p95Ms} ms at ${t.shards} shards, every answer complete → ${fmt.ms(t.p95)} ms ${t.pass ? "PASS" : "FAIL"}`,
  );
}

/** The JSON form: figures rounded, samples left out. */
export function viewsJson(result) {
  const pick = (r) => ({
    round: r.round,
    shards: r.shards,
    queries: r.queries,
    perSec: round(r.perSec, 1),
    p50: round(r.p50, 2),
    p95: round(r.p95, 2),
    p99: round(r.p99, 2),
    max: round(r.max, 2),
    incomplete: r.incomplete,
    serverCpu: round(r.serverCpu, 3),
    clientCpu: round(r.clientCpu, 3),
  });
  return {
    shape: result.shape,
    eventsPerShard: result.eventsPerShard,
    groups: result.groups.map((g) => ({
      shards: g.shards,
      pinMs: round(g.pinMs, 0),
      pageviews: g.pageviews,
      rounds: g.rounds.map(pick),
      median: pick(g.median),
    })),
    target: { ...result.target, p95: round(result.target.p95, 2) },
  };
}
