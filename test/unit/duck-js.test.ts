import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import duckJs from "../../src/duck-js";

describe("duck.js", () => {
  it("stays within 6 KB gzipped (the budget; 4 KB is the aim)", () => {
    const gz = gzipSync(duckJs, { level: 9 }).byteLength;
    console.log(`duck.js: ${duckJs.length} bytes, ${gz} gzipped`);
    expect(gz).toBeLessThanOrEqual(6 * 1024);
  });

  it("is one self-contained script: no imports, no exports, no node globals", () => {
    expect(duckJs).toMatch(/^("use strict";)?\(\(\)=>\{/);
    expect(duckJs).not.toMatch(/\b(import|export)\s*[{*"']|require\(|process\.env/);
  });
});
