// Section dashboard: what the dashboard (GET /dashboard, sdk/dashboard) costs a browser.
//   (a) first-load bytes, raw and gzipped: the shell (index.html, main.js, main.css and the chunks
//       main.js imports statically), with the default page (overview) and each lazy page apart;
//       baseline: uPlot alone, minified as the build bundles it.
//   (b) time to first chart on localhost in headless Chromium (navigation start → the first uPlot
//       drawn), beside DOMContentLoaded of the same loads as the baseline.
//   (c) the live tail page's frame rate while 1,000 events/s arrive, beside the same page idle.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";
import WebSocket from "ws";
import { eventInput } from "./lib/events.mjs";
import { fmt, latencySummary, round, table } from "./lib/stats.mjs";
import { startDuckTail } from "./lib/workerd.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
export const BUDGET_GZ = 150 * 1024;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const KEYS = {
  "rk-bench": { tenant: "dash-bench", scope: "read" },
  "wk-bench": { tenant: "dash-bench", scope: "write" },
};

export function dashboardShape(env = process.env) {
  return {
    /** Page loads timed for (b). */
    loads: Number(env.BENCH_DASH_LOADS ?? 10),
    /** Seconds of 1,000 events/s (and of idle) for (c). */
    seconds: Number(env.BENCH_DASH_SECONDS ?? 8),
    rate: Number(env.BENCH_DASH_RATE ?? 1000),
  };
}

const gz = (bytes) => gzipSync(bytes, { level: 9 }).byteLength;

/** Every file an output imports statically, itself included (esbuild's metafile). */
function closure(meta, file, seen = new Set()) {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const imp of meta.outputs[file]?.imports ?? [])
    if (imp.kind === "import-statement") closure(meta, imp.path, seen);
  return seen;
}

function sizeOf(files) {
  let raw = 0;
  let zipped = 0;
  for (const f of files) {
    const bytes = readFileSync(join(root, f));
    raw += bytes.byteLength;
    zipped += gz(bytes);
  }
  return { raw, gz: zipped };
}

/** (a) from the build's metafile (dist/dashboard-meta.json, written by sdk/dashboard/build.mjs). */
export function measureBytes() {
  const meta = JSON.parse(readFileSync(join(root, "dist/dashboard-meta.json"), "utf8"));
  const main = "dist/dashboard/main.js";
  const shellFiles = [...closure(meta, main), "dist/dashboard/main.css", "dist/dashboard/index.html"];
  const shell = sizeOf(shellFiles);
  const pages = {};
  for (const [file, out] of Object.entries(meta.outputs)) {
    const m = /sdk\/dashboard\/pages\/(\w+)\.ts$/.exec(out.entryPoint ?? "");
    if (!m) continue;
    // What visiting the page adds to the shell: its chunk and what it imports that the shell lacks.
    const extra = [...closure(meta, file)].filter((f) => !shellFiles.includes(f));
    pages[m[1]] = sizeOf(extra);
  }
  return { shell, pages };
}

export function printBytes(r, uplotMin) {
  const rows = [
    { what: "shell (index.html, main.js, main.css, static chunks)", ...r.shell },
    {
      what: "first visit: shell + overview page",
      raw: r.shell.raw + r.pages.overview.raw,
      gz: r.shell.gz + r.pages.overview.gz,
    },
    ...Object.entries(r.pages).map(([name, s]) => ({ what: `  lazy page: ${name}`, ...s })),
    ...(uplotMin ? [{ what: "baseline: uPlot alone, minified", ...uplotMin }] : []),
  ];
  console.log("\n(a) dashboard first-load bytes\n");
  console.log(
    table(
      [
        { title: "what", value: (x) => x.what, left: true },
        { title: "raw KB", value: (x) => (x.raw / 1024).toFixed(1) },
        { title: "gzip KB", value: (x) => (x.gz / 1024).toFixed(1) },
      ],
      rows,
    ),
  );
  const first = r.shell.gz + r.pages.overview.gz;
  console.log(
    `target: first load (shell + overview) ≤ ${BUDGET_GZ / 1024} KB gzipped → ${(first / 1024).toFixed(1)} KB ${first <= BUDGET_GZ ? "PASS" : "FAIL"}`,
  );
}

/** uPlot minified on its own, the share of the first load that is the chart library. */
async function uplotMinified() {
  const esbuild = await import("esbuild");
  const out = await esbuild.build({
    stdin: { contents: 'import uPlot from "uplot"; globalThis.u = uPlot;', resolveDir: root },
    bundle: true,
    minify: true,
    format: "esm",
    write: false,
    logLevel: "silent",
  });
  const bytes = out.outputFiles[0].contents;
  return { raw: bytes.byteLength, gz: gz(bytes) };
}

async function sendEvents(url, events) {
  const res = await fetch(`${url}/e?key=wk-bench`, { method: "POST", body: JSON.stringify(events) });
  if (!res.ok) throw new Error(`POST /e: ${res.status} ${await res.text()}`);
}

/** (b) navigation start → the first chart, over `loads` fresh page loads. */
async function timeToFirstChart(browser, url, loads) {
  const chart = [];
  const dcl = [];
  for (let i = 0; i < loads; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${url}/dashboard?key=rk-bench#/overview`);
    await page.waitForFunction(() => performance.getEntriesByName("ducktail:first-chart").length > 0, null, {
      timeout: 15_000,
    });
    const t = await page.evaluate(() => ({
      chart: performance.getEntriesByName("ducktail:first-chart")[0].startTime,
      dcl: performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd,
    }));
    chart.push(t.chart);
    dcl.push(t.dcl);
    await context.close();
  }
  return { chart: latencySummary(chart), dcl: latencySummary(dcl), loads };
}

