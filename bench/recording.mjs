// `npm run bench -- recording`: what session recording costs a page and the bucket. A scripted
// session (synthetic mouse moves every 50 ms, a character typed every 100 ms, a 50-row table
// re-rendered every second, a scroll every 5 s) runs in headless Chromium for SECONDS, three ways
// interleaved per round: no duck.js (the floor), duck.js without `record` (the baseline), and
// duck.js with `record` (rrweb via duck-record.js). Main-thread time is Chromium's TaskDuration,
// and the script time within it ScriptDuration (CDP Performance.getMetrics), over the scripted
// window; stored bytes are the session's gzipped chunks in R2 as its index counts them.
// Per minute = measured / SECONDS * 60.
import { createServer } from "node:http";
import { chromium } from "playwright-core";
import { startWorker } from "../test/helpers/miniflare.mjs";
import { fmt, median, round, table } from "./lib/stats.mjs";

const SECONDS = Number(process.env.BENCH_RECORDING_SECONDS ?? 15);
const ROUNDS = Number(process.env.BENCH_RECORDING_ROUNDS ?? 3);
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const KEYS = { wk: { tenant: "bench-rec", scope: "write" }, rk: { tenant: "bench-rec", scope: "read" } };
const MODES = ["none", "duck.js", "duck.js + record"];

/** The scripted page: an app that keeps changing, driven by its own timers. */
function sitePage(workerUrl, mode) {
  const init = mode === "duck.js + record" ? { record: true } : {};
  const duck =
    mode === "none"
      ? ""
      : `<script>window.duck=window.duck||[];duck.push(["init","wk",${JSON.stringify(init)}]);</script>
         <script async src="${workerUrl}/duck.js"></script>`;
  return `<!doctype html><html><head><title>Bench app</title>${duck}</head><body style="height:3000px">
  <h1>Orders</h1><input id="q" placeholder="search"><table id="t"></table>
  <script>
    const q = document.getElementById("q"), t = document.getElementById("t");
    let n = 0;
    window.startScript = () => {
      setInterval(() => document.dispatchEvent(new MouseEvent("mousemove", { clientX: n % 800, clientY: (n * 7) % 600, bubbles: true })), 50);
      setInterval(() => { q.value = q.value.length > 30 ? "" : q.value + String.fromCharCode(97 + (n++ % 26)); q.dispatchEvent(new Event("input", { bubbles: true })); }, 100);
      setInterval(() => { t.innerHTML = Array.from({ length: 50 }, (_, i) => "<tr><td>order " + (i + n) + "</td><td>" + Math.round(Math.random() * 1e4) / 100 + " EUR</td></tr>").join(""); }, 1000);
      setInterval(() => window.scrollTo(0, (n * 37) % 2000), 5000);
    };
  </script></body></html>`;
}

/** Seconds the page's main thread spent in tasks, and in script within them, so far. */
async function mainThread(cdp) {
  const { metrics } = await cdp.send("Performance.getMetrics");
  const value = (name) => metrics.find((m) => m.name === name)?.value ?? 0;
  return { task: value("TaskDuration"), script: value("ScriptDuration") };
}

