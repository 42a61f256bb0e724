import "../helpers/parquet-node";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import {
  Field,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  TimestampMillisecond,
  tableFromArrays,
  tableToIPC,
  Utf8,
  vectorFromArray,
} from "apache-arrow";
import { Compression, Table as WasmTable, WriterPropertiesBuilder, writeParquet } from "parquet-wasm/esm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeDuckDB } from "../../sdk/cli/duckdb";
import { referencedColumns } from "../../sdk/lake/columns";
import { footerLength, rowGroupBounds } from "../../sdk/lake/footer";
import { type LakeSource, loadEvents, type ParquetReader } from "../../sdk/lake/reader";
import { EVENT_COLUMN_NAMES, EVENT_TABLE_COLUMNS } from "../../sdk/lake/schema";
import { EVENT_SCHEMA } from "../../src/columns/columns";
import { contentRange, requestedRange } from "../../src/edge/byte-ranges";
import type { LakeFileList } from "../../src/protocol/lake";

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1, 10);
const ROWS = 4000;
const GROUP = 1000;

/** A Parquet object of ROWS events, received_at ascending over one hour, GROUP rows per row group. */
function sampleParquet(): Uint8Array {
  const receivedAt = Array.from({ length: ROWS }, (_, i) => T0 + Math.floor((i * HOUR) / ROWS));
  const type = Array.from({ length: ROWS }, (_, i) => (i % 2 ? "view" : "click"));
  const data = Array.from({ length: ROWS }, (_, i) =>
    JSON.stringify({
      i,
      noise: Array.from({ length: 8 }, (_, k) => ((i * 2654435761 + k * 40503) % 1e9).toString(36)),
    }),
  );
  const schema = new Schema([
    new Field("received_at", new TimestampMillisecond(), false),
    new Field("type", new Utf8(), false),
    new Field("data", new Utf8(), false),
  ]);
  const columns = [
    makeData({ type: new TimestampMillisecond(), data: BigInt64Array.from(receivedAt, BigInt) }),
    vectorFromArray(type, new Utf8()).data[0],
    vectorFromArray(data, new Utf8()).data[0],
  ];
  const struct = makeData({ type: new Struct(schema.fields), length: ROWS, children: columns as never });
  const table = new Table([new RecordBatch(schema, struct)]);
  const props = new WriterPropertiesBuilder().setCompression(Compression.ZSTD).setMaxRowGroupSize(GROUP).build();
  return writeParquet(WasmTable.fromIPCStream(tableToIPC(table, "stream")), props);
}

describe("the CLI's DuckDB", () => {
  it("refuses at once to load an extension or read a local file, instead of waiting on the network", async () => {
    const { query } = await nodeDuckDB();
    await expect(query("LOAD json")).rejects.toThrow(/disabled/);
    await expect(query("SELECT * FROM read_csv('/etc/hostname')")).rejects.toThrow(/disabled/);
    expect((await query("SELECT 41 + 1 AS n")).rows).toEqual([{ n: 42 }]);
  });

  it("reports a SQL error with its context once", async () => {
    const { query } = await nodeDuckDB();
    const message = await query("SELEC nonsense").then(
      () => "",
      (err: Error) => err.message,
    );
    expect(message).toMatch(/^Parser Error: syntax error at or near "SELEC"/);
    expect(message.split("LINE 1:")).toHaveLength(2);
  });
});

