// Starting the benchmark's Workers under Miniflare (never `wrangler dev`: its proxy adds a hop
// per message), on 127.0.0.1 only, each in its own workerd process whose pid we keep for CPU figures.
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { startWorker, workerOptions } from "../../test/helpers/miniflare.mjs";
import { childPids } from "./cpu.mjs";

/** Runs `start()` and returns its result plus the pid of the workerd it spawned (or null). */
async function withPid(start) {
  const before = new Set(childPids());
  const started = await start();
  const pid = childPids().find((p) => !before.has(p)) ?? null;
  return { ...started, pid };
}

/** DuckTail's own Worker (bundle from buildWorker()), with extra vars. */
export function startDuckTail(bundleDir, vars) {
  return withPid(() => startWorker(bundleDir, { vars }));
}

/**
 * A bench-only Worker: `dir` holds worker.js (+ any .wasm), as buildWorker() leaves it.
 * It gets the helper's options (modules, compatibility, host) minus DuckTail's bindings, plus
 * the Durable Objects and R2 bucket binding names (Miniflare's local R2, e.g. ["EVENTS"]) given.
 */
export function startBenchWorker(dir, { durableObjects = {}, r2Buckets = [] } = {}) {
  return withPid(async () => {
    const options = { ...workerOptions(dir), durableObjects, r2Buckets, bindings: {} };
    const mf = new Miniflare(convertV4MiniflareOptions(options));
    const url = (await mf.ready).toString().replace(/\/$/, "");
    return { mf, url };
  });
}
