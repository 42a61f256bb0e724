// Section 2: Parquet encoding rows/s — DuckTail's encoder inside workerd vs DuckDB's COPY.
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DuckDBInstance } from "@duckdb/node-api";
import { buildWorker } from "../test/helpers/miniflare.mjs";
import { storedEvents } from "./lib/events.mjs";
import { fmt, median, round, table } from "./lib/stats.mjs";
import { startBenchWorker } from "./lib/workerd.mjs";

const ENCODE_CONFIG = fileURLToPath(new URL("./workers/encode/wrangler.toml", import.meta.url));

export const SIZES = [10_000, 100_000];
/** Timed rounds per size, after WARMUP untimed ones (JIT, wasm memory and heap growth: the first
 * encodes in a fresh isolate run up to 3x slower, while production flushes run in a warm one). */
const ITERATIONS = { 10000: 9, 100000: 5 };
const WARMUP = 2;
export const TARGETS = { speed: 0.5, size: 1.05 };
/** DuckDB thread counts: 1 is the fair match for a single-threaded Durable Object. */
const DUCKDB_THREADS = [1, 2];

/** The request-context columns after the first 13 (null here: the sample events carry no context). */
const CONTEXT_COLUMNS = [
  "country",
  "region",
  "city",
  "timezone",
  "browser",
  "browser_version",
  "os",
  "os_version",
  "device_type",
  "ip",
];

/** The events columns (docs/ARCHITECTURE.md), typed as DuckTail writes them, from the StoredEvent NDJSON. */
const LOAD_SQL = (path) => `
  CREATE OR REPLACE TABLE t AS
  SELECT id, tenant, epoch_ms(ts) AS ts, epoch_ms(receivedAt) AS received_at, source, type, importance,
         userId AS user_id, anonymousId AS anonymous_id, sessionId AS session_id, data, replica, seq,
         ${CONTEXT_COLUMNS.map((c) => `NULL::VARCHAR AS ${c}`).join(", ")}, NULL::BOOLEAN AS is_bot
  FROM read_json('${path}', format = 'newline_delimited', columns = {
    id: 'VARCHAR', tenant: 'VARCHAR', ts: 'BIGINT', receivedAt: 'BIGINT', source: 'VARCHAR', type: 'VARCHAR',
    importance: 'VARCHAR', userId: 'VARCHAR', anonymousId: 'VARCHAR', sessionId: 'VARCHAR', data: 'VARCHAR',
    replica: 'VARCHAR', seq: 'BIGINT'})`;

/** One timed encode by our encoder in workerd (see workers/encode/worker.ts). */
async function encodeInWorkerd(url, rows) {
  const res = await fetch(`${url}/encode?rows=${rows}`);
  if (!res.ok) throw new Error(`encode worker: HTTP ${res.status} ${await res.text()}`);
  const r = await res.json();
  // The timing includes one `scheduler.wait(0)` round trip; subtract the empty bracket's.
  return { ms: Math.max(0, r.ms - r.tickMs), flushMs: Math.max(0, r.flushMs - r.tickMs), bytes: r.bytes };
}

/** One timed DuckDB COPY of table t with `threads` threads, measured from Node around the call. */
async function copyWithDuckDB(conn, out, threads) {
  await conn.run(`SET threads = ${threads}`);
  const t = performance.now();
  await conn.run(`COPY t TO '${out}' (FORMAT parquet, COMPRESSION zstd)`);
  return { ms: performance.now() - t, bytes: statSync(out).size };
}

/**
 * Warm-up, then ITERATIONS rounds that alternate the encoders, so noise from a shared machine
 * lands on all of them alike. Returns the median of each.
 */
async function compare(conn, url, dir, rows) {
  const encoders = [
    { name: "ours", run: () => encodeInWorkerd(url, rows) },
    ...DUCKDB_THREADS.map((threads) => ({
      name: `duckdb-${threads}`,
      threads,
      run: () => copyWithDuckDB(conn, join(dir, `duckdb-${rows}-${threads}.parquet`), threads),
    })),
  ];
  const samples = new Map([...encoders.map((e) => [e.name, []]), ["flush", []]]);
  const bytes = new Map();
  for (let i = 0; i < WARMUP + ITERATIONS[rows]; i++) {
    for (const e of encoders) {
      const r = await e.run();
      bytes.set(e.name, r.bytes);
      if (i >= WARMUP) samples.get(e.name).push(r.ms);
      if (i >= WARMUP && r.flushMs !== undefined) samples.get("flush").push(r.flushMs);
    }
  }
  bytes.set("flush", bytes.get("ours"));
  const summary = (name) => {
    const ms = median(samples.get(name));
    return { ms, rowsPerSec: rows / (ms / 1000), bytes: bytes.get(name), samplesMs: samples.get(name) };
  };
  return {
    ours: summary("ours"),
    flushOnly: summary("flush"),
    duckdb: encoders.slice(1).map((e) => ({ threads: e.threads, ...summary(e.name) })),
  };
}

/** Reads our file back with DuckDB: the comparison only means something if it holds the same rows. */
async function checkOurFile(conn, url, dir, rows) {
  const res = await fetch(`${url}/file?rows=${rows}`);
  const path = join(dir, `ducktail-${rows}.parquet`);
  writeFileSync(path, new Uint8Array(await res.arrayBuffer()));
  const reader = await conn.runAndReadAll(
    `SELECT (SELECT count(*) FROM read_parquet('${path}')) AS ours,
            (SELECT count(*) FROM (SELECT * FROM read_parquet('${path}') EXCEPT SELECT * FROM t)) AS differing`,
  );
  const [check] = reader.getRowObjectsJS();
  if (Number(check.ours) !== rows || Number(check.differing) !== 0) {
    throw new Error(`our Parquet file differs from the DuckDB table: ${JSON.stringify(check)}`);
  }
}

