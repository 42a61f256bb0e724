import "../helpers/parquet-node";
import { describe, expect, it } from "vitest";
import { EventBatch } from "../../src/sinks/batch";
import { encodeParquet } from "../../src/sinks/parquet";
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

  it("writes ZSTD-compressed column chunks with the DESIGN.md types", async () => {
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
});
