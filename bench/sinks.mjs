// Section 3: flush throughput through one, two and three sinks, and hourly compaction, in workerd.
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { buildWorker } from "../test/helpers/miniflare.mjs";
import { fmt, median, round, table } from "./lib/stats.mjs";
import { startBenchWorker } from "./lib/workerd.mjs";

const SINKS_CONFIG = fileURLToPath(new URL("./workers/sinks/wrangler.toml", import.meta.url));

export const FLUSH_SIZES = [10_000, 100_000];
/** Sink counts compared: the first 1, 2 or 3 of [R2ParquetSink, R2NdjsonSink, WebhookSink]. */
export const SINK_COUNTS = [1, 2, 3];
/** Timed rounds per size after WARMUP untimed ones; every round runs each configuration once. */
const ROUNDS = { 10000: 9, 100000: 5 };
const WARMUP = 2;

const MiB = 1024 * 1024;

/**
 * The compacted hours: `files` Parquet objects of `fileRows` rows written by `replicas` replicas,
 * every `duplicateEvery`-th event also retried to another replica (19 → 1 row in 20 a duplicate).
 * `maxDecodedBytes` is compactHour's option (null = its default, 16 MiB). These events decode to
 * ~280 bytes of Arrow each, so the default splits an hour of more than ~60,000 rows into parts
 * (one pass over the inputs per part): the same 100,000-row hour is compacted whole with the
 * bound raised to 64 MiB (an isolate has 128 MB; Miniflare does not enforce it) and split with
 * the default, to show what the split costs; and a 400,000-row hour split into ~15 parts, to show
 * that its cost grows with the hour, not with the square of it.
 */
export const COMPACTIONS = [
  { files: 20, fileRows: 2500, replicas: 2, duplicateEvery: 19, maxDecodedBytes: null },
  { files: 20, fileRows: 5000, replicas: 2, duplicateEvery: 19, maxDecodedBytes: 64 * MiB },
  { files: 20, fileRows: 5000, replicas: 2, duplicateEvery: 19, maxDecodedBytes: null },
  { files: 20, fileRows: 20000, replicas: 2, duplicateEvery: 19, maxDecodedBytes: null },
];
const COMPACTION_ROUNDS = 3;
/** Untimed rounds first: the first compaction in an isolate runs cold (JIT, wasm memory growth). */
const COMPACTION_WARMUP = 1;

/**
 * The webhook's receiver: reads each body and answers 204, as a fast endpoint would. Keeps the
 * size of the last body and, when `keepNext` is set, the body itself (for the correctness check).
 */
