import { DuckTailError, ErrorCode } from "../../protocol/errors";
import type { CatalogDb } from "./types";

// The rows the catalog's parts read back from the spec's tables.

export interface Head {
  snapshot_id: number;
  schema_version: number;
  next_catalog_id: number;
  next_file_id: number;
}

export interface LiveFile {
  data_file_id: number;
  path: string;
  record_count: number;
  file_size_bytes: number;
}

export function head(db: CatalogDb): Head {
  return db.sql.all<Head>(
    `SELECT snapshot_id, schema_version, next_catalog_id, next_file_id FROM ducklake_snapshot ORDER BY snapshot_id DESC LIMIT 1`,
  )[0] as Head;
}

export function fileId(db: CatalogDb, key: string): number | null {
  const row = db.sql.all<{ id: number }>(
    `SELECT data_file_id AS id FROM ducklake_data_file WHERE path = ? LIMIT 1`,
    key.slice(db.tablePrefix.length),
  )[0];
  return row ? row.id : null;
}

export function liveFile(db: CatalogDb, key: string): LiveFile | null {
  return (
    db.sql.all<LiveFile>(
      `SELECT data_file_id, path, record_count, file_size_bytes FROM ducklake_data_file WHERE path = ? AND end_snapshot IS NULL`,
      key.slice(db.tablePrefix.length),
    )[0] ?? null
  );
}

export function checkKey(db: CatalogDb, key: string): void {
  if (!key.startsWith(db.tablePrefix) || key.length === db.tablePrefix.length) {
    throw new DuckTailError(ErrorCode.badRequest, `${key} is not under ${db.tablePrefix}`);
  }
}

export function meta(db: CatalogDb, key: string): string | null {
  return db.sql.all<{ value: string }>(`SELECT value FROM ducktail_catalog WHERE key = ?`, key)[0]?.value ?? null;
}

export function metadata(db: CatalogDb, key: string): string | null {
  return (
    db.sql.all<{ value: string }>(`SELECT value FROM ducklake_metadata WHERE key = ? AND scope IS NULL`, key)[0]
      ?.value ?? null
  );
}
