import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";

/** Runs SQL in a fresh in-memory DuckDB and returns the rows as plain JS objects. */
export async function query(sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  try {
    const reader = await conn.runAndReadAll(sql);
    return reader.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/** Writes Parquet bytes to temp files and reads every row back with DuckDB's read_parquet. */
export async function readParquetFiles(files: Uint8Array[], orderBy = "seq"): Promise<Record<string, unknown>[]> {
  const dir = mkdtempSync(join(tmpdir(), "ducktail-pq-"));
  const paths = files.map((bytes, i) => {
    const path = join(dir, `f${i}.parquet`);
    writeFileSync(path, bytes);
    return path;
  });
  const list = paths.map((p) => `'${p}'`).join(", ");
  return query(`SELECT * FROM read_parquet([${list}]) ORDER BY ${orderBy}`);
}