describe("the lake reader's pure parts", () => {
  it("reads the columns a SQL text names, every column for *, and words in strings too", () => {
    expect(referencedColumns("SELECT type, count(*) FROM events WHERE source = 'x' GROUP BY 1")).toEqual([
      "source",
      "type",
    ]);
    expect(referencedColumns("SELECT * FROM events")).toEqual(EVENT_COLUMN_NAMES);
    expect(referencedColumns("SELECT e.* FROM events e")).toEqual(EVENT_COLUMN_NAMES);
    expect(referencedColumns("SELECT COLUMNS('^d') FROM events")).toEqual(EVENT_COLUMN_NAMES);
    expect(referencedColumns("DESCRIBE events")).toEqual([]);
    expect(
      referencedColumns(`SELECT column_name FROM (DESCRIBE events) WHERE column_name IN ('country', "IS_BOT")`),
    ).toEqual(["country", "is_bot"]);
  });

  it("builds the events table with the lake's columns, in its order", () => {
    expect(EVENT_TABLE_COLUMNS.map(([name]) => name)).toEqual(EVENT_SCHEMA.fields.map((f) => f.name));
    const types = Object.fromEntries(EVENT_TABLE_COLUMNS);
    expect([types.ts, types.received_at, types.seq, types.is_bot, types.country]).toEqual([
      "TIMESTAMP",
      "TIMESTAMP",
      "BIGINT",
      "BOOLEAN",
      "VARCHAR",
    ]);
  });

  it("reads each row group's rows and received_at bounds from the footer", () => {
    const bytes = sampleParquet();
    const length = footerLength(bytes.subarray(bytes.length - 8));
    const groups = rowGroupBounds(bytes.subarray(bytes.length - 8 - length, bytes.length - 8), "received_at");
    expect(groups).toHaveLength(ROWS / GROUP);
    groups.forEach((g, k) => {
      expect(g.rows).toBe(GROUP);
      expect(g.min).toBe(T0 + Math.floor((k * GROUP * HOUR) / ROWS));
      expect(g.max).toBe(T0 + Math.floor((((k + 1) * GROUP - 1) * HOUR) / ROWS));
    });
    expect(rowGroupBounds(bytes.subarray(bytes.length - 8 - length, bytes.length - 8), "nope")[0]).toEqual({
      rows: GROUP,
      min: null,
      max: null,
    });
    expect(() => footerLength(new Uint8Array(8))).toThrow(/not a Parquet object/);
  });

  it("parses Range headers: suffixes, open ends, several ranges coalesced, and what cannot be satisfied", () => {
    expect(requestedRange(null, 100)).toBeNull();
    expect(requestedRange("items=0-1", 100)).toBeNull();
    expect(requestedRange("bytes=0-9", 100)).toEqual({ offset: 0, length: 10 });
    expect(requestedRange("bytes=-10", 100)).toEqual({ offset: 90, length: 10 });
    expect(requestedRange("bytes=-500", 100)).toEqual({ offset: 0, length: 100 });
    expect(requestedRange("bytes=95-", 100)).toEqual({ offset: 95, length: 5 });
    expect(requestedRange("bytes=90-200", 100)).toEqual({ offset: 90, length: 10 });
    expect(requestedRange("bytes=50-59, 0-9, 200-300", 100)).toEqual({ offset: 0, length: 60 });
    for (const bad of ["bytes=100-", "bytes=5-1", "bytes=-0", "bytes=x-1", "bytes=", "garbage"]) {
      expect(requestedRange(bad, 100), bad).toBe("unsatisfiable");
    }
    expect(contentRange({ offset: 90, length: 10 }, 100)).toBe("bytes 90-99/100");
    expect(contentRange("unsatisfiable", 100)).toBe("bytes */100");
  });
});

/** A positional delete file (DuckLake's: `file_path`, `pos`) removing these rows of `dataKey`. */
function deleteParquet(dataKey: string, positions: number[]): Uint8Array {
  const table = tableFromArrays({
    file_path: positions.map(() => dataKey),
    pos: BigInt64Array.from(positions, BigInt),
  });
  return writeParquet(WasmTable.fromIPCStream(tableToIPC(table, "stream")));
}

