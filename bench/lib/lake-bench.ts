// For bench/explorer.mjs: hourly Parquet objects of synthetic events, written by DuckTail's own encoder (EventBatch,
// encodeParquet) with the catalog's record of each (describeFile): the explorer benchmark builds a
// lake of a million events from them without ingesting them one request at a time.
// Bundled for Node by bench/explorer.mjs (esbuild); parquet-wasm is initialized from its bytes.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { initSync } from "parquet-wasm/esm";
import { EventBatch } from "../../src/columns/batch";
import { encodeParquet } from "../../src/columns/parquet";
import { type DataFileInfo, describeFile } from "../../src/columns/stats";
import type { StoredEvent } from "../../src/protocol/events";
import { objectKey } from "../../src/sinks/r2-parquet";

initSync({ module: readFileSync(createRequire(import.meta.url).resolve("parquet-wasm/esm/parquet_wasm_bg.wasm")) });

const TYPES = ["pageview", "pageview", "pageview", "pageview", "click", "click", "signup", "error"];
const SOURCES = ["web", "web", "api", "ios"];
const COUNTRIES = ["DE", "US", "FR", "JP", "BR", null];

/** One hour's object: `rows` events received evenly over it, as flush `seq` of one replica writes them. */
export function hourObject(
  tenant: string,
  hour: number,
  rows: number,
  seq: number,
): { key: string; body: Uint8Array; info: DataFileInfo } {
  const replica = `${tenant}-0`;
  const events: StoredEvent[] = new Array(rows);
  for (let i = 0; i < rows; i++) {
    const n = seq * rows + i;
    const receivedAt = hour + Math.floor((i * 3_600_000) / rows);
    events[i] = {
      id: `e${n.toString(36)}-${(n * 2654435761) % 1e9}`,
      tenant,
      ts: receivedAt - (n % 500),
      receivedAt,
      source: SOURCES[n % SOURCES.length] as string,
      type: TYPES[(n * 7) % TYPES.length] as string,
      importance: n % 50 === 0 ? "high" : "normal",
      userId: n % 3 === 0 ? null : `u${n % 20_000}`,
      anonymousId: `a${n % 50_000}`,
      sessionId: `s${Math.floor(n / 12) % 100_000}`,
      data: JSON.stringify({ path: `/docs/${n % 300}`, ms: (n * 37) % 2000, ref: n % 7 === 0 ? "google" : null }),
      replica,
      seq: n,
      context: {
        country: COUNTRIES[n % COUNTRIES.length] ?? null,
        region: null,
        city: null,
        timezone: null,
        browser: n % 2 ? "Chrome" : "Firefox",
        browserVersion: null,
        os: n % 3 ? "Linux" : "macOS",
        osVersion: null,
        deviceType: n % 4 ? "desktop" : "mobile",
        ip: null,
        bot: false,
      },
    };
  }
  const key = objectKey("events", tenant, hour, replica, seq);
  const batch = EventBatch.from(events);
  const body = encodeParquet(batch);
  return { key, body, info: describeFile(key, hour, body, batch.table()) };
}

// The reader `ducktail query` uses, for the benchmark's Node side.
export { nodeDuckDB } from "../../sdk/cli/duckdb";
export { loadEvents } from "../../sdk/lake/reader";
