// Builds the Worker with wrangler (the same bundle `wrangler deploy` ships) and runs it under
// Miniflare directly: the same workerd as `wrangler dev`, without its per-message proxy cost.
// Plain .mjs so tests, benchmarks and the crash test's child process can all import it.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Bundles a Worker (by default src/worker.ts) into a fresh directory and returns it.
 * `extraArgs` go to `wrangler deploy --dry-run` (e.g. `--alias`).
 */
export function buildWorker(config = join(root, "wrangler.toml"), extraArgs = []) {
  const outdir = mkdtempSync(join(tmpdir(), "ducktail-build-"));
  // Run wrangler's JS with this Node (22 under npm scripts): the bare `wrangler` shim would pick PATH's node.
  const wrangler = join(root, "node_modules/wrangler/bin/wrangler.js");
  const args = [wrangler, "deploy", "--dry-run", "--outdir", outdir, "--config", config, ...extraArgs];
  const res = spawnSync(process.execPath, args, {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" },
  });
  if (res.status !== 0 || !existsSync(join(outdir, "worker.js"))) {
    throw new Error(`wrangler build failed:\n${res.stdout}\n${res.stderr}`);
  }
  return outdir;
}

/** The [vars] of wrangler.toml, parsed just enough (string values only). */
export function wranglerVars(config = join(root, "wrangler.toml")) {
  const vars = {};
  let inVars = false;
  for (const line of readFileSync(config, "utf8").split("\n")) {
    const t = line.trim();
    if (t.startsWith("[")) inVars = t === "[vars]";
    else if (inVars) {
      const m = /^([A-Z0-9_]+)\s*=\s*"([^"]*)"/.exec(t);
      if (m) vars[m[1]] = m[2];
    }
  }
  return vars;
}

/**
 * Miniflare options for the bundled Worker.
 * @param {string} bundleDir from buildWorker()
 * @param {{ persistDir?: string, vars?: Record<string,string>, port?: number, replicaClass?: string }} [opts]
 */
export function workerOptions(bundleDir, opts = {}) {
  return {
    modulesRoot: bundleDir,
    modules: [
      { type: "ESModule", path: join(bundleDir, "worker.js") },
      ...readdirSync(bundleDir)
        .filter((f) => f.endsWith(".wasm"))
        .map((f) => ({ type: "CompiledWasm", path: join(bundleDir, f) })),
      // wrangler's default rules bundle .sql files (the lake catalog's DDL) as text modules.
      ...readdirSync(bundleDir)
        .filter((f) => f.endsWith(".sql"))
        .map((f) => ({ type: "Text", path: join(bundleDir, f) })),
    ],
    compatibilityDate: "2026-11-01",
    compatibilityFlags: ["nodejs_compat"],
    durableObjects: {
      COORDINATOR: { className: "BufferCoordinator", useSQLite: true },
      REPLICA: { className: opts.replicaClass ?? "BufferReplica", useSQLite: true },
      CATALOG: { className: "LakeCatalog", useSQLite: true },
      RECORDINGS: { className: "SessionRecording", useSQLite: true },
    },
    r2Buckets: ["EVENTS"],
    // wrangler.toml [assets]: the dashboard (built by sdk/build.mjs), the Worker answering first.
    assets: {
      directory: join(root, "dist/dashboard"),
      binding: "ASSETS",
      routerConfig: { invoke_user_worker_ahead_of_assets: true, has_user_worker: true },
    },
    bindings: { ...wranglerVars(), ...(opts.vars ?? {}) },
    ...(opts.persistDir ? { resourcePersistencePath: opts.persistDir } : {}),
    cf: false,
    host: "127.0.0.1",
    port: opts.port ?? 0,
    log: new Log(process.env.DUCKTAIL_DEBUG ? LogLevel.DEBUG : LogLevel.WARN),
  };
}

/** Starts the Worker; resolves to { mf, url } with url like http://127.0.0.1:PORT. */
export async function startWorker(bundleDir, opts = {}) {
  // Miniflare 5 takes a new options shape; the v4 one (a single worker) converts to it.
  const mf = new Miniflare(convertV4MiniflareOptions(workerOptions(bundleDir, opts)));
  const url = await mf.ready;
  return { mf, url: url.toString().replace(/\/$/, "") };
}