export async function runEncode(log = console.log) {
  const dir = mkdtempSync(join(tmpdir(), "ducktail-bench-encode-"));
  const worker = await startBenchWorker(buildWorker(ENCODE_CONFIG));
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  const rows = [];
  try {
    for (const n of SIZES) {
      const ndjson = join(dir, `rows-${n}.ndjson`);
      writeFileSync(
        ndjson,
        storedEvents(n)
          .map((e) => JSON.stringify(e))
          .join("\n"),
      );
      await conn.run(LOAD_SQL(ndjson));
      await checkOurFile(conn, worker.url, dir, n);
      const { ours, flushOnly, duckdb } = await compare(conn, worker.url, dir, n);
      const base = duckdb[0];
      rows.push({
        rows: n,
        ours,
        flushOnly,
        duckdb,
        speedRatio: ours.rowsPerSec / base.rowsPerSec,
        flushRatio: flushOnly.rowsPerSec / base.rowsPerSec,
        sizeRatio: ours.bytes / base.bytes,
      });
      log(`  ${fmt.int(n)} rows: ${fmt.int(ours.rowsPerSec)} rows/s vs DuckDB ${fmt.int(base.rowsPerSec)}`);
    }
  } finally {
    conn.closeSync();
    db.closeSync();
    await worker.mf.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows, targets: targetChecks(rows) };
}

function targetChecks(rows) {
  // The issue's measure, "events in replica memory → Parquet bytes, Arrow building included": a
  // replica holds typed-array columns, so its flush is the "flush only" row. The stricter check
  // from row objects (which adds what ingest already paid to fill the columns) is reported too.
  return rows.flatMap((r) => [
    {
      rows: r.rows,
      what: "speed flush from held columns/DuckDB(1 thread)",
      target: `≥ ${TARGETS.speed}`,
      value: r.flushRatio,
      pass: r.flushRatio >= TARGETS.speed,
    },
    {
      rows: r.rows,
      what: "speed from row objects/DuckDB(1 thread)",
      target: `≥ ${TARGETS.speed}`,
      value: r.speedRatio,
      pass: r.speedRatio >= TARGETS.speed,
    },
    {
      rows: r.rows,
      what: "size ours/DuckDB",
      target: `≤ ${TARGETS.size}`,
      value: r.sizeRatio,
      pass: r.sizeRatio <= TARGETS.size,
    },
  ]);
}

export function printEncode(result, out = console.log) {
  out(
    "\nParquet encoding: StoredEvent[] in memory → ZSTD Parquet bytes (the columns of docs/ARCHITECTURE.md)." +
      "\nours = row objects → the replica's typed-array columns → Arrow → IPC → parquet-wasm, inside workerd;" +
      "\n'flush only' = the same from columns already held (a replica fills them at ingest). Timed between awaited" +
      "\nscheduler.wait(0) ticks (workerd's clock only moves across I/O), tick cost subtracted." +
      "\nDuckDB = COPY t TO … (FORMAT parquet, COMPRESSION zstd) from an in-memory table, timed from Node." +
      `\nMedian of ${Object.entries(ITERATIONS)
        .map(([n, k]) => `${k} (${fmt.int(Number(n))} rows)`)
        .join(" / ")} rounds alternating the encoders, after ${WARMUP} warm-up rounds;` +
      "\nour file is read back and checked row for row against DuckDB's table.\n",
  );
  const lines = result.rows.flatMap((r) => [
    { rows: r.rows, who: "ducktail (workerd)", ...r.ours, speed: r.speedRatio, size: r.sizeRatio },
    { rows: r.rows, who: "ducktail flush only", ...r.flushOnly, speed: r.flushRatio, size: null },
    ...r.duckdb.map((d) => ({ rows: r.rows, who: `duckdb threads=${d.threads}`, ...d, speed: null, size: null })),
  ]);
  out(
    table(
      [
        { title: "rows", value: (l) => fmt.int(l.rows) },
        { title: "encoder", value: (l) => l.who, left: true },
        { title: "ms", value: (l) => fmt.ms(l.ms) },
        { title: "rows/s", value: (l) => fmt.int(l.rowsPerSec) },
        { title: "file", value: (l) => fmt.mb(l.bytes) },
        { title: "speed vs duckdb(1)", value: (l) => (l.speed === null ? "" : fmt.pct(l.speed)) },
        { title: "size vs duckdb", value: (l) => (l.size === null ? "" : fmt.ratio(l.size)) },
      ],
      lines,
    ),
  );
  for (const t of result.targets) {
    out(`target: ${fmt.int(t.rows)} rows ${t.what} ${t.target} → ${fmt.ratio(t.value)} ${t.pass ? "PASS" : "MISS"}`);
  }
}

export function encodeJson(result) {
  const r2 = (o) => ({
    ...o,
    ms: round(o.ms, 1),
    rowsPerSec: round(o.rowsPerSec, 0),
    samplesMs: o.samplesMs.map((m) => round(m, 1)),
  });
  return {
    ...result,
    rows: result.rows.map((r) => ({
      rows: r.rows,
      ours: r2(r.ours),
      flushOnly: r2(r.flushOnly),
      duckdb: r.duckdb.map(r2),
      speedRatio: round(r.speedRatio, 3),
      flushRatio: round(r.flushRatio, 3),
      sizeRatio: round(r.sizeRatio, 3),
    })),
    targets: result.targets.map((t) => ({ ...t, value: round(t.value, 3) })),
  };
}