async function once(browser, siteUrl, workerUrl, mode, log) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  await page.goto(`${siteUrl}/?mode=${encodeURIComponent(mode)}`);
  if (mode === "duck.js + record") {
    await page.waitForFunction(() => typeof window.duck?.rec?.on === "function", null, { timeout: 10_000 });
  } else if (mode === "duck.js") {
    await page.waitForFunction(() => typeof window.duck?.rec === "object", null, { timeout: 10_000 });
  }
  const before = await mainThread(cdp);
  await page.evaluate(() => window.startScript());
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const after = await mainThread(cdp);
  const taskMs = (after.task - before.task) * 1000;
  const scriptMs = (after.script - before.script) * 1000;
  let stored = null;
  if (mode === "duck.js + record") {
    // The last chunk goes with the page-hide beacon; then the session's index counts every stored byte.
    const session = await page.evaluate(() => JSON.parse(localStorage.getItem("duck_sid")).id);
    await page.evaluate(() => window.dispatchEvent(new Event("pagehide")));
    const deadline = Date.now() + 10_000;
    let last = -1;
    for (;;) {
      const res = await fetch(`${workerUrl}/recording/${session}?key=rk`);
      const body = res.ok ? await res.json() : null;
      const bytes = body?.summary.bytes ?? 0;
      // Stable across two reads a moment apart: the beacon's chunks are in.
      if (bytes > 0 && bytes === last) {
        stored = { bytes, chunks: body.summary.chunks, rawBytes: JSON.stringify(body.events).length };
        break;
      }
      last = bytes;
      if (Date.now() > deadline) throw new Error(`recording of ${session} not complete in 10 s`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  await context.close();
  const perMin = 60 / SECONDS;
  const row = {
    mode,
    taskMsPerMin: taskMs * perMin,
    scriptMsPerMin: scriptMs * perMin,
    storedBytesPerMin: stored ? stored.bytes * perMin : null,
    rawBytesPerMin: stored ? stored.rawBytes * perMin : null,
    chunksPerMin: stored ? stored.chunks * perMin : null,
  };
  log(`recording: ${mode}: ${round(row.taskMsPerMin, 0)} ms main thread per minute`);
  return row;
}

export async function runRecording(bundleDir, log) {
  const { mf, url: workerUrl } = await startWorker(bundleDir, { vars: { DUCKTAIL_KEYS: JSON.stringify(KEYS) } });
  const site = createServer((req, res) => {
    const mode = new URL(req.url, "http://x").searchParams.get("mode") ?? "none";
    res.setHeader("content-type", "text/html");
    res.end(sitePage(workerUrl, mode));
  });
  await new Promise((r) => site.listen(0, "127.0.0.1", r));
  const siteUrl = `http://127.0.0.1:${site.address().port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
  const rows = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of MODES) rows.push({ round, ...(await once(browser, siteUrl, workerUrl, mode, log)) });
    }
  } finally {
    await browser.close();
    await new Promise((r) => site.close(r));
    await mf.dispose();
  }
  const medians = MODES.map((mode) => {
    const of = rows.filter((r) => r.mode === mode);
    const m = (k) => (of[0][k] === null ? null : median(of.map((r) => r[k])));
    return {
      mode,
      round: "median",
      taskMsPerMin: m("taskMsPerMin"),
      scriptMsPerMin: m("scriptMsPerMin"),
      storedBytesPerMin: m("storedBytesPerMin"),
      rawBytesPerMin: m("rawBytesPerMin"),
      chunksPerMin: m("chunksPerMin"),
    };
  });
  const base = medians.find((r) => r.mode === "duck.js");
  for (const r of medians) {
    r.overBaselineMsPerMin = r.taskMsPerMin - base.taskMsPerMin;
    r.scriptOverBaselineMsPerMin = r.scriptMsPerMin - base.scriptMsPerMin;
  }
  return { seconds: SECONDS, rounds: ROUNDS, rows, medians };
}

export function printRecording(result, out = console.log) {
  out(
    `\nRecording: main-thread time (Chromium TaskDuration) and stored bytes per minute of a scripted session` +
      `\n(${result.seconds} s per run, ${result.rounds} rounds, modes interleaved): mouse moves every 50 ms, a key every` +
      "\n100 ms, a 50-row table re-rendered every second, a scroll every 5 s. Baseline: duck.js without `record`.\n",
  );
  const kb = (x) => (x === null ? "-" : `${fmt.int(x / 1024)} KB`);
  out(
    table(
      [
        { title: "mode", value: (r) => r.mode, left: true },
        { title: "round", value: (r) => String(r.round), left: true },
        { title: "main thread ms/min", value: (r) => fmt.int(r.taskMsPerMin) },
        {
          title: "over baseline",
          value: (r) => (r.overBaselineMsPerMin === undefined ? "" : fmt.int(r.overBaselineMsPerMin)),
        },
        { title: "script ms/min", value: (r) => fmt.int(r.scriptMsPerMin) },
        {
          title: "over baseline",
          value: (r) => (r.scriptOverBaselineMsPerMin === undefined ? "" : fmt.int(r.scriptOverBaselineMsPerMin)),
        },
        { title: "stored/min (gzip)", value: (r) => kb(r.storedBytesPerMin) },
        { title: "events JSON/min", value: (r) => kb(r.rawBytesPerMin) },
        { title: "chunks/min", value: (r) => fmt.int(r.chunksPerMin) },
      ],
      [...result.rows, ...result.medians],
    ),
  );
}

export function recordingJson(result) {
  const r = (row) => ({
    mode: row.mode,
    round: row.round,
    taskMsPerMin: round(row.taskMsPerMin, 0),
    scriptMsPerMin: round(row.scriptMsPerMin, 0),
    storedBytesPerMin: round(row.storedBytesPerMin, 0),
    rawBytesPerMin: round(row.rawBytesPerMin, 0),
    chunksPerMin: round(row.chunksPerMin, 1),
  });
  return { seconds: result.seconds, rounds: result.rounds, rows: result.rows.map(r), medians: result.medians.map(r) };
}
