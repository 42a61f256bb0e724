import "../helpers/parquet-node";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { Table } from "apache-arrow";
import { afterAll, describe, expect, it } from "vitest";
import { writeCatalog } from "../../sdk/cli/lake";
import { EventBatch } from "../../src/columns/batch";
import { encodeParquet, encodeTable } from "../../src/columns/parquet";
import { describeFile, parquetFooterSize } from "../../src/columns/stats";
import { parseDdl, sqliteType } from "../../src/lake/catalog/spec";
import { rollupKey } from "../../src/lake/keys";
import { mergeRollups, rollupEvents, rollupTable } from "../../src/lake/rollups";
import type { StoredEvent } from "../../src/protocol/events";
import { objectKey } from "../../src/sinks/r2-parquet";
import { query } from "../helpers/duckdb";
import { sampleEvents } from "../helpers/events";
import { memoryCatalog } from "../helpers/node-catalog";

const HOUR = 3_600_000;
const H1 = Date.UTC(2026, 4, 17, 9);
const H2 = H1 + HOUR;
const SPEC_FILE = join(import.meta.dirname, "../../src/lake/catalog/ducklake-1.0.sql");

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "ducktail-lake-export-"));
  dirs.push(dir);
  return dir;
}

/** Events of tenant acme received in `hour`, ids `<prefix>0..n-1`. */
function rows(prefix: string, n: number, hour: number, replica = "acme-0"): StoredEvent[] {
  return sampleEvents(n).map((e, i) => ({ ...e, id: `${prefix}${i}`, receivedAt: hour + i * 1000, replica, seq: i }));
}