describe("loadEvents over an object served by Range", () => {
  const bytes = sampleParquet();
  const key = "events/tenant=t/dt=2026-01-01/hour=10/t-0-0.parquet";
  const deletesKey = "events/tenant=t/dt=2026-01-01/hour=10/t-0-0-delete.parquet";
  // Rows of row groups 0, 2 (twice: the third quarter) and 3.
  const deleted = [5, 2100, 2500, 3999];
  const objects = new Map([
    [key, bytes],
    [deletesKey, deleteParquet(key, deleted)],
  ]);
  let server: Server;
  let base = "";
  const ranges: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const object = objects.get(new URL(req.url ?? "", "http://x").searchParams.get("object") ?? "");
      if (!object) {
        res.writeHead(404, { "content-type": "application/json" });
        res.end('{"error":{"code":"not_found","message":"no such object"}}');
        return;
      }
      const range = requestedRange(req.headers.range ?? null, object.length);
      ranges.push(req.headers.range ?? "");
      if (range === "unsatisfiable" || range === null) {
        res.writeHead(range === null ? 200 : 416).end(range === null ? object : undefined);
        return;
      }
      res.writeHead(206, { "content-range": contentRange(range, object.length) });
      res.end(object.subarray(range.offset, range.offset + range.length));
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  function source(withDeletes = false, objectKey = key): LakeSource {
    const deletes = withDeletes ? { key: deletesKey, count: deleted.length } : null;
    const list: LakeFileList = {
      snapshot: 3,
      live: true,
      from: T0,
      to: T0 + HOUR,
      files: [{ key: objectKey, bytes: bytes.length, rows: ROWS, from: T0, to: T0 + HOUR, deletes }],
      bytes: bytes.length,
      rows: ROWS,
    };
    return { base, files: async () => list, buffered: async () => [] };
  }
  const parquet = createRequire(import.meta.url)("parquet-wasm/node") as ParquetReader;

  it("fetches only the row groups of the time range and only the named columns", async () => {
    const duck = await nodeDuckDB();
    ranges.length = 0;
    // The third quarter of the hour: the third row group.
    const range = { from: T0 + HOUR / 2, to: T0 + (3 * HOUR) / 4 };
    const stats = await loadEvents({
      sql: "SELECT type, count(*) AS n FROM events GROUP BY type",
      range,
      source: source(),
      parquet,
      db: duck.db,
    });
    expect(stats).toMatchObject({ rowGroups: 4, rowGroupsRead: 1, lakeRows: ROWS / 4, bufferedRows: 0 });
    expect(stats.columns).toEqual(["received_at", "type"]);
    expect(stats.bytesRead).toBeLessThan(bytes.length / 3);
    expect(bytes.length).toBeGreaterThan(100_000);
    const result = await duck.query("SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY type");
    expect(result.rows).toEqual([
      { type: "click", n: ROWS / 8 },
      { type: "view", n: ROWS / 8 },
    ]);
    expect(ranges.every((r) => r.startsWith("bytes="))).toBe(true);
  });

  it("reads every row group for a range that covers the object, and filters rows at the range's edges", async () => {
    const duck = await nodeDuckDB();
    const range = { from: T0 + 1, to: T0 + HOUR };
    const stats = await loadEvents({
      sql: "SELECT count(*) FROM events",
      range,
      source: source(),
      parquet,
      db: duck.db,
    });
    const atT0 = Array.from({ length: ROWS }, (_, i) => Math.floor((i * HOUR) / ROWS)).filter((d) => d === 0).length;
    expect(stats).toMatchObject({ rowGroupsRead: 4, rows: ROWS - atT0 });
  });

  it("leaves out the rows a delete file lists, counting positions over the skipped row groups", async () => {
    const whole = await loadEvents({
      sql: "SELECT count(*) FROM events",
      range: { from: T0, to: T0 + HOUR },
      source: source(true),
      parquet,
      db: (await nodeDuckDB()).db,
    });
    expect(whole.rows).toBe(ROWS - deleted.length);
    const duck = await nodeDuckDB();
    const third = await loadEvents({
      sql: "SELECT data FROM events",
      range: { from: T0 + HOUR / 2, to: T0 + (3 * HOUR) / 4 },
      source: source(true),
      parquet,
      db: duck.db,
    });
    expect(third).toMatchObject({ rowGroupsRead: 1, rows: ROWS / 4 - 2 });
    const left = await duck.query(
      "SELECT count(*) AS n FROM events WHERE data LIKE '{\"i\":2100,%' OR data LIKE '{\"i\":2500,%'",
    );
    expect(left.rows).toEqual([{ n: 0 }]);
  });

  it("fails with the server's message when an object cannot be read, instead of hanging", async () => {
    const load = loadEvents({
      sql: "SELECT count(*) FROM events",
      range: { from: T0, to: T0 + HOUR },
      source: source(false, "events/tenant=t/dt=2026-01-01/hour=10/gone.parquet"),
      parquet,
      db: (await nodeDuckDB()).db,
    });
    await expect(load).rejects.toThrow(/404 not_found no such object/);
  });
});
