// Section 5: ingest and ack latency through a simulated R2 outage, in buffered, confirmed and durable
// modes: before it, during it and after it, with the R2 calls (tries) per second during it and the
// time to drain the backlog after it. DuckTail's own Worker under Miniflare, built from
// workers/faults/worker.ts, whose replicas reach R2 through a switch (POST /__faults).
import { fileURLToPath } from "node:url";
import { buildWorker } from "../test/helpers/miniflare.mjs";
import { frameBuilder } from "./lib/frames.mjs";
import { fmt, percentile, round, table } from "./lib/stats.mjs";
import { startDuckTail } from "./lib/workerd.mjs";
import { Conn } from "./lib/ws-load.mjs";

const FAULTS_CONFIG = fileURLToPath(new URL("./workers/faults/wrangler.toml", import.meta.url));

export const MODES = ["buffered", "confirmed", "durable"];

/** The run's shape; BENCH_OUTAGE_S shortens the outage for a quick run (default 60 s). */
export const FAULTS_PLAN = {
  outageS: Number(process.env.BENCH_OUTAGE_S ?? 60),
  beforeS: 10,
  /** Ingest goes on this long after R2 is back (and at least until the backlog drained). */
  afterS: 20,
  /** Per mode: one socket, a frame of `batch` events every 1000 / `framesPerS` ms (open loop). */
  framesPerS: 10,
  batch: 100,
  /** Longest wait for the backlog to drain, and for the last answers. */
  drainLimitS: 180,
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function json(url, init) {
  const res = await fetch(url, init);
  if (!res.ok && res.status !== 204) throw new Error(`${init?.method ?? "GET"} ${url}: HTTP ${res.status}`);
  return res.status === 204 ? null : res.json();
}

async function shardStats(url) {
  const body = await json(`${url}/buffer/stats`);
  return body.shards[0]?.stats ?? {};
}

/**
 * Sends one frame per mode every tick and records each answer: which phase it was sent in, how
 * long it took, and what it said (ack with stored/refused events, or an error code).
 */
function startLoad(conns, plan, phaseOf) {
  const builders = Object.fromEntries(MODES.map((m) => [m, frameBuilder(m)]));
  const answers = [];
  let next = 0;
  let inFlight = 0;
  const tick = () => {
    for (const mode of MODES) {
      const id = `${mode}-${next++}`;
      const phase = phaseOf();
      const sentAt = performance.now();
      inFlight++;
      conns[mode].send(id, builders[mode](id, plan.batch), (reply) => {
        inFlight--;
        const ms = performance.now() - sentAt;
        if (reply.type === "ack") {
          const refused = reply.rejected?.length ?? 0;
          answers.push({ mode, phase, ms, outcome: "ack", stored: reply.stored, refused });
        } else answers.push({ mode, phase, ms, outcome: reply.code ?? reply.type, stored: 0, refused: 0 });
      });
    }
  };
  const timer = setInterval(tick, 1000 / plan.framesPerS);
  return {
    answers,
    stop: () => clearInterval(timer),
    get inFlight() {
      return inFlight;
    },
  };
}

/** Per phase and mode: frames, events stored and refused, durable_pending answers, latency. */
function summarize(answers) {
  const rows = [];
  for (const phase of ["before", "outage", "after"]) {
    for (const mode of MODES) {
      const mine = answers.filter((a) => a.phase === phase && a.mode === mode);
      const ms = mine.map((a) => a.ms);
      const errors = {};
      for (const a of mine) if (a.outcome !== "ack") errors[a.outcome] = (errors[a.outcome] ?? 0) + 1;
      const { durable_pending: pending = 0, ...other } = errors;
      rows.push({
        phase,
        mode,
        frames: mine.length,
        stored: mine.reduce((n, a) => n + a.stored, 0),
        bufferFull: mine.reduce((n, a) => n + a.refused, 0),
        durablePending: pending,
        otherErrors: other,
        p50: percentile(ms, 50),
        p99: percentile(ms, 99),
        max: ms.length ? Math.max(...ms) : null,
      });
    }
  }
  return rows;
}

export async function runFaults(log = console.log) {
  const plan = FAULTS_PLAN;
  const bundle = buildWorker(FAULTS_CONFIG);
  const { mf, url } = await startDuckTail(bundle, {});
  try {
    const conns = Object.fromEntries(
      await Promise.all(MODES.map(async (m) => [m, await Conn.open(`${url.replace(/^http/, "ws")}/ws`)])),
    );
    let phase = "before";
    const load = startLoad(conns, plan, () => phase);
    log(`faults: ${plan.beforeS} s of ingest with R2 up…`);
    await sleep(plan.beforeS * 1000);

    phase = "outage";
    const downAt = Date.now();
    const statsAtDown = await shardStats(url);
    await json(`${url}/__faults?mode=down`, { method: "POST" });
    log(`faults: R2 down for ${plan.outageS} s…`);
    await sleep(plan.outageS * 1000);
    const duringOutage = await json(`${url}/__faults?since=${downAt}`);
    const statsAtUp = await shardStats(url);

    phase = "after";
    await json(`${url}/__faults?mode=up`, { method: "POST" });
    const upAt = Date.now();
    log(`faults: R2 up; ${fmt.int(statsAtUp.bufferedRows)} rows held, draining…`);
    let drainMs = null;
    while (Date.now() - upAt < plan.drainLimitS * 1000) {
      const s = await shardStats(url);
      // Flushes complete oldest first: once this many rows completed, the outage's backlog is out.
      if (s.flushed - statsAtUp.flushed >= statsAtUp.bufferedRows) {
        drainMs = Date.now() - upAt;
        break;
      }
      await sleep(100);
    }
    await sleep(Math.max(0, plan.afterS * 1000 - (Date.now() - upAt)));
    load.stop();
    const deadline = Date.now() + plan.drainLimitS * 1000;
    while (load.inFlight > 0 && Date.now() < deadline) await sleep(50);
    for (const c of Object.values(conns)) c.close();
    const finalStats = await shardStats(url);

    const seconds = duringOutage.perSecond.map((p) => p.calls);
    return {
      plan,
      rows: summarize(load.answers),
      unanswered: load.inFlight,
      outage: {
        seconds: plan.outageS,
        r2Calls: duringOutage.calls,
        byMethod: duringOutage.byMethod,
        triesPerS: duringOutage.calls / plan.outageS,
        maxTriesInOneS: seconds.length ? Math.max(...seconds) : 0,
        flushFailures: statsAtUp.flushFailures - statsAtDown.flushFailures,
        heldAtRecovery: statsAtUp.bufferedRows,
        committedAtRecovery: statsAtUp.committedRows,
      },
      drainMs,
      final: {
        deadLettered: finalStats.deadLettered,
        openFlushes: finalStats.openFlushes,
        dropped: finalStats.dropped,
        lastError: finalStats.lastError,
      },
    };
  } finally {
    await mf.dispose();
  }
}

export function printFaults(result, out = console.log) {
  const { plan, outage } = result;
  out(
    `\n## 5. R2 outage (faults.mjs)\n\nOne replica, one socket per mode, a ${plan.batch}-event frame every ` +
      `${1000 / plan.framesPerS} ms per mode (open loop); R2 down for ${plan.outageS} s after ${plan.beforeS} s, ` +
      `then up. wrangler.toml's vars (FLUSH_RETRY_BASE_MS 1 s, backoff cap 10 s, durable acks wait 15 s, buffer 32 MiB).` +
      "\nLatency is send → answer, of every frame sent in the phase (acks and errors).\n",
  );
  out(
    table(
      [
        { title: "phase", value: (r) => r.phase, left: true },
        { title: "mode", value: (r) => r.mode, left: true },
        { title: "frames", value: (r) => fmt.int(r.frames) },
        { title: "events stored", value: (r) => fmt.int(r.stored) },
        { title: "buffer_full", value: (r) => fmt.int(r.bufferFull) },
        { title: "durable_pending", value: (r) => fmt.int(r.durablePending) },
        {
          title: "other errors",
          value: (r) =>
            Object.entries(r.otherErrors)
              .map(([k, v]) => `${k} ${v}`)
              .join(", ") || "-",
          left: true,
        },
        { title: "p50 ms", value: (r) => fmt.ms(r.p50) },
        { title: "p99 ms", value: (r) => fmt.ms(r.p99) },
        { title: "max ms", value: (r) => fmt.ms(r.max) },
      ],
      result.rows,
    ),
  );
  const methods = Object.entries(outage.byMethod)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  out(
    `\nDuring the ${outage.seconds} s outage: ${fmt.int(outage.r2Calls)} R2 calls (${methods || "none"}), ` +
      `${outage.triesPerS.toFixed(2)} tries/s, at most ${outage.maxTriesInOneS} in any second; ` +
      `${fmt.int(outage.flushFailures)} failed flush tries. Held at recovery: ${fmt.int(outage.heldAtRecovery)} rows ` +
      `(${fmt.int(outage.committedAtRecovery)} committed in SQLite).` +
      `\nDrained ${result.drainMs === null ? "NOT within the limit" : `${(result.drainMs / 1000).toFixed(1)} s`} after R2 came back; ` +
      `at the end: ${result.final.openFlushes} open flushes, ${result.final.deadLettered} dead-lettered, ` +
      `${fmt.int(result.final.dropped)} low events dropped, ${result.unanswered} frames unanswered.`,
  );
}

export function faultsJson(result) {
  return {
    ...result,
    rows: result.rows.map((r) => ({ ...r, p50: round(r.p50, 1), p99: round(r.p99, 1), max: round(r.max, 1) })),
    outage: { ...result.outage, triesPerS: round(result.outage.triesPerS, 3) },
  };
}