/**
 * (c) frames drawn per second on the live tail page over `seconds`, while `rate` events/s (in
 * batches every 50 ms over one socket) arrive, and idle; with the frame times' p95 and max.
 */
async function tailFrameRate(browser, url, seconds, rate) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${url}/dashboard?key=rk-bench#/tail`);
  await page.waitForFunction(() => document.querySelector('[role="status"]')?.textContent?.startsWith("subscribed"));
  const frames = () =>
    page.evaluate(
      (ms) =>
        new Promise((done) => {
          const times = [];
          const start = performance.now();
          const step = (t) => {
            times.push(t);
            if (t - start < ms) requestAnimationFrame(step);
            else done(times);
          };
          requestAnimationFrame(step);
        }),
      seconds * 1000,
    );
  const summarize = (times) => {
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    const span = (times.at(-1) - times[0]) / 1000;
    return { fps: (times.length - 1) / span, ...latencySummary(gaps), longFrames: gaps.filter((g) => g > 50).length };
  };
  const idle = summarize(await frames());

  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws?key=wk-bench`);
  await new Promise((ok, fail) => {
    ws.once("open", ok);
    ws.once("error", fail);
  });
  let sent = 0;
  const perTick = Math.round(rate / 20);
  const timer = setInterval(() => {
    const events = Array.from({ length: perTick }, (_, k) => eventInput(1_000_000 + sent + k));
    ws.send(JSON.stringify({ type: "events", id: `b${sent}`, storageMode: "fire-and-forget", events }));
    sent += perTick;
  }, 50);
  const before = Number((await page.locator('[data-metric="received"]').getAttribute("data-value")) ?? 0);
  const loaded = summarize(await frames());
  clearInterval(timer);
  // What reached the page: every event sent, unless the server dropped some for it (counted).
  await new Promise((r) => setTimeout(r, 1000));
  const received = Number(await page.locator('[data-metric="received"]').getAttribute("data-value")) - before;
  const dropped = Number(await page.locator('[data-metric="dropped"]').getAttribute("data-value"));
  ws.close();
  await context.close();
  return { idle, loaded, sent, received, dropped, seconds, rate };
}

export async function runDashboard(bundleDir, log) {
  const shape = dashboardShape();
  log("dashboard: first-load bytes from dist/dashboard-meta.json…");
  const bytes = measureBytes();
  const uplot = await uplotMinified();
  if (!existsSync(CHROMIUM)) {
    log(`dashboard: ${CHROMIUM} not found, (b) and (c) skipped`);
    return { bytes, uplot, firstChart: null, tail: null, shape };
  }
  const { mf, url } = await startDuckTail(bundleDir, { DUCKTAIL_KEYS: JSON.stringify(KEYS) });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
  try {
    await sendEvents(
      url,
      Array.from({ length: 1000 }, (_, i) => eventInput(i)),
    );
    log(`dashboard: time to first chart over ${shape.loads} loads…`);
    const firstChart = await timeToFirstChart(browser, url, shape.loads);
    log(`dashboard: the live tail page, ${shape.seconds} s idle then ${shape.seconds} s at ${shape.rate} events/s…`);
    const tail = await tailFrameRate(browser, url, shape.seconds, shape.rate);
    return { bytes, uplot, firstChart, tail, shape };
  } finally {
    await browser.close();
    await mf.dispose();
  }
}

export function printDashboard(r) {
  printBytes(r.bytes, r.uplot);
  if (r.firstChart) {
    const f = r.firstChart;
    console.log(`\n(b) time to first chart on localhost, headless Chromium, ${f.loads} fresh loads of #/overview\n`);
    console.log(
      table(
        [
          { title: "ms from navigation start", value: (x) => x.what, left: true },
          { title: "p50", value: (x) => fmt.ms(x.s.p50) },
          { title: "p95", value: (x) => fmt.ms(x.s.p95) },
          { title: "max", value: (x) => fmt.ms(x.s.max) },
        ],
        [
          { what: "baseline: DOMContentLoaded (shell parsed)", s: f.dcl },
          { what: "first chart drawn", s: f.chart },
        ],
      ),
    );
  }
  if (r.tail) {
    const t = r.tail;
    console.log(`\n(c) live tail page frame rate, ${t.seconds} s each\n`);
    console.log(
      table(
        [
          { title: "page", value: (x) => x.what, left: true },
          { title: "fps", value: (x) => x.s.fps.toFixed(1) },
          { title: "frame p50 ms", value: (x) => fmt.ms(x.s.p50) },
          { title: "frame p95 ms", value: (x) => fmt.ms(x.s.p95) },
          { title: "max ms", value: (x) => fmt.ms(x.s.max) },
          { title: "frames > 50 ms", value: (x) => fmt.int(x.s.longFrames) },
        ],
        [
          { what: "baseline: idle", s: t.idle },
          { what: `${fmt.int(t.rate)} events/s arriving`, s: t.loaded },
        ],
      ),
    );
    console.log(
      `events: ${fmt.int(t.sent)} sent, ${fmt.int(t.received)} shown, ${fmt.int(t.dropped)} dropped by the server for the page`,
    );
  }
}

export function dashboardJson(r) {
  const kb = (s) => ({ rawKB: round(s.raw / 1024, 1), gzKB: round(s.gz / 1024, 1) });
  return {
    shape: r.shape,
    bytes: {
      shell: kb(r.bytes.shell),
      pages: Object.fromEntries(Object.entries(r.bytes.pages).map(([k, v]) => [k, kb(v)])),
      uplot: kb(r.uplot),
    },
    firstChart: r.firstChart,
    tail: r.tail,
  };
}
