import { DuckTailError, ErrorCode } from "../../protocol/errors";
import { EVENT_COLUMNS, MAPPING_ID, PARTITION_ID, TABLE_ID } from "./events-table";
import { GRAINS, ROLLUP_COLUMNS, ROLLUP_PREFIX, ROLLUP_TABLES } from "./rollup-tables";
import type { CatalogDb, CatalogSettings, LakeTable, TableKey } from "./types";

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

/** Every table of a tenant's lake: the events and one rollup table per grain. */
export function lakeTables(settings: CatalogSettings): Record<TableKey, LakeTable> {
  const events: LakeTable = {
    key: "events",
    id: TABLE_ID,
    prefix: `${settings.prefix}/tenant=${settings.tenant}/`,
    columns: EVENT_COLUMNS,
    partitionId: PARTITION_ID,
    mappingId: MAPPING_ID,
    partitionDepth: 4,
  };
  const tables = { events } as Record<TableKey, LakeTable>;
  for (const grain of GRAINS) {
    const t = ROLLUP_TABLES[grain];
    tables[grain] = {
      key: grain,
      id: t.id,
      prefix: `${ROLLUP_PREFIX}/${rollupTablePath(settings.tenant, grain)}`,
      columns: ROLLUP_COLUMNS,
      partitionId: t.partitionId,
      mappingId: t.mappingId,
      partitionDepth: t.partitionKeys.length,
    };
  }
  return tables;
}

/** A rollup table's path, relative to its schema's (`rollups/`). */
export function rollupTablePath(tenant: string, grain: string): string {
  return `tenant=${tenant}/grain=${grain}/`;
}

/** The table whose files `key` names, or null when it is under none. */
export function tableOfKey(db: CatalogDb, key: string): LakeTable | null {
  for (const t of Object.values(db.tables)) if (key.startsWith(t.prefix) && key.length > t.prefix.length) return t;
  return null;
}

export function fileId(db: CatalogDb, table: LakeTable, key: string): number | null {
  const row = db.sql.all<{ id: number }>(
    `SELECT data_file_id AS id FROM ducklake_data_file WHERE path = ? AND table_id = ? LIMIT 1`,
    key.slice(table.prefix.length),
    table.id,
  )[0];
  return row ? row.id : null;
}

export function liveFile(db: CatalogDb, table: LakeTable, key: string): LiveFile | null {
  return (
    db.sql.all<LiveFile>(
      `SELECT data_file_id, path, record_count, file_size_bytes FROM ducklake_data_file
       WHERE path = ? AND table_id = ? AND end_snapshot IS NULL`,
      key.slice(table.prefix.length),
      table.id,
    )[0] ?? null
  );
}

export function checkKey(table: LakeTable, key: string): void {
  if (!key.startsWith(table.prefix) || key.length === table.prefix.length) {
    throw new DuckTailError(ErrorCode.badRequest, `${key} is not under ${table.prefix}`);
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
