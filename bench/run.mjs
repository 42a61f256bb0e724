// `npm run bench` [ingest] [encode] [sinks] [client] [faults] [heap] [tail] [views] [dashboard] [explorer] [recording]: runs the sections (all by default), prints their tables and
// writes bench/results/<timestamp>.json and bench/results/latest.json. See bench/README.md.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { buildWorker } from "../test/helpers/miniflare.mjs";
import { clientJson, printClient, runClient } from "./client.mjs";
import { dashboardJson, printDashboard, runDashboard } from "./dashboard.mjs";
import { encodeJson, printEncode, runEncode } from "./encode.mjs";
import { explorerJson, printExplorer, runExplorer } from "./explorer.mjs";
import { faultsJson, printFaults, runFaults } from "./faults.mjs";
import { heapJson, printHeap, runHeap } from "./heap.mjs";
import { INGEST_CONFIG, ingestJson, printIngest, runIngest } from "./ingest.mjs";
import { printRecording, recordingJson, runRecording } from "./recording.mjs";
import { printSinks, runSinks, sinksJson } from "./sinks.mjs";
import { PARTYSERVER_CONFIG, printTail, runTail, tailJson } from "./tail.mjs";
import { printViews, runViews, viewsJson } from "./views.mjs";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const SECTIONS = [
  "ingest",
  "encode",
  "sinks",
  "client",
  "faults",
  "heap",
  "tail",
  "views",
  "dashboard",
  "explorer",
  "recording",
];

function git(...args) {
  try {
    return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

/** Where and on what the numbers were taken; the load average says whether the machine was shared. */
function environment() {
  return {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? null,
    loadAvg1m: Math.round(loadavg()[0] * 100) / 100,
    commit: git("rev-parse", "--short", "HEAD"),
    dirty: (git("status", "--porcelain", "--", "src") ?? "") !== "",
  };
}

const wanted = process.argv.slice(2);
for (const w of wanted) if (!SECTIONS.includes(w)) throw new Error(`unknown section ${w}; use ${SECTIONS.join(", ")}`);
const run = (s) => wanted.length === 0 || wanted.includes(s);

const started = new Date();
const results = { startedAt: started.toISOString(), environment: environment() };
const log = (line) => process.stderr.write(`${line}\n`); // progress on stderr, tables on stdout

if (run("ingest")) {
  log("ingest: building the Worker with wrangler…");
  const result = await runIngest(buildWorker(INGEST_CONFIG), buildWorker(), log);
  printIngest(result);
  results.ingest = ingestJson(result);
}
if (run("encode")) {
  log("encode: building the encode worker…");
  const result = await runEncode(log);
  printEncode(result);
  results.encode = encodeJson(result);
}
if (run("sinks")) {
  log("sinks: building the sinks worker…");
  const result = await runSinks(log);
  printSinks(result);
  results.sinks = sinksJson(result);
}
if (run("client")) {
  log("client: building the Worker and the sdk…");
  execFileSync(process.execPath, [fileURLToPath(new URL("../sdk/build.mjs", import.meta.url))], { stdio: "inherit" });
  const result = await runClient(log);
  printClient(result);
  results.client = clientJson(result);
}
if (run("faults")) {
  log("faults: building the faults worker…");
  const result = await runFaults(log);
  printFaults(result);
  results.faults = faultsJson(result);
}
if (run("heap")) {
  log("heap: building the Worker…");
  const result = await runHeap(buildWorker(), log);
  printHeap(result);
  results.heap = heapJson(result);
}
if (run("tail")) {
  log("tail: building DuckTail (discarding sink) and the partyserver rooms…");
  const result = await runTail(buildWorker(INGEST_CONFIG), buildWorker(PARTYSERVER_CONFIG), log);
  printTail(result);
  results.tail = tailJson(result);
}
if (run("views")) {
  log("views: building DuckTail (discarding sink)…");
  const result = await runViews(buildWorker(INGEST_CONFIG), log);
  printViews(result);
  results.views = viewsJson(result);
}
if (run("dashboard")) {
  log("dashboard: building the sdk (dist/dashboard) and the Worker…");
  execFileSync(process.execPath, [fileURLToPath(new URL("../sdk/build.mjs", import.meta.url))], { stdio: "inherit" });
  const result = await runDashboard(buildWorker(), log);
  printDashboard(result);
  results.dashboard = dashboardJson(result);
}
if (run("explorer")) {
  log("explorer: building the Worker and the dashboard…");
  execFileSync(process.execPath, [fileURLToPath(new URL("../sdk/build.mjs", import.meta.url))], { stdio: "inherit" });
  const result = await runExplorer(buildWorker(), log);
  printExplorer(result);
  results.explorer = explorerJson(result);
}
if (run("recording")) {
  log("recording: building the Worker and duck-record.js…");
  execFileSync(process.execPath, [fileURLToPath(new URL("../sdk/build.mjs", import.meta.url))], { stdio: "inherit" });
  const result = await runRecording(buildWorker(), log);
  printRecording(result);
  results.recording = recordingJson(result);
}
results.seconds = Math.round((Date.now() - started.getTime()) / 1000);
results.loadAvg1mAfter = Math.round(loadavg()[0] * 100) / 100;

mkdirSync(RESULTS, { recursive: true });
const text = `${JSON.stringify(results, null, 2)}\n`;
const file = `${RESULTS}${started.toISOString().replace(/[:.]/g, "-")}.json`;
writeFileSync(file, text);
writeFileSync(`${RESULTS}latest.json`, text);
console.log(
  `\nwrote ${file} and latest.json (${results.seconds} s; load average ${results.environment.loadAvg1m} → ${results.loadAvg1mAfter})`,
);
