// `wrangler deploy --dry-run` into a temp dir, then fail if the gzipped Worker (JS + wasm) passes the budget.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { buildWorker } from "../test/helpers/miniflare.mjs";

const BUDGET_BYTES = 3 * 1024 * 1024;
const dir = buildWorker();
let raw = 0;
let gz = 0;
for (const file of readdirSync(dir)) {
  if (file.endsWith(".map") || file.endsWith(".md")) continue;
  const bytes = readFileSync(join(dir, file));
  const zipped = gzipSync(bytes, { level: 9 }).byteLength;
  raw += statSync(join(dir, file)).size;
  gz += zipped;
  console.log(
    `${file.padEnd(60)} ${(bytes.byteLength / 1024).toFixed(0).padStart(7)} KiB  gz ${(zipped / 1024).toFixed(0).padStart(6)} KiB`,
  );
}
const mb = (n) => (n / 1024 / 1024).toFixed(2);
console.log(`bundle: ${mb(raw)} MiB raw, ${mb(gz)} MiB gzipped (budget ${mb(BUDGET_BYTES)} MiB)`);
if (gz > BUDGET_BYTES) {
  console.error("bundle is over its gzipped size budget");
  process.exit(1);
}

// Workers static assets (wrangler.toml [assets], dist/dashboard): each file at most 25 MiB.
const ASSET_LIMIT_BYTES = 25 * 1024 * 1024;
const assetsDir = new URL("../dist/dashboard/", import.meta.url).pathname;
const tooLarge = [];
for (const file of readdirSync(assetsDir, { recursive: true })) {
  const size = statSync(join(assetsDir, file)).size;
  if (statSync(join(assetsDir, file)).isFile() && size > ASSET_LIMIT_BYTES) tooLarge.push(`${file} (${mb(size)} MiB)`);
}
console.log(
  `dashboard assets: largest file within ${mb(ASSET_LIMIT_BYTES)} MiB: ${tooLarge.length === 0 ? "yes" : "no"}`,
);
if (tooLarge.length > 0) {
  console.error(`static assets over the 25 MiB limit of one Workers asset: ${tooLarge.join(", ")}`);
  process.exit(1);
}