async function startReceiver() {
  const state = { requests: 0, lastBytes: 0, lastKey: null, keepNext: false, kept: null };
  const server = createServer((req, res) => {
    const chunks = [];
    let bytes = 0;
    const keep = state.keepNext;
    req.on("data", (chunk) => {
      bytes += chunk.length;
      if (keep) chunks.push(chunk);
    });
    req.on("end", () => {
      state.requests++;
      state.lastBytes = bytes;
      state.lastKey = req.headers["idempotency-key"] ?? null;
      if (keep) {
        state.kept = Buffer.concat(chunks);
        state.keepNext = false;
      }
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  const close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    });
  return { url: `http://127.0.0.1:${port}/ingest`, state, close };
}

async function call(url, init) {
  const res = await fetch(url, init);
  if (!res.ok) throw new Error(`sinks worker: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

/** One timed flush of `rows` rows through `sinks` sinks (see workers/sinks/worker.ts). */
async function flushOnce(worker, receiver, rows, sinks, seq) {
  const before = receiver.state.requests;
  const q = new URLSearchParams({ rows: String(rows), sinks: String(sinks), seq: String(seq), webhook: receiver.url });
  const r = await call(`${worker.url}/flush?${q}`);
  const bytes = Object.fromEntries(r.objects.filter((o) => o.bytes > 0).map((o) => [o.sink, o.bytes]));
  if (sinks >= 3) {
    if (receiver.state.requests !== before + 1) throw new Error("the webhook receiver did not get exactly one post");
    bytes.webhook = receiver.state.lastBytes;
  }
  return { ms: Math.max(0, r.ms - r.tickMs), names: r.sinks, objects: r.objects, bytes };
}

/** Checks what one 3-sink flush wrote: one object per R2 sink, one post with every row under the flush's key. */
async function checkFlush(worker, receiver, rows, seq) {
  receiver.state.keepNext = true;
  const r = await flushOnce(worker, receiver, rows, 3, seq);
  const r2 = r.objects.filter((o) => o.sink !== "webhook");
  if (r2.length !== 2 || r2.some((o) => !(o.bytes > 0))) throw new Error(`unexpected objects ${JSON.stringify(r2)}`);
  const body = JSON.parse(receiver.state.kept.toString("utf8"));
  receiver.state.kept = null;
  if (body.events?.length !== rows || receiver.state.lastKey !== `bench/bench-0/${seq}`) {
    throw new Error(`webhook got ${body.events?.length} events under ${receiver.state.lastKey}, expected ${rows}`);
  }
}

/**
 * Per size: WARMUP + ROUNDS rounds, each running every configuration once, so noise from a shared
 * machine lands on all alike. The first configuration of a round rotates, so none always follows
 * the heaviest one (and its garbage). Medians reported.
 */
async function measureFlush(worker, receiver, rows, nextSeq, log) {
  await checkFlush(worker, receiver, rows, nextSeq());
  const samples = new Map(SINK_COUNTS.map((k) => [k, []]));
  const last = new Map();
  for (let round = 0; round < WARMUP + ROUNDS[rows]; round++) {
    for (let j = 0; j < SINK_COUNTS.length; j++) {
      const k = SINK_COUNTS[(round + j) % SINK_COUNTS.length];
      const r = await flushOnce(worker, receiver, rows, k, nextSeq());
      last.set(k, r);
      if (round >= WARMUP) samples.get(k).push(r.ms);
    }
  }
  const configs = SINK_COUNTS.map((k) => {
    const ms = median(samples.get(k));
    return { sinks: k, names: last.get(k).names, ms, rowsPerSec: rows / (ms / 1000), bytes: last.get(k).bytes };
  });
  const base = configs[0];
  for (const c of configs) {
    c.slowdown = c.ms / base.ms;
    c.samplesMs = samples.get(c.sinks);
  }
  log(`  flush ${fmt.int(rows)} rows: ${configs.map((c) => `${c.sinks} sink(s) ${fmt.ms(c.ms)} ms`).join(", ")}`);
  return { rows, configs };
}

/** COMPACTION_WARMUP + COMPACTION_ROUNDS times: write the hour's inputs (untimed), then one compactHour, timed after the warm-up. */
async function measureCompaction(worker, shape, log) {
  const samples = [];
  let summary = null;
  let populated = null;
  let ops = null;
  for (let round = 0; round < COMPACTION_WARMUP + COMPACTION_ROUNDS; round++) {
    const q = new URLSearchParams({
      files: String(shape.files),
      fileRows: String(shape.fileRows),
      replicas: String(shape.replicas),
      duplicateEvery: String(shape.duplicateEvery),
    });
    populated = await call(`${worker.url}/populate?${q}`, { method: "POST" });
    const c = new URLSearchParams({ hour: String(populated.hour), catalog: populated.catalog });
    if (shape.maxDecodedBytes !== null) c.set("maxDecodedBytes", String(shape.maxDecodedBytes));
    const r = await call(`${worker.url}/compact?${c}`);
    summary = r.summary;
    ops = { flush: populated.ops, compaction: r.ops };
    if (summary.skipped) throw new Error(`compactHour skipped the hour: ${summary.skipped}`);
    if (
      summary.inputs !== populated.files ||
      summary.rowsIn !== populated.rows ||
      summary.rowsOut !== populated.distinct
    ) {
      throw new Error(`compaction of ${JSON.stringify(populated)} gave ${JSON.stringify(summary)}`);
    }
    if (round >= COMPACTION_WARMUP) samples.push(Math.max(0, r.ms - r.tickMs));
  }
  const ms = median(samples);
  log(`  compaction ${fmt.int(summary.rowsIn)} rows in ${summary.inputs} files: ${fmt.ms(ms)} ms`);
  return {
    ...shape,
    inputs: summary.inputs,
    rowsIn: summary.rowsIn,
    rowsOut: summary.rowsOut,
    duplicates: summary.duplicates,
    parts: summary.objects.length,
    bytesIn: summary.bytesIn,
    bytesOut: summary.bytesOut,
    ms,
    rowsPerSec: summary.rowsIn / (ms / 1000),
    samplesMs: samples,
    ops,
  };
}

/** Commit latency under concurrent flushes, and the catalog's reads and retention over 10,000 files. */
async function measureCatalog(worker, log) {
  const r = await call(`${worker.url}/catalog`);
  const pct = (xs, p) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  };
  const commits = r.commits.map((c) => ({
    replicas: c.replicas,
    commits: c.samplesMs.length,
    p50: pct(c.samplesMs, 50),
    p99: pct(c.samplesMs, 99),
  }));
  for (const c of commits) log(`  catalog commit, ${c.replicas} at once: p50 ${c.p50} ms, p99 ${c.p99} ms`);
  const reads = [
    { what: "read one hour at a snapshot id (/events?snapshot=)", ms: median(r.hourReadMs) },
    { what: "read every file at a snapshot id", ms: median(r.allReadMs) },
    { what: "GET /snapshots (100)", ms: median(r.snapshotsMs) },
    { what: `retention pass (removes ${fmt.int(r.retention.files)} files, one snapshot)`, ms: r.retentionMs[0] },
  ];
  return { commits, files: r.files, reads };
}

/** R2 calls per million events, from the counted calls of the compaction runs (flush puts + compaction). */
export function opsPerMillion(c) {
  const perMillion = (n) => (n / c.rowsIn) * 1_000_000;
  return {
    fileRows: c.fileRows,
    flushA: perMillion(c.ops.flush.classA),
    compactA: perMillion(c.ops.compaction.classA),
    compactB: perMillion(c.ops.compaction.classB + c.ops.flush.classB),
  };
}

export async function runSinks(log = console.log) {
  const worker = await startBenchWorker(buildWorker(SINKS_CONFIG), {
    r2Buckets: ["EVENTS"],
    durableObjects: { CATALOG: { className: "LakeCatalog", useSQLite: true } },
  });
  const receiver = await startReceiver();
  let seq = 0;
  const nextSeq = () => seq++;
  try {
    const flush = [];
    for (const rows of FLUSH_SIZES) flush.push(await measureFlush(worker, receiver, rows, nextSeq, log));
    const compaction = [];
    for (const shape of COMPACTIONS) compaction.push(await measureCompaction(worker, shape, log));
    const catalog = await measureCatalog(worker, log);
    return { flush, compaction, catalog };
  } finally {
    await receiver.close();
    await worker.mf.dispose();
  }
}

export function printSinks(result, out = console.log) {
  out(
    "\nSink flush throughput: N rows held as a replica's columns, written by 1, 2 or 3 sinks at once, as the" +
      "\nflusher does (Promise.all(sinks.map(s => s.write(batch, ctx)))), inside workerd against Miniflare's local R2." +
      "\nSinks: r2-parquet (ZSTD Parquet), + r2-ndjson (gzipped NDJSON), + webhook (JSON POST to a Node receiver on" +
      "\n127.0.0.1 that reads the body and answers 204). A fresh EventBatch (no cached Arrow table or rows) and flush" +
      "\nseq per run; objects deleted after each run, untimed. Timed between awaited scheduler.wait(0) ticks, tick" +
      `\ncost subtracted. Median of ${Object.entries(ROUNDS)
        .map(([n, k]) => `${k} (${fmt.int(Number(n))} rows)`)
        .join(" / ")} rounds after ${WARMUP} warm-up rounds;` +
      "\nevery round runs each configuration once, rotating which goes first. One 3-sink flush per size is checked" +
      "\nfirst (objects, and every row posted under the flush's idempotency key). vs 1 sink = ms / ms of r2-parquet.\n",
  );
  const flushRows = result.flush.flatMap((f) => f.configs.map((c) => ({ rows: f.rows, ...c })));
  out(
    table(
      [
        { title: "rows", value: (l) => fmt.int(l.rows) },
        { title: "sinks", value: (l) => l.names.join(" + "), left: true },
        { title: "ms", value: (l) => fmt.ms(l.ms) },
        { title: "rows/s", value: (l) => fmt.int(l.rowsPerSec) },
        { title: "vs 1 sink", value: (l) => `${fmt.ratio(l.slowdown)}×` },
        { title: "parquet", value: (l) => fmt.mb(l.bytes["r2-parquet"]) },
        { title: "ndjson.gz", value: (l) => (l.bytes["r2-ndjson"] === undefined ? "" : fmt.mb(l.bytes["r2-ndjson"])) },
        { title: "webhook body", value: (l) => (l.bytes.webhook === undefined ? "" : fmt.mb(l.bytes.webhook)) },
      ],
      flushRows,
    ),
  );
  out(
    "\nCompaction: compactHour over one closed hour of small Parquet files from several replicas (some events" +
      "\nretried to another replica: duplicates), inside workerd against the local R2: the hour's files from the" +
      "\ncatalog, read and decode, dedup by id, sort by ts, encode one ZSTD file, write it, commit it in place of the" +
      "\ninputs, write the rollup. The inputs are written by R2ParquetSink and committed to a fresh catalog, untimed," +
      `\nbefore each round; median of ${COMPACTION_ROUNDS} rounds after ${COMPACTION_WARMUP} warm-up;` +
      "\nrows/s = rows in per second.\n",
  );
  out(
    table(
      [
        { title: "files", value: (l) => `${l.inputs} × ${fmt.int(l.fileRows)}` },
        { title: "replicas", value: (l) => l.replicas },
        { title: "rows in", value: (l) => fmt.int(l.rowsIn) },
        { title: "rows out", value: (l) => fmt.int(l.rowsOut) },
        { title: "duplicates", value: (l) => fmt.int(l.duplicates) },
        { title: "ms", value: (l) => fmt.ms(l.ms) },
        { title: "rows/s", value: (l) => fmt.int(l.rowsPerSec) },
        { title: "input", value: (l) => fmt.mb(l.bytesIn) },
        { title: "output", value: (l) => fmt.mb(l.bytesOut) },
        { title: "parts", value: (l) => l.parts },
        {
          title: "maxDecodedBytes",
          value: (l) => (l.maxDecodedBytes === null ? "16 MiB (default)" : `${l.maxDecodedBytes / MiB} MiB`),
        },
      ],
      result.compaction,
    ),
  );
  if (result.catalog) printCatalog(result, out);
}

function printCatalog(result, out) {
  out(
    "\nCatalog: commit latency per flush as each of N replicas sees it when N commit at once (group commit:" +
      "\nCATALOG_COMMIT_WINDOW_MS 5), one LakeCatalog in workerd, 20 rounds each (p50/p99 over all commits);" +
      `\nthen a catalog of ${fmt.int(result.catalog.files)} files (one per hour), median of 9 (retention: one pass, 30 days).\n`,
  );
  out(
    table(
      [
        { title: "replicas at once", value: (l) => l.replicas },
        { title: "commits", value: (l) => fmt.int(l.commits) },
        { title: "p50 ms", value: (l) => fmt.ms(l.p50) },
        { title: "p99 ms", value: (l) => fmt.ms(l.p99) },
      ],
      result.catalog.commits,
    ),
  );
  out(
    table(
      [
        { title: `over ${fmt.int(result.catalog.files)} files`, value: (l) => l.what, left: true },
        { title: "ms", value: (l) => fmt.ms(l.ms) },
      ],
      result.catalog.reads,
    ),
  );
  out(
    "\nR2 operations per million events (counted calls: class A = put, list; class B = get, head; deletes are" +
      "\nfree), flush puts plus the hour's compaction, by rows per flush file. The catalog is a Durable Object: no R2 calls.\n",
  );
  out(
    table(
      [
        { title: "rows per file", value: (l) => fmt.int(l.fileRows) },
        { title: "class A flush", value: (l) => fmt.int(l.flushA) },
        { title: "class A compaction", value: (l) => fmt.int(l.compactA) },
        { title: "class B", value: (l) => fmt.int(l.compactB) },
      ],
      result.compaction.filter((c, i, all) => all.findIndex((d) => d.fileRows === c.fileRows) === i).map(opsPerMillion),
    ),
  );
}

export function sinksJson(result) {
  const ms = (o) => ({
    ...o,
    ms: round(o.ms, 1),
    rowsPerSec: round(o.rowsPerSec, 0),
    samplesMs: o.samplesMs.map((m) => round(m, 1)),
  });
  return {
    rounds: { ...ROUNDS, warmup: WARMUP, compaction: COMPACTION_ROUNDS, compactionWarmup: COMPACTION_WARMUP },
    flush: result.flush.map((f) => ({
      rows: f.rows,
      configs: f.configs.map((c) => ({ ...ms(c), slowdown: round(c.slowdown, 3) })),
    })),
    compaction: result.compaction.map(ms),
    catalog: result.catalog,
  };
}
