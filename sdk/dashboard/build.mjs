// Builds the dashboard (sdk/dashboard) into dist/dashboard, the Worker's static assets:
// index.html, main.js + main.css (the shell), and one lazily loaded chunk per page.
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Where the build goes, relative to the project root (wrangler.toml [assets] directory). */
export const DASHBOARD_OUT = "dist/dashboard";

/**
 * Builds it with `esbuild` from the project at `root` into `out` (sdk/build.mjs builds into a
 * staging folder and swaps it in whole, so a running `wrangler dev` never sees it half built);
 * returns esbuild's metafile (which files each output imports statically, for the first-load size).
 */
export async function buildDashboard(esbuild, root, out = join(root, DASHBOARD_OUT)) {
  rmSync(out, { recursive: true, force: true }); // no stale chunks of an earlier build
  mkdirSync(out, { recursive: true });
  const result = await esbuild.build({
    entryPoints: ["sdk/dashboard/main.ts"],
    absWorkingDir: root,
    outdir: out,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    sourcemap: false,
    legalComments: "none",
    entryNames: "[name]",
    chunkNames: "chunks/[name]-[hash]",
    // The SDK's client imports `ws` only where there is no global WebSocket, never in a browser.
    external: ["ws"],
    metafile: true,
    logLevel: "warning",
  });
  copyFileSync(join(root, "sdk/dashboard/index.html"), join(out, "index.html"));
  writeFileSync(join(root, "dist/dashboard-meta.json"), JSON.stringify(result.metafile));
  return result.metafile;
}
