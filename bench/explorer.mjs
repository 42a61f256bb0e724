// Section explorer: SQL over a million events in the lake, read by HTTP Range (sdk/lake/reader.ts,
// what `ducktail query` and the dashboard's Explorer run) against reading every object whole,
// measured in the same run. The lake (24 hourly objects written by DuckTail's own encoder and
// committed to the tenant's catalog) is built straight into Miniflare's bucket.
import { existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { startWorker } from "../test/helpers/miniflare.mjs";
import { round, table } from "./lib/stats.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HOUR = 3_600_000;
export const EVENTS = 1_000_000;
const HOURS = 24;
const TENANT = "default";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** The TypeScript side (encoder, catalog records, the reader), bundled for Node inside node_modules so its imports resolve. */
async function benchModule() {
  const dir = join(ROOT, "node_modules/.cache/ducktail");
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, "lake-bench.mjs");
  await build({
    entryPoints: [join(ROOT, "bench/lib/lake-bench.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile,
    external: ["parquet-wasm", "apache-arrow", "@duckdb/duckdb-wasm"],
    logLevel: "warning",
  });
  return import(`${outfile}?${Date.now()}`);
}

/** The cases: a name, the SQL, and how far back the range starts (hours). */
const CASES = [
  { name: "count by type, 24 h", sql: "SELECT type, count(*) AS n FROM events GROUP BY type", hours: 24 },
  {
    name: "visitors by country, 24 h",
    sql: "SELECT country, count(DISTINCT user_id) AS visitors FROM events GROUP BY country",
    hours: 24,
  },
  { name: "count by type, last 2 h", sql: "SELECT type, count(*) AS n FROM events GROUP BY type", hours: 2 },
  { name: "SELECT * (every column), 24 h", sql: "SELECT count(*) AS n FROM (SELECT * FROM events)", hours: 24 },
];

function source(url) {
  return {
    base: url,
    files: async (r) => (await fetch(`${url}/lake/files?from=${r.from}&to=${r.to}`)).json(),
    buffered: async () => [],
  };
}

/** Reading every object whole (no Range): the baseline, as a reader without byte ranges must. */
async function wholeObjects(m, url, range, sql) {
  const parquet = createRequire(import.meta.url)("parquet-wasm/node");
  const list = await (await fetch(`${url}/lake/files?from=${range.from}&to=${range.to}`)).json();
  const duck = await m.nodeDuckDB();
  const started = performance.now();
  let bytes = 0;
  let first = true;
  for (const f of list.files) {
    const body = new Uint8Array(
      await (await fetch(`${url}/lake/object?object=${encodeURIComponent(f.key)}`)).arrayBuffer(),
    );
    bytes += body.byteLength;
    await duck.db.insertIPC("piece", parquet.readParquet(body).intoIPCStream());
    await duck.db.run(first ? "CREATE TABLE events AS SELECT * FROM piece" : "INSERT INTO events SELECT * FROM piece");
    await duck.db.run("DROP TABLE piece");
    first = false;
  }
  const result = await duck.query(sql);
  return { ms: performance.now() - started, bytes, lakeBytes: list.bytes, files: list.files.length, result };
}

/** The Explorer in Chromium: the time from Run to its stats line, and the bytes it says it read. */
async function explorerInBrowser(url, sql) {
  if (!existsSync(CHROMIUM)) return null;
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
  try {
    const page = await browser.newPage();
    let bytes = 0;
    page.on("response", (r) => {
      if (r.url().includes("/lake/object?")) bytes += Number(r.headers()["content-length"] ?? 0);
    });
    const hash = `#/explorer?${new URLSearchParams({ sql: "SELECT 1 AS warm FROM events LIMIT 0", from: "1h" })}`;
    await page.goto(`${url}/dashboard${hash}`);
    const stats = page.locator('[data-explorer="stats"]');
    await stats.filter({ hasText: "rows" }).waitFor({ timeout: 60_000 }); // DuckDB-wasm loaded and warm
    bytes = 0;
    await page.getByLabel("SQL").fill(sql);
    await page.getByLabel("From").fill("24h");
    const started = performance.now();
    await page.getByRole("button", { name: "Run" }).click();
    await stats.filter({ hasText: /rows · read/ }).waitFor({ timeout: 120_000 });
    await page.waitForFunction(() => !document.querySelector("form button")?.hasAttribute("disabled"));
    return { ms: performance.now() - started, bytes, text: await stats.textContent() };
  } finally {
    await browser.close();
  }
}

export async function runExplorer(bundleDir, log) {
  const m = await benchModule();
  const { mf, url } = await startWorker(bundleDir, {});
  try {
    const bucket = await mf.getR2Bucket("EVENTS");
    const catalogs = await mf.getDurableObjectNamespace("CATALOG");
    const catalog = catalogs.get(catalogs.idFromName(TENANT));
    const now = Date.now();
    const lastHour = now - (now % HOUR);
    const perHour = Math.ceil(EVENTS / HOURS);
    const built = performance.now();
    for (let k = 0; k < HOURS; k++) {
      const hour = lastHour - (HOURS - 1 - k) * HOUR;
      const { key, body, info } = m.hourObject(TENANT, hour, perHour, k);
      await bucket.put(key, body);
      const committed = await catalog.commit(TENANT, { change: "insert", add: [info] });
      if (!committed.ok) throw new Error(`commit refused: ${committed.conflict}`);
      if (k % 6 === 5) log(`explorer: lake ${k + 1}/${HOURS} hours written`);
    }
    log(`explorer: ${perHour * HOURS} events in ${HOURS} objects in ${round((performance.now() - built) / 1000, 1)} s`);
    const to = now + 1;
    const rows = [];
    for (const c of CASES) {
      const range = { from: lastHour - (c.hours - 1) * HOUR, to };
      const duck = await m.nodeDuckDB();
      const started = performance.now();
      const stats = await m.loadEvents({
        sql: c.sql,
        range,
        source: source(url),
        parquet: createRequire(import.meta.url)("parquet-wasm/node"),
        db: duck.db,
      });
      await duck.query(c.sql);
      const ms = performance.now() - started;
      rows.push({
        case: c.name,
        reader: "Range (Node)",
        ms,
        bytes: stats.bytesRead,
        lakeBytes: stats.lakeBytes,
        files: stats.files,
        groups: `${stats.rowGroupsRead}/${stats.rowGroups}`,
        requests: stats.requests,
        columns: stats.columns.length,
        events: stats.rows,
      });
      log(`explorer: ${c.name}: ${round(ms / 1000, 2)} s`);
    }
    const base = CASES[0];
    const whole = await wholeObjects(m, url, { from: lastHour - (base.hours - 1) * HOUR, to }, base.sql);
    rows.push({
      case: base.name,
      reader: "whole objects (baseline)",
      ms: whole.ms,
      bytes: whole.bytes,
      lakeBytes: whole.lakeBytes,
      files: whole.files,
      groups: "all",
      requests: whole.files,
      columns: 24,
      events: perHour * HOURS,
    });
    log(`explorer: baseline (whole objects): ${round(whole.ms / 1000, 2)} s`);
    const browser = await explorerInBrowser(url, base.sql);
    if (browser) {
      rows.push({
        case: base.name,
        reader: "Explorer (Chromium)",
        ms: browser.ms,
        bytes: browser.bytes,
        lakeBytes: whole.lakeBytes,
        files: whole.files,
        groups: "",
        requests: "",
        columns: "",
        events: perHour * HOURS,
      });
    } else log(`explorer: ${CHROMIUM} missing, the browser row is skipped`);
    return { events: perHour * HOURS, hours: HOURS, rows };
  } finally {
    await mf.dispose();
  }
}

const mib = (n) => round(n / 1024 / 1024, 2);

export function printExplorer(r) {
  console.log(`\n## explorer: SQL over ${r.events.toLocaleString("en-US")} events in ${r.hours} hourly objects\n`);
  console.log(
    table(
      [
        { title: "query", value: (x) => x.case, left: true },
        { title: "reader", value: (x) => x.reader, left: true },
        { title: "cols", value: (x) => x.columns },
        { title: "files", value: (x) => x.files },
        { title: "row groups", value: (x) => x.groups },
        { title: "requests", value: (x) => x.requests },
        { title: "read MiB", value: (x) => mib(x.bytes) },
        { title: "lake MiB", value: (x) => mib(x.lakeBytes) },
        { title: "read %", value: (x) => round((100 * x.bytes) / x.lakeBytes, 1) },
        { title: "time s", value: (x) => round(x.ms / 1000, 2) },
      ],
      r.rows,
    ),
  );
}

export function explorerJson(r) {
  return { events: r.events, hours: r.hours, rows: r.rows.map((x) => ({ ...x, ms: Math.round(x.ms) })) };
}