describe("ducktail lake export", () => {
  it("writes a SQLite database whose tables and columns are exactly the spec's DDL, as DuckDB creates it in SQLite", async () => {
    const { catalog } = memoryCatalog();
    const key = objectKey("events", "acme", H1, "acme-0", 0);
    const batch = EventBatch.from(rows("e", 3, H1));
    const body = encodeParquet(batch);
    catalog.commit([{ change: "insert", add: [describeFile(key, H1, body, batch.table())] }], H1 + 1);
    const file = join(tempDir(), "lake.sqlite");
    const written = await writeCatalog(file, catalog.exportCatalog("s3://my-bucket/"));
    expect(written).toBeGreaterThan(0);

    const spec = parseDdl(readFileSync(SPEC_FILE, "utf8"));
    expect(spec).toHaveLength(28);
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const tables = db
        .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
        .all()
        .map((r) => r.name);
      expect(tables).toEqual(spec.map((t) => t.name).sort());
      for (const table of spec) {
        const columns = db.prepare(`SELECT name, type, "notnull", pk FROM pragma_table_info(?)`).all(table.name);
        expect(columns, table.name).toEqual(
          table.columns.map((c) => ({
            name: c.name,
            type: sqliteType(c.type),
            notnull: c.notNull ? 1 : 0,
            pk: c.primaryKey ? 1 : 0,
          })),
        );
      }
      const metadata = db.prepare(`SELECT key, value FROM ducklake_metadata ORDER BY key`).all();
      expect(metadata).toEqual([
        { key: "created_by", value: "DuckTail test" },
        { key: "data_path", value: "s3://my-bucket/" },
        { key: "encrypted", value: "false" },
        { key: "version", value: "1.0" },
      ]);
      expect(db.prepare(`SELECT path, record_count, footer_size FROM ducklake_data_file`).all()).toEqual([
        { path: "dt=2026-05-17/hour=09/acme-0-0.parquet", record_count: 3, footer_size: parquetFooterSize(body) },
      ]);
    } finally {
      db.close();
    }
  });

  it("lists per snapshot exactly the files whose rows, minus their delete files, DuckDB reads as that snapshot's rows", async () => {
    const root = tempDir();
    const { catalog } = memoryCatalog("acme", H1, { dataPath: `${root}/` });
    let now = H1 + 60_000;
    /** Writes a Parquet object of these events (from one replica each) under the "bucket" root; returns its record. */
    const put = (key: string, hour: number, ...events: StoredEvent[][]) => {
      const tables = events.map((e) => EventBatch.from(e).table());
      const table = tables.slice(1).reduce((all, t) => all.concat(t), tables[0] as Table);
      const body = encodeTable(table);
      mkdirSync(dirname(join(root, key)), { recursive: true });
      writeFileSync(join(root, key), body);
      return describeFile(key, hour, body, table);
    };
    const commit = (req: Parameters<typeof catalog.commit>[0][number]) => {
      now += 1000;
      const [result] = catalog.commit([req], now);
      if (!result?.ok) throw new Error(result?.ok === false ? result.conflict : "no result");
      return result.snapshot;
    };
    const want = new Map<number, string[]>();

    const a = rows("a", 5, H1, "acme-0");
    const b = [...rows("b", 3, H1, "acme-1"), { ...(a[0] as StoredEvent), replica: "acme-1", seq: 9 }]; // a0 retried
    const c = rows("c", 2, H2, "acme-2");
    const keyA = objectKey("events", "acme", H1, "acme-0", 1);
    const keyB = objectKey("events", "acme", H1, "acme-1", 1);
    const s1 = commit({ change: "insert", flush: { replica: "acme-0", seq: 1 }, add: [put(keyA, H1, a)] });
    want.set(s1, ["a0", "a1", "a2", "a3", "a4"]);
    const s2 = commit({
      change: "insert",
      flush: { replica: "acme-1", seq: 1 },
      add: [put(keyB, H1, b), put(objectKey("events", "acme", H2, "acme-2", 1), H2, c)],
    });
    want.set(s2, [...(want.get(s1) as string[]), "a0", "b0", "b1", "b2", "c0", "c1"]);
    // Compaction of H1: one row per id.
    const compacted = "events/tenant=acme/dt=2026-05-17/hour=09/compacted-x-0of1.parquet";
    const s3 = commit({ change: "compact", remove: [keyA, keyB], add: [put(compacted, H1, a, b.slice(0, 3))] });
    want.set(s3, ["a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "c0", "c1"]);
    // A delete file removing rows 1 and 3 of the compacted file (a1 and a3), written by DuckDB.
    const deletes = "events/tenant=acme/dt=2026-05-17/hour=09/compacted-x-0of1-delete.parquet";
    await query(
      `COPY (SELECT '${root}/${compacted}' AS file_path, pos::BIGINT AS pos FROM (VALUES (1), (3)) t(pos)) TO '${root}/${deletes}' (FORMAT parquet)`,
    );
    const deleteBytes = new Uint8Array(readFileSync(join(root, deletes)));
    const s4 = commit({
      change: "delete",
      deletes: [
        {
          dataKey: compacted,
          key: deletes,
          count: 2,
          bytes: deleteBytes.length,
          footerBytes: parquetFooterSize(deleteBytes),
        },
      ],
    });
    want.set(s4, ["a0", "a2", "a4", "b0", "b1", "b2", "c0", "c1"]);

    const file = join(tempDir(), "lake.sqlite");
    await writeCatalog(file, catalog.exportCatalog());
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const dataPath = (
        db.prepare(`SELECT value FROM ducklake_metadata WHERE key = 'data_path'`).get() as { value: string }
      ).value;
      const { path: schemaPath } = db.prepare(`SELECT path FROM ducklake_schema WHERE schema_id = 0`).get() as {
        path: string;
      };
      const { table_id, path: tablePath } = db
        .prepare(`SELECT table_id, path FROM ducklake_table WHERE table_name = 'events'`)
        .get() as { table_id: number; path: string };
      for (const [snapshot, ids] of want) {
        // The spec's read query ("Queries" → SELECT), against the exported database alone.
        const listed = db
          .prepare(
            `SELECT data.path AS data_file_path, del.path AS delete_file_path
             FROM ducklake_data_file AS data
             LEFT JOIN (SELECT * FROM ducklake_delete_file WHERE ?1 >= begin_snapshot AND (?1 < end_snapshot OR end_snapshot IS NULL)) AS del
             USING (data_file_id)
             WHERE data.table_id = ?2 AND ?1 >= data.begin_snapshot AND (?1 < data.end_snapshot OR data.end_snapshot IS NULL)
             ORDER BY file_order`,
          )
          .all(snapshot, table_id) as { data_file_path: string; delete_file_path: string | null }[];
        const resolve = (path: string) => `${dataPath}${schemaPath}${tablePath}${path}`;
        const parts = listed.map((f) =>
          f.delete_file_path === null
            ? `SELECT id FROM read_parquet('${resolve(f.data_file_path)}')`
            : `SELECT id FROM read_parquet('${resolve(f.data_file_path)}', file_row_number = true)
               WHERE file_row_number NOT IN (SELECT pos FROM read_parquet('${resolve(f.delete_file_path)}'))`,
        );
        const read = await query(`${parts.join(" UNION ALL ")} ORDER BY id`);
        expect(
          read.map((r) => r.id),
          `snapshot ${snapshot}`,
        ).toEqual([...ids].sort());
      }
    } finally {
      db.close();
    }
  });
  it("lists the rollup tables' files, which DuckDB reads with the right counts, and a day's uniques are its merged hours' sketch, not their sum", async () => {
    const root = tempDir();
    const { catalog } = memoryCatalog("acme", H1, { dataPath: `${root}/` });
    let now = H1 + 60_000;
    const visits = (hour: number) =>
      rows(`v${hour}-`, 400, hour).map((e, i) => ({
        ...e,
        type: "pageview",
        userId: `user-${i % 150}`,
        data: JSON.stringify({ path: "/home" }),
      }));
    const write = (grain: "hour" | "day", period: number, entries: ReturnType<typeof rollupEvents>) => {
      const table = rollupTable(entries);
      const body = encodeTable(table);
      const key = rollupKey("acme", grain, period);
      mkdirSync(dirname(join(root, key)), { recursive: true });
      writeFileSync(join(root, key), body);
      now += 1000;
      const [result] = catalog.commit(
        [{ change: "insert", rollup: grain, add: [describeFile(key, period, body, table)] }],
        now,
      );
      expect(result?.ok).toBe(true);
    };
    const hours = [H1, H2].map((hour) => rollupEvents(EventBatch.from(visits(hour)).table(), hour));
    for (const [i, entries] of hours.entries()) write("hour", [H1, H2][i] as number, entries);
    const day = Date.UTC(2026, 4, 17);
    write("day", day, mergeRollups(hours.flat(), day));

    const file = join(tempDir(), "lake.sqlite");
    await writeCatalog(file, catalog.exportCatalog());
    const db = new DatabaseSync(file, { readOnly: true });
    const filesOf = (table: string) =>
      db
        .prepare(
          `SELECT m.value || s.path || t.path || d.path AS path FROM ducklake_data_file d
           JOIN ducklake_table t USING (table_id) JOIN ducklake_schema s USING (schema_id)
           JOIN ducklake_metadata m ON m.key = 'data_path'
           WHERE s.schema_name = 'rollups' AND t.table_name = ? AND d.end_snapshot IS NULL`,
        )
        .all(table)
        .map((r) => `'${r.path}'`)
        .join(", ");
    try {
      const hourly = await query(
        `SELECT period, sum(events)::INTEGER AS events, sum(uniques)::INTEGER AS uniques FROM read_parquet([${filesOf("hourly")}])
         WHERE path = '/home' GROUP BY period ORDER BY period`,
      );
      expect(hourly.map((r) => r.events)).toEqual([400, 400]);
      const [daily] = await query(
        `SELECT events::INTEGER AS events, uniques::INTEGER AS uniques FROM read_parquet([${filesOf("daily")}]) WHERE path = '/home'`,
      );
      const hourUniques = hourly.map((r) => r.uniques as number);
      expect(daily?.events).toBe(800);
      // The same 150 users both hours: the day's estimate is the merged sketch's, about 150, not 300.
      expect(Math.abs((daily?.uniques as number) - 150)).toBeLessThanOrEqual(3);
      expect(daily?.uniques).toBe(
        Math.round(
          mergeRollups(hours.flat(), day)
            .find((r) => r.path === "/home")
            ?.sketch.count() as number,
        ),
      );
      expect((hourUniques[0] as number) + (hourUniques[1] as number)).toBeGreaterThan(290);
      const groups = await query(
        `SELECT sum(events)::INTEGER AS n FROM read_parquet([${filesOf("hourly")}]) WHERE path IS NULL`,
      );
      expect(groups[0]?.n).toBe(800);
      const tables = db
        .prepare(
          `SELECT s.schema_name || '.' || t.table_name AS name FROM ducklake_table t JOIN ducklake_schema s USING (schema_id) ORDER BY t.table_id`,
        )
        .all()
        .map((r) => r.name);
      expect(tables).toEqual(["main.events", "rollups.hourly", "rollups.daily", "rollups.monthly"]);
    } finally {
      db.close();
    }
  });
});
