import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { DataFileInfo } from "../../src/columns/stats";
import type { CommitRequest } from "../../src/lake/catalog/catalog";
import { CommitQueue } from "../../src/lake/catalog/commit-queue";
import { EVENT_COLUMNS } from "../../src/lake/catalog/events-table";
import { DUCKLAKE_VERSION, parseDdl, SPEC_TABLES } from "../../src/lake/catalog/spec";
import { catalogTime, parseCatalogTime } from "../../src/lake/catalog/sql";
import { memoryCatalog } from "../helpers/node-catalog";

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
const H1 = Date.UTC(2026, 4, 17, 9);
const H2 = H1 + HOUR;

/** A flush object of `acme` as the catalog is told of it. */
function file(name: string, hour = H1, rows = 10): DataFileInfo {
  const iso = new Date(hour).toISOString();
  return {
    key: `events/tenant=acme/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/${name}.parquet`,
    hour,
    rows,
    bytes: rows * 100,
    footerBytes: 321,
    columns: [
      { column: "id", valueCount: rows, nullCount: 0, min: `${name}-a`, max: `${name}-z` },
      {
        column: "received_at",
        valueCount: rows,
        nullCount: 0,
        min: "2026-05-17 09:00:01",
        max: "2026-05-17 09:59:00.5",
      },
      { column: "seq", valueCount: rows, nullCount: 0, min: "9", max: "10" },
      { column: "user_id", valueCount: rows, nullCount: 2, min: "u1", max: "u9" },
    ],
  };
}

const flush = (replica: string, seq: number, ...files: DataFileInfo[]): CommitRequest => ({
  change: "insert",
  flush: { replica, seq },
  add: files,
});

function keys(files: { key: string }[]): string[] {
  return files.map((f) => f.key).sort();
}

