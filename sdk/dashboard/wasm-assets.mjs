// The Explorer's WebAssembly, into dist/dashboard/wasm/ beside the dashboard's scripts:
// DuckDB-wasm (the exception-handling build and its worker script) and parquet-wasm's browser
// build. duckdb-eh.wasm is ~34 MB, over the 25 MiB a Workers static asset may be, so every file
// here is stored gzipped (`<name>.gz`, duckdb-eh.wasm ~7.6 MB) and the Worker serves it with
// `Content-Encoding: gzip` (src/edge/gzip-asset.ts): the browser inflates it as it arrives.
// Gzipping 34 MB takes seconds, so the outputs are cached in node_modules/.cache/ducktail/,
// keyed by the package versions (and, for the worker script, by what is done to it), and copied
// on later builds. DuckDB-wasm's worker script gets the json extension's extraction functions
// (sdk/dashboard/explorer/worker-json.ts) and the fix its scalar functions need (see
// fixVarcharUdfs in sdk/lake/json-functions.ts); a worker script they do not fit is served as it is.
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { DASHBOARD_OUT } from "./build.mjs";

/** The folder below dist/dashboard, and so below /dashboard/, that holds them. */
export const WASM_DIR = "wasm";

/** [package, file in it, name served, whether it is the worker script] */
const FILES = [
  ["@duckdb/duckdb-wasm", "dist/duckdb-eh.wasm", "duckdb-eh.wasm", false],
  ["@duckdb/duckdb-wasm", "dist/duckdb-browser-eh.worker.js", "duckdb-browser-eh.worker.js", true],
  ["parquet-wasm", "esm/parquet_wasm_bg.wasm", "parquet_wasm_bg.wasm", false],
];

/**
 * Writes <dashboard>/wasm/<name>.gz for each file (after buildDashboard, which empties the
 * dashboard's folder). `esbuild` builds what the worker script gets.
 */
export async function buildWasmAssets(esbuild, root, dashboard = join(root, DASHBOARD_OUT)) {
  const out = join(dashboard, WASM_DIR);
  const cache = join(root, "node_modules/.cache/ducktail");
  mkdirSync(out, { recursive: true });
  mkdirSync(cache, { recursive: true });
  const worker = await workerChanges(esbuild, root);
  for (const [pkg, file, name, isWorker] of FILES) {
    const pkgDir = join(root, "node_modules", pkg);
    const version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
    const cached = join(cache, `${version}-${isWorker ? `${worker.key}-` : ""}${name}.gz`);
    if (!existsSync(cached)) {
      const tmp = `${cached}.${process.pid}.tmp`;
      const bytes = readFileSync(join(pkgDir, file));
      writeFileSync(tmp, gzipSync(isWorker ? worker.change(bytes.toString("utf8")) : bytes, { level: 9 }));
      renameSync(tmp, cached); // whole or absent, even if two builds race
    }
    copyFileSync(cached, join(out, `${name}.gz`));
  }
}

/** What is done to the worker script (`change`), and a key naming it for the cache. */
async function workerChanges(esbuild, root) {
  const built = await esbuild.build({
    entryPoints: ["sdk/dashboard/explorer/worker-json.ts"],
    absWorkingDir: root,
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "none",
    write: false,
  });
  const prelude = built.outputFiles[0].text;
  // The script's own edits (sdk/lake/json-functions.ts), built for this process to run.
  const tools = await esbuild.build({
    stdin: {
      contents: 'export { fixVarcharUdfs, hookWorkerConnect } from "./sdk/lake/json-functions.ts";',
      resolveDir: root,
      loader: "ts",
    },
    bundle: true,
    format: "esm",
    platform: "neutral",
    write: false,
  });
  const { fixVarcharUdfs, hookWorkerConnect } = await import(
    `data:text/javascript;base64,${Buffer.from(tools.outputFiles[0].text).toString("base64")}`
  );
  const key = createHash("sha256")
    .update(prelude)
    .update(tools.outputFiles[0].text)
    .update(readFileSync(new URL(import.meta.url))) // this file: how they are put together
    .digest("hex")
    .slice(0, 12);
  return {
    key,
    change(script) {
      const fixed = fixVarcharUdfs(script);
      const hooked = fixed === null ? null : hookWorkerConnect(fixed);
      if (hooked === null) {
        console.warn(
          "ducktail: DuckDB-wasm's worker script is not the one expected; the Explorer has no JSON functions",
        );
        return script;
      }
      // The leading ";" keeps esbuild's "use strict" from being the script's directive, which
      // would make DuckDB's code after it strict too.
      return `;${prelude}\n${hooked}`;
    },
  };
}
