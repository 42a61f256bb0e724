import { describe, expect, it } from "vitest";
import { tenant } from "./harness";

describe("gzipped dashboard assets (DuckDB-wasm, parquet-wasm)", () => {
  it("answers <name>.gz as <name>'s type with Content-Encoding: gzip and the stored bytes", async () => {
    const t = tenant("gzip-asset", "read");
    const res = await t.fetch("/dashboard/wasm/parquet_wasm_bg.wasm.gz", {}, "");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/wasm");
    expect(res.headers.get("content-encoding")).toBe("gzip");
    const stored = new Uint8Array(await res.arrayBuffer());
    expect([...stored.subarray(0, 2)]).toEqual([0x1f, 0x8b]); // gzip, passed through as stored
    const inflated = new Response(new Blob([stored]).stream().pipeThrough(new DecompressionStream("gzip")));
    expect([...new Uint8Array(await inflated.arrayBuffer()).subarray(0, 4)]).toEqual([0x00, 0x61, 0x73, 0x6d]); // \0asm
    const script = await t.fetch("/dashboard/wasm/duckdb-browser-eh.worker.js.gz", { method: "HEAD" }, "");
    expect(script.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect((await t.fetch("/dashboard/wasm/nope.wasm.gz", {}, "")).status).toBe(404);
  });
});
