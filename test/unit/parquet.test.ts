import "../helpers/parquet-node";
import { describe, expect, it } from "vitest";
import { EventBatch } from "../../src/columns/batch";
import { encodeParquet } from "../../src/columns/parquet";
import type { StoredEvent } from "../../src/protocol/events";
import { readParquetFiles } from "../helpers/duckdb";
import { sampleEvents } from "../helpers/events";

describe("Parquet encoding", () => {
  it("round-trips every column of every event through DuckDB", async () => {
    const events = sampleEvents(2500);
    const rows = await readParquetFiles([encodeParquet(EventBatch.from(events))]);
    expect(rows).toHaveLength(events.length);
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const r = rows[i]!;
      expect(r.id).toBe(e.id);
      expect(r.tenant).toBe(e.tenant);
      expect((r.ts as Date).getTime()).toBe(e.ts);
      expect((r.received_at as Date).getTime()).toBe(e.receivedAt);
      expect(r.source).toBe(e.source);
      expect(r.type).toBe(e.type);
      expect(r.importance).toBe(e.importance);
      expect(r.user_id).toBe(e.userId);
      expect(r.anonymous_id).toBe(e.anonymousId);
      expect(r.session_id).toBe(e.sessionId);
      expect(r.data).toBe(e.data);
      expect(r.replica).toBe(e.replica);
      expect(Number(r.seq)).toBe(e.seq);
    }
  });

  it("writes ZSTD-compressed column chunks with the types of docs/ARCHITECTURE.md", async () => {
    const { query } = await import("../helpers/duckdb");
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const path = join(mkdtempSync(join(tmpdir(), "pq-")), "x.parquet");
    writeFileSync(path, encodeParquet(EventBatch.from(sampleEvents(100))));
    const meta = await query(`SELECT DISTINCT compression FROM parquet_metadata('${path}')`);
    expect(meta.map((m) => m.compression)).toEqual(["ZSTD"]);
    const types = await query(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${path}'))`);
    expect(Object.fromEntries(types.map((t) => [t.column_name, t.column_type]))).toMatchObject({
      ts: "TIMESTAMP",
      received_at: "TIMESTAMP",
      seq: "BIGINT",
      data: "VARCHAR",
    });
  });

  it("writes the context columns, and DuckDB reads them beside files without them (union_by_name)", async () => {
    const { query } = await import("../helpers/duckdb");
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const { encodeTable } = await import("../../src/columns/parquet");
    const [plain, located] = sampleEvents(2);
    const context = {
      country: "JP",
      region: "Tokyo",
      city: "東京",
      timezone: "Asia/Tokyo",
      browser: "Chrome",
      browserVersion: "131.0",
      os: "Android",
      osVersion: "14",
      deviceType: "mobile",
      bot: false,
      ip: "192.0.2.0",
    };
    const dir = mkdtempSync(join(tmpdir(), "pq-ctx-"));
    const now = EventBatch.from([{ ...(located as StoredEvent), context }]).table();
    writeFileSync(join(dir, "new.parquet"), encodeTable(now));
    // A file of the first release: its 13 columns only.
    const before = EventBatch.from([plain as StoredEvent]).table();
    writeFileSync(
      join(dir, "old.parquet"),
      encodeTable(before.select(before.schema.fields.slice(0, 13).map((f) => f.name))),
    );
    const rows = await query(
      `SELECT id, country, city, device_type, is_bot, ip FROM read_parquet('${dir}/*.parquet', union_by_name = true) ORDER BY country NULLS LAST`,
    );
    expect(rows).toEqual([
      { id: located?.id, country: "JP", city: "東京", device_type: "mobile", is_bot: false, ip: "192.0.2.0" },
      { id: plain?.id, country: null, city: null, device_type: null, is_bot: null, ip: null },
    ]);
  });
});