describe("the lake catalog", () => {
  it("holds every table of the DuckLake 1.0 spec, and the events table from snapshot 1, partitioned by the hour of receipt", () => {
    const { db, catalog } = memoryCatalog();
    const tables = db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'ducklake_%' ORDER BY name`)
      .all()
      .map((r) => r.name);
    expect(tables).toEqual(SPEC_TABLES.map((t) => t.name).sort());
    expect(tables).toHaveLength(28);
    expect(DUCKLAKE_VERSION).toBe("1.0");
    const metadata = Object.fromEntries(
      db
        .prepare(`SELECT key, value FROM ducklake_metadata`)
        .all()
        .map((r) => [r.key, r.value]),
    );
    expect(metadata).toEqual({
      version: "1.0",
      created_by: "DuckTail test",
      data_path: "s3://ducktail-events/",
      encrypted: "false",
    });
    expect(catalog.latest()).toBe(1);
    expect(db.prepare(`SELECT table_id, table_name, path, begin_snapshot FROM ducklake_table`).all()).toEqual([
      { table_id: 1, table_name: "events", path: "tenant=acme/", begin_snapshot: 1 },
    ]);
    expect(db.prepare(`SELECT schema_name, path FROM ducklake_schema`).all()).toEqual([
      { schema_name: "main", path: "events/" },
    ]);
    const columns = db.prepare(`SELECT column_name, column_type FROM ducklake_column ORDER BY column_order`).all();
    expect(columns.map((c) => c.column_name)).toEqual(EVENT_COLUMNS.map((c) => c.name));
    expect(columns.slice(0, 4)).toEqual([
      { column_name: "id", column_type: "varchar" },
      { column_name: "tenant", column_type: "varchar" },
      { column_name: "ts", column_type: "timestamp" },
      { column_name: "received_at", column_type: "timestamp" },
    ]);
    expect(db.prepare(`SELECT partition_key_index, column_id, transform FROM ducklake_partition_column`).all()).toEqual(
      ["year", "month", "day", "hour"].map((transform, i) => ({ partition_key_index: i, column_id: 4, transform })),
    );
    expect(catalog.snapshots(10).snapshots.map((s) => s.changes)).toEqual([
      ['created_table:"main"."events"'],
      ['created_schema:"main"'],
    ]);
  });

  it("commits a flush's files as one snapshot with their counts, sizes, footers, column stats and partition", () => {
    const { db, catalog } = memoryCatalog();
    const [result] = catalog.commit([flush("acme-0", 7, file("acme-0-7", H1), file("acme-0-7b", H2, 5))], T0 + 1000);
    expect(result).toEqual({ ok: true, snapshot: 2, duplicate: false });
    expect(keys(catalog.files(2))).toEqual(keys([file("acme-0-7", H1), file("acme-0-7b", H2)]));
    expect(catalog.files(1)).toEqual([]); // not visible before its commit
    const rows = db
      .prepare(
        `SELECT data_file_id, path, record_count, file_size_bytes, footer_size, row_id_start, begin_snapshot, end_snapshot, mapping_id, partition_id FROM ducklake_data_file ORDER BY data_file_id`,
      )
      .all();
    expect(rows).toEqual([
      {
        data_file_id: 0,
        path: "dt=2026-05-17/hour=09/acme-0-7.parquet",
        record_count: 10,
        file_size_bytes: 1000,
        footer_size: 321,
        row_id_start: 0,
        begin_snapshot: 2,
        end_snapshot: null,
        mapping_id: 3,
        partition_id: 2,
      },
      expect.objectContaining({ data_file_id: 1, row_id_start: 10, record_count: 5 }),
    ]);
    expect(
      db
        .prepare(
          `SELECT partition_value FROM ducklake_file_partition_value WHERE data_file_id = 1 ORDER BY partition_key_index`,
        )
        .all()
        .map((r) => r.partition_value),
    ).toEqual(["2026", "5", "17", "10"]);
    expect(
      db
        .prepare(
          `SELECT column_id, value_count, null_count, min_value, max_value FROM ducklake_file_column_stats WHERE data_file_id = 0 ORDER BY column_id`,
        )
        .all(),
    ).toEqual([
      { column_id: 1, value_count: 10, null_count: 0, min_value: "acme-0-7-a", max_value: "acme-0-7-z" },
      {
        column_id: 4,
        value_count: 10,
        null_count: 0,
        min_value: "2026-05-17 09:00:01",
        max_value: "2026-05-17 09:59:00.5",
      },
      { column_id: 8, value_count: 10, null_count: 2, min_value: "u1", max_value: "u9" },
      { column_id: 13, value_count: 10, null_count: 0, min_value: "9", max_value: "10" },
    ]);
    expect(db.prepare(`SELECT record_count, next_row_id, file_size_bytes FROM ducklake_table_stats`).all()).toEqual([
      { record_count: 15, next_row_id: 15, file_size_bytes: 1500 },
    ]);
    // seq is compared as a number: 9 < 10 although "10" < "9" as text.
    expect(
      db
        .prepare(`SELECT min_value, max_value, contains_null FROM ducklake_table_column_stats WHERE column_id = 13`)
        .all(),
    ).toEqual([{ min_value: "9", max_value: "10", contains_null: 0 }]);
    expect(
      db.prepare(`SELECT snapshot_id, next_file_id, schema_version FROM ducklake_snapshot WHERE snapshot_id = 2`).all(),
    ).toEqual([{ snapshot_id: 2, next_file_id: 2, schema_version: 1 }]);
  });

  it("commits a flush once however often its write is retried, and never a file twice", () => {
    const { catalog } = memoryCatalog();
    const first = catalog.commit([flush("acme-0", 3, file("a"))], T0)[0];
    const again = catalog.commit([flush("acme-0", 3, file("a"))], T0)[0];
    expect(first).toEqual({ ok: true, snapshot: 2, duplicate: false });
    expect(again).toEqual({ ok: true, snapshot: 2, duplicate: true });
    // The same flush twice in one round: one commit, both answered with its snapshot.
    const round = catalog.commit([flush("acme-0", 4, file("b")), flush("acme-0", 4, file("b"))], T0);
    expect(round).toEqual([
      { ok: true, snapshot: 3, duplicate: false },
      { ok: true, snapshot: 3, duplicate: true },
    ]);
    // An earlier flush never committed (a dead letter replayed under its seq) is committed.
    const replayed = catalog.commit([flush("acme-0", 2, file("old"))], T0)[0];
    expect(replayed).toEqual({ ok: true, snapshot: 4, duplicate: false });
    // A file committed before, by any request, is not added again.
    const dup = catalog.commit([{ change: "insert", add: [file("a")] }], T0)[0];
    expect(dup).toEqual({ ok: true, snapshot: 4, duplicate: true });
    expect(catalog.latest()).toBe(4);
    expect(keys(catalog.files(4))).toEqual(keys([file("a"), file("b"), file("old")]));
  });

  it("shares one snapshot among the flushes of a round and answers each with it", () => {
    const { catalog } = memoryCatalog();
    const requests = Array.from({ length: 128 }, (_, n) => flush(`acme-${n}`, 1, file(`acme-${n}-1`)));
    const results = catalog.commit(requests, T0);
    expect(new Set(results.map((r) => (r.ok ? r.snapshot : -1)))).toEqual(new Set([2]));
    expect(catalog.files(2)).toHaveLength(128);
    const [snapshot] = catalog.snapshots(1).snapshots;
    expect(snapshot).toMatchObject({ id: 2, changes: ["inserted_into_table:1"], rowsAdded: 1280, filesAdded: 128 });
    expect(snapshot?.message).toContain("flush acme-127#1");
  });

  it("commits a compaction as one snapshot; a reader at the snapshot before still gets the inputs", () => {
    const { db, catalog } = memoryCatalog();
    catalog.commit([flush("acme-0", 1, file("a", H1, 10))], T0);
    catalog.commit([flush("acme-1", 1, file("b", H1, 10)), flush("acme-2", 1, file("late", H2, 3))], T0);
    const before = catalog.latest();
    const [done] = catalog.commit(
      [{ change: "compact", remove: [file("a").key, file("b").key], add: [file("compacted-x", H1, 18)] }],
      T0 + 1,
    );
    expect(done).toEqual({ ok: true, snapshot: before + 1, duplicate: false });
    expect(keys(catalog.files(before))).toEqual(keys([file("a"), file("b"), file("late", H2)]));
    expect(keys(catalog.files(before + 1))).toEqual(keys([file("compacted-x"), file("late", H2)]));
    expect(catalog.snapshots(1).snapshots[0]).toMatchObject({
      changes: ["compacted_table:1"],
      rowsAdded: 18,
      rowsRemoved: 20,
      filesAdded: 1,
      filesRemoved: 2,
    });
    // Only files of the hour asked for.
    expect(keys(catalog.files(before + 1, H2, H2 + HOUR))).toEqual([file("late", H2).key]);
    expect(db.prepare(`SELECT record_count FROM ducklake_table_stats`).get()).toEqual({ record_count: 21 });
  });

  it("refuses a compaction whose inputs left the table, alone: the round's other commits go through", () => {
    const { catalog } = memoryCatalog();
    catalog.commit([flush("acme-0", 1, file("a"), file("b"))], T0);
    catalog.commit([{ change: "compact", remove: [file("a").key, file("b").key], add: [file("c1")] }], T0);
    const results = catalog.commit(
      [{ change: "compact", remove: [file("a").key, file("b").key], add: [file("c2")] }, flush("acme-0", 2, file("d"))],
      T0,
    );
    expect(results[0]).toEqual({ ok: false, conflict: `${file("a").key} is not part of the table` });
    expect(results[1]).toMatchObject({ ok: true, duplicate: false });
    expect(keys(catalog.files(catalog.latest()))).toEqual(keys([file("c1"), file("d")]));
  });

  it("reads a snapshot by id or by time, and says when there is none", () => {
    const { catalog } = memoryCatalog();
    catalog.commit([flush("acme-0", 1, file("a"))], T0 + 10_000);
    catalog.commit([flush("acme-0", 2, file("b"))], T0 + 20_000);
    expect(catalog.resolve({})).toBe(3);
    expect(catalog.resolve({ snapshot: 2 })).toBe(2);
    expect(catalog.resolve({ asOf: T0 + 15_000 })).toBe(2);
    expect(catalog.resolve({ asOf: T0 + 20_000 })).toBe(3);
    expect(() => catalog.resolve({ snapshot: 9 })).toThrow(/no snapshot 9/);
    expect(() => catalog.resolve({ asOf: T0 - 1 })).toThrow(/no snapshot at or before/);
    expect(parseCatalogTime(catalogTime(T0 + 20_000))).toBe(T0 + 20_000);
    expect(parseCatalogTime("2026-01-01 01:00:00.5+01")).toBe(T0 + 500);
  });

  it("lists snapshots newest first, page by page", () => {
    const { catalog } = memoryCatalog();
    for (let seq = 1; seq <= 5; seq++) catalog.commit([flush("acme-0", seq, file(`f${seq}`))], T0 + seq);
    const first = catalog.snapshots(3);
    expect(first.snapshots.map((s) => s.id)).toEqual([6, 5, 4]);
    expect(first.snapshots[0]).toMatchObject({
      time: T0 + 5,
      message: "flush acme-0#5",
      rowsAdded: 10,
      rowsRemoved: 0,
    });
    const second = catalog.snapshots(3, first.next ?? 0);
    expect(second.snapshots.map((s) => s.id)).toEqual([3, 2, 1]);
    expect(catalog.snapshots(3, second.next ?? 0)).toEqual({
      snapshots: [expect.objectContaining({ id: 0 })],
      next: null,
    });
  });

  it("lists a data file with its delete file from the snapshot that added it, and counts the rows removed", () => {
    const { catalog } = memoryCatalog();
    catalog.commit([flush("acme-0", 1, file("a", H1, 10))], T0);
    const del = { dataKey: file("a").key, key: file("a-del").key, count: 3, bytes: 200, footerBytes: 50 };
    const [r] = catalog.commit([{ change: "delete", deletes: [del] }], T0);
    expect(r).toEqual({ ok: true, snapshot: 3, duplicate: false });
    expect(catalog.files(2)[0]?.deletes).toBeNull();
    expect(catalog.files(3)[0]?.deletes).toEqual({ key: del.key, count: 3 });
    expect(catalog.snapshots(1).snapshots[0]).toMatchObject({ changes: ["deleted_from_table:1"], rowsRemoved: 3 });
  });

  it("expires old snapshots and schedules the files no remaining snapshot sees; knows every key it holds", () => {
    const { catalog } = memoryCatalog();
    catalog.commit([flush("acme-0", 1, file("a"), file("b"))], T0 + 1000);
    catalog.commit([{ change: "compact", remove: [file("a").key, file("b").key], add: [file("c")] }], T0 + 2000);
    catalog.commit([flush("acme-0", 2, file("d"))], T0 + 3000);
    expect(catalog.unknownKeys([file("a").key, file("c").key, file("orphan").key])).toEqual([file("orphan").key]);

    // Snapshots up to the compaction's predecessor expire: no one can read a or b any more.
    expect(catalog.expire(T0 + 2000, T0 + 5000)).toEqual([0, 1, 2]);
    expect(catalog.snapshots(10).snapshots.map((s) => s.id)).toEqual([4, 3]);
    expect(catalog.scheduled(T0 + 5000)).toEqual([file("a").key, file("b").key]);
    expect(catalog.scheduled(T0 + 4999)).toEqual([]);
    expect(() => catalog.resolve({ snapshot: 2 })).toThrow(/no snapshot 2/);
    expect(keys(catalog.files(3))).toEqual([file("c").key]);
    // Still known (scheduled) until the cleanup deleted them and the catalog forgot them.
    expect(catalog.unknownKeys([file("a").key])).toEqual([]);
    catalog.forget([file("a").key, file("b").key]);
    expect(catalog.scheduled(T0 + 5000)).toEqual([]);
    expect(catalog.unknownKeys([file("a").key])).toEqual([file("a").key]);
    // The latest snapshot never expires.
    expect(catalog.expire(T0 + 10_000, T0 + 10_000)).toEqual([3]);
    expect(catalog.latest()).toBe(4);
  });

  it("refuses files outside the tenant's folder", () => {
    const { catalog } = memoryCatalog();
    const other = { ...file("x"), key: "events/tenant=other/dt=2026-05-17/hour=09/x.parquet" };
    expect(() => catalog.commit([flush("acme-0", 1, other)], T0)).toThrow(/is not under events\/tenant=acme\//);
    expect(catalog.latest()).toBe(1);
  });
});

describe("the spec's DDL", () => {
  it("is read from the file kept in the repository, with its version and source in its header", () => {
    const text = readFileSync(join(import.meta.dirname, "../../src/lake/catalog/ducklake-1.0.sql"), "utf8");
    expect(text).toMatch(/specification version 1\.0/);
    expect(text).toMatch(/duckdb\/ducklake .*v1\.5-variegata/);
    expect(text).toMatch(/commit 5ef9e03d58286cf4bc532c62a69ae3c51fbb8f51/);
    expect(parseDdl(text)).toEqual(SPEC_TABLES);
    expect(SPEC_TABLES.find((t) => t.name === "ducklake_data_file")?.columns.map((c) => c.name)).toEqual([
      "data_file_id",
      "table_id",
      "begin_snapshot",
      "end_snapshot",
      "file_order",
      "path",
      "path_is_relative",
      "file_format",
      "record_count",
      "file_size_bytes",
      "footer_size",
      "row_id_start",
      "partition_id",
      "encryption_key",
      "mapping_id",
      "partial_max",
    ]);
  });
});

describe("group commit", () => {
  it("commits a lone request at once, and the requests of a burst together, answering each caller", async () => {
    const rounds: number[][] = [];
    const queue = new CommitQueue<number, number>((batch) => {
      rounds.push(batch);
      return batch.map((n) => n * 2);
    }, 5);
    expect(await queue.submit(-1)).toBe(-2);
    expect(rounds).toEqual([[-1]]);
    // 128 within the window of that round: one more round for all of them.
    const answers = await Promise.all(Array.from({ length: 128 }, (_, i) => queue.submit(i)));
    expect(answers).toEqual(Array.from({ length: 128 }, (_, i) => i * 2));
    expect(rounds).toHaveLength(2);
    expect(rounds[1]).toHaveLength(128);
    expect(queue).toMatchObject({ rounds: 2, requests: 129 });
  });

  it("waits for the window only after a round, by its clock", async () => {
    let now = 0;
    const rounds: number[][] = [];
    const queue = new CommitQueue<number, number>(
      (batch) => {
        rounds.push(batch);
        return batch;
      },
      5,
      512,
      () => now,
    );
    await queue.submit(1);
    now = 10; // idle again
    await queue.submit(2);
    expect(rounds).toEqual([[1], [2]]);
  });

  it("runs a full batch without waiting", async () => {
    const rounds: number[][] = [];
    const queue = new CommitQueue<number, number>(
      (batch) => {
        rounds.push(batch);
        return batch;
      },
      60_000,
      3,
      () => 0,
    );
    await queue.submit(0); // idle at 0: at once
    const burst = [1, 2, 3].map((n) => queue.submit(n)); // the third fills the batch
    expect(await Promise.all(burst)).toEqual([1, 2, 3]);
    expect(rounds).toEqual([[0], [1, 2, 3]]);
  });

  it("fails every request of a round that throws, and the next round runs", async () => {
    let fail = true;
    const queue = new CommitQueue<number, number>((batch) => {
      if (fail) throw new Error("disk full");
      return batch;
    }, 1);
    await expect(queue.submit(0)).rejects.toThrow("disk full");
    const failed = await Promise.allSettled([queue.submit(1), queue.submit(2)]);
    expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    fail = false;
    expect(await queue.submit(3)).toBe(3);
  });
});
