// Builds what runs outside a Worker bundler into dist/ (run by `npm install` through `prepare`):
//   dist/client.js   `ducktail/client` for Node ≥ 20 and browsers (ESM)
//   dist/console.js  `ducktail/console` (ESM)
//   dist/cli.js      the `ducktail` command
//   dist/duck.js     the browser snippet SDK, minified, served by the Worker at GET /duck.js
//   dist/duck-source.js (+ .d.ts) the same snippet as a string module the Worker imports
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
mkdirSync(dist, { recursive: true });

const common = { bundle: true, format: "esm", target: "es2022", logLevel: "warning", absWorkingDir: root };

// TEMPORARY while the entries are written: skip missing ones.
import { existsSync } from "node:fs";

const only = (o) => (existsSync(join(root, o.entryPoints[0])) ? build(o) : console.warn(`skip ${o.entryPoints[0]}`));
await Promise.all([
  only({ ...common, entryPoints: ["sdk/index.ts"], outfile: "dist/client.js", platform: "neutral", external: ["ws"] }),
  only({
    ...common,
    entryPoints: ["sdk/console.ts"],
    outfile: "dist/console.js",
    platform: "neutral",
    external: ["ws"],
  }),
  only({
    ...common,
    entryPoints: ["sdk/cli/index.ts"],
    outfile: "dist/cli.js",
    platform: "node",
    external: ["ws", "@duckdb/duckdb-wasm"],
    banner: { js: "#!/usr/bin/env node" },
  }),
  only({
    ...common,
    entryPoints: ["sdk/browser/duck.ts"],
    outfile: "dist/duck.js",
    platform: "browser",
    format: "iife",
    target: "es2017",
    minify: true,
  }),
]);

const snippet = existsSync(join(dist, "duck.js")) ? readFileSync(join(dist, "duck.js"), "utf8") : "";
const _unused = () => readFileSync(join(dist, "duck.js"), "utf8");
writeFileSync(join(dist, "duck-source.js"), `export default ${JSON.stringify(snippet)};\n`);
writeFileSync(
  join(dist, "duck-source.d.ts"),
  "/** dist/duck.js as text, for GET /duck.js. */\ndeclare const source: string;\nexport default source;\n",
);
