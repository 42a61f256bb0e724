// The Explorer's WebAssembly, into dist/dashboard/wasm/ beside the dashboard's scripts:
// DuckDB-wasm (the exception-handling build and its worker script) and parquet-wasm's browser
// build. duckdb-eh.wasm is ~34 MB, over the 25 MiB a Workers static asset may be, so every file
// here is stored gzipped (`<name>.gz`, duckdb-eh.wasm ~7.6 MB) and the Worker serves it with
// `Content-Encoding: gzip` (src/edge/gzip-asset.ts): the browser inflates it as it arrives.
// Gzipping 34 MB takes seconds, so the outputs are cached in node_modules/.cache/ducktail/,
// keyed by the package versions, and copied on later builds.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { DASHBOARD_OUT } from "./build.mjs";

/** The folder below dist/dashboard, and so below /dashboard/, that holds them. */
export const WASM_DIR = "wasm";

/** [package, file in it, name served] */
const FILES = [
  ["@duckdb/duckdb-wasm", "dist/duckdb-eh.wasm", "duckdb-eh.wasm"],
  ["@duckdb/duckdb-wasm", "dist/duckdb-browser-eh.worker.js", "duckdb-browser-eh.worker.js"],
  ["parquet-wasm", "esm/parquet_wasm_bg.wasm", "parquet_wasm_bg.wasm"],
];

/** Writes <dashboard>/wasm/<name>.gz for each file (after buildDashboard, which empties the dashboard's folder). */
export function buildWasmAssets(root, dashboard = join(root, DASHBOARD_OUT)) {
  const out = join(dashboard, WASM_DIR);
  const cache = join(root, "node_modules/.cache/ducktail");
  mkdirSync(out, { recursive: true });
  mkdirSync(cache, { recursive: true });
  for (const [pkg, file, name] of FILES) {
    const pkgDir = join(root, "node_modules", pkg);
    const version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
    const cached = join(cache, `${version}-${name}.gz`);
    if (!existsSync(cached)) {
      const tmp = `${cached}.${process.pid}.tmp`;
      writeFileSync(tmp, gzipSync(readFileSync(join(pkgDir, file)), { level: 9 }));
      renameSync(tmp, cached); // whole or absent, even if two builds race
    }
    copyFileSync(cached, join(out, `${name}.gz`));
  }
}
