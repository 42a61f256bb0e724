// The CI check on duck.js: its gzipped size budget, and that the string module the Worker serves
// (src/duck-js.ts, committed) is the build of sdk/browser/duck.ts as it stands.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";
import { describe, expect, it } from "vitest";
// @ts-expect-error plain .mjs build script without types
import { buildSnippet, snippetModule } from "../../sdk/build.mjs";
import duckJs from "../../src/duck-js";

/** 4 KB gzipped: every page that pastes the snippet downloads duck.js before its first event. */
const BUDGET_BYTES = 4096;

describe("duck.js", () => {
  it("stays within 4 KB gzipped", () => {
    const gzipped = gzipSync(duckJs, { level: 9 }).byteLength;
    console.log(`duck.js: ${duckJs.length} bytes minified, ${gzipped} bytes gzipped (budget ${BUDGET_BYTES})`);
    expect(gzipped).toBeLessThanOrEqual(BUDGET_BYTES);
  });

  it("is served as built from sdk/browser/duck.ts (src/duck-js.ts is not stale)", async () => {
    const built: string = await buildSnippet(esbuild);
    expect(duckJs, "run `node sdk/build.mjs` and commit src/duck-js.ts").toBe(built);
    expect(readFileSync(join(dirname(fileURLToPath(import.meta.url)), "../../src/duck-js.ts"), "utf8")).toBe(
      snippetModule(built),
    );
  });

  it("is one self-contained script: no imports, exports or Node globals", () => {
    expect(duckJs).toMatch(/^("use strict";)?\(\(\)=>\{/);
    expect(duckJs).not.toMatch(/\b(import|export)\s*[{*"']|require\(|process\.env/);
  });
});
