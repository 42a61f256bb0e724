// Quick check of GET /buffer/mv latency by shard count (not a `npm run bench` section).
//
//   node bench/views-quick.mjs [--before <tree>] [--tiers 2,4,7] [--queries 200] [--load <req/s>]
//
// Builds this tree's Worker (and, with --before, another checkout's, e.g. a `git archive` of main
// with node_modules linked), and for each tier starts a fresh Worker under Miniflare, pins the open
// tenant to the tier (tier 2 = 4 shards, 4 = 16, 7 = 128), sends pageviews round-robin over every
// routed shard, waits until the view counts them all, then times sequential queries. With --load,
// page views keep arriving during the queries (round-robin, so every shard changes every second).
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { buildWorker, startWorker } from "../test/helpers/miniflare.mjs";
import { fmt, percentile, table } from "./lib/stats.mjs";

const { values } = parseArgs({
  options: {
    before: { type: "string" },
    tiers: { type: "string", default: "2,4,7" },
    queries: { type: "string", default: "200" },
    load: { type: "string", default: "0" },
  },
});
const tiers = values.tiers.split(",").map(Number);
const queries = Number(values.queries);
const loadRps = Number(values.load);
const SHARDS = { 1: 1, 2: 4, 3: 8, 4: 16, 5: 32, 6: 64, 7: 128 };
const PATHS = ["/", "/pricing", "/docs", "/blog", "/signup"];
const log = (line) => process.stderr.write(`${line}\n`);

async function json(res) {
  const text = await res.text();
  if (!res.ok) throw new Error(`${res.status} ${text}`);
  return JSON.parse(text);
}

/** One tier on a fresh Worker: fill every shard, then time `queries` sequential view queries. */
async function measure(bundle, tier) {
  const { mf, url } = await startWorker(bundle);
  try {
    const t0 = performance.now();
    await json(await fetch(`${url}/buffer/scale`, { method: "POST", body: JSON.stringify({ tier }) }));
    log(`  tier ${tier}: ${SHARDS[tier]} shards open in ${Math.round(performance.now() - t0)} ms`);
    // Each request lands on the next routed shard: 3 rounds put data on every one.
    const requests = SHARDS[tier] * 3;
    let sent = 0;
    for (let i = 0; i < requests; i += 8) {
      await Promise.all(
        Array.from({ length: Math.min(8, requests - i) }, (_, k) => {
          const batch = Array.from({ length: 20 }, (_, j) => ({
            type: "pageview",
            source: "bench",
            userId: `u${(i + k) * 20 + j}`,
            data: { path: PATHS[j % PATHS.length] },
          }));
          sent += batch.length;
          return fetch(`${url}/e`, { method: "POST", body: JSON.stringify(batch) }).then(json);
        }),
      );
    }
    // Pushed views lag ingest by about a second: wait until the answer counts everything.
    const deadline = Date.now() + 60_000;
    let answer;
    for (;;) {
      answer = await json(await fetch(`${url}/buffer/mv/pageviews?window=1h`));
      const views = answer.rows.reduce((a, r) => a + r.views, 0);
      if (views === sent && answer.replicas.missing.length === 0) break;
      if (Date.now() > deadline) throw new Error(`view counts ${views} of ${sent}: ${JSON.stringify(answer.replicas)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const ms = [];
    const load = loadRps > 0 ? background(url, loadRps) : null;
    for (let q = 0; q < queries; q++) {
      const start = performance.now();
      await json(await fetch(`${url}/buffer/mv/pageviews?window=1h`));
      ms.push(performance.now() - start);
    }
    const loaded = load ? await load.stop() : 0;
    return {
      loaded,
      tier,
      shards: SHARDS[tier],
      asked: answer.replicas.asked,
      p50: percentile(ms, 50),
      p95: percentile(ms, 95),
      p99: percentile(ms, 99),
    };
  } finally {
    await mf.dispose();
  }
}

/** Page views at `rps` requests a second until stopped; resolves to how many requests were sent. */
function background(url, rps) {
  let sent = 0;
  const inFlight = new Set();
  const timer = setInterval(() => {
    const body = JSON.stringify([{ type: "pageview", source: "load", userId: `l${sent}`, data: { path: "/load" } }]);
    const p = fetch(`${url}/e`, { method: "POST", body })
      .then((r) => r.arrayBuffer())
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    sent++;
  }, 1000 / rps);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.allSettled([...inFlight]);
      return sent;
    },
  };
}

const variants = [];
if (values.before) variants.push({ name: "before", config: join(values.before, "wrangler.toml") });
variants.push({ name: "after", config: undefined });
const rows = [];
for (const v of variants) {
  log(`${v.name}: building the Worker…`);
  const bundle = buildWorker(v.config);
  for (const tier of tiers) rows.push({ variant: v.name, ...(await measure(bundle, tier)) });
}
console.log(
  table(
    [
      { title: "build", value: (r) => r.variant, left: true },
      { title: "shards", value: (r) => r.shards },
      { title: "asked", value: (r) => r.asked },
      { title: "load req", value: (r) => r.loaded },
      { title: "p50 ms", value: (r) => fmt.ms(r.p50) },
      { title: "p95 ms", value: (r) => fmt.ms(r.p95) },
      { title: "p99 ms", value: (r) => fmt.ms(r.p99) },
    ],
    rows,
  ),
);
