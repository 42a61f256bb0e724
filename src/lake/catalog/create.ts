import {
  EVENT_COLUMNS,
  MAPPING_ID,
  NEXT_CATALOG_ID,
  PARTITION_COLUMN,
  PARTITION_ID,
  PARTITION_KEYS,
  SCHEMA_ID,
  TABLE_ID,
  TABLE_NAME,
} from "./events-table";
import { DUCKLAKE_VERSION, sqliteDdl } from "./spec";
import { catalogTime } from "./sql";
import { meta } from "./tables";
import type { CatalogDb } from "./types";

// A new catalog: the spec's tables from its DDL, DuckTail's two tables of its own, the indexes the
// catalog's lookups need, and snapshots 0 (the schema) and 1 (the events table).

/** Lookups by path, by snapshot and by file; DuckTail's own, not the spec's (the export leaves them out). */
const INDEXES = [
  `CREATE INDEX IF NOT EXISTS ducktail_data_file_path ON ducklake_data_file(path)`,
  `CREATE INDEX IF NOT EXISTS ducktail_data_file_end ON ducklake_data_file(end_snapshot)`,
  `CREATE INDEX IF NOT EXISTS ducktail_file_partition ON ducklake_file_partition_value(data_file_id)`,
  `CREATE INDEX IF NOT EXISTS ducktail_file_stats ON ducklake_file_column_stats(data_file_id)`,
  `CREATE INDEX IF NOT EXISTS ducktail_delete_file_data ON ducklake_delete_file(data_file_id)`,
  `CREATE INDEX IF NOT EXISTS ducktail_scheduled_path ON ducklake_files_scheduled_for_deletion(path)`,
];

/**
 * DuckTail's tables added after the first catalogs were made: created on every open, so an older
 * catalog gets them too. `ducktail_erasures` records each DELETE /users/<id> (the subject as a
 * SHA-256, never in clear: the record must not keep what it records the deletion of).
 */
const LATER_TABLES = [
  `CREATE TABLE IF NOT EXISTS ducktail_erasures(erasure_id INTEGER PRIMARY KEY, requested_at INTEGER NOT NULL, requested_by TEXT NOT NULL, subject_sha256 TEXT NOT NULL, matched_by TEXT NOT NULL, buffered_rows INTEGER NOT NULL, lake_rows INTEGER NOT NULL, files_rewritten INTEGER NOT NULL, snapshot_id INTEGER, objects_gone_by INTEGER NOT NULL)`,
];

/** Opens the catalog, creating it on first use: the spec's tables, snapshot 0 (schema) and 1 (the events table). */
export function openCatalog(db: CatalogDb, now: number): void {
  const exists = db.sql.all(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'ducklake_metadata'`);
  if (exists.length > 0) {
    const tenant = meta(db, "tenant");
    if (tenant !== db.settings.tenant) {
      throw new Error(`this catalog is tenant ${tenant}'s, not ${db.settings.tenant}'s`);
    }
    for (const statement of LATER_TABLES) db.sql.exec(statement);
    return;
  }
  db.sql.transaction(() => {
    for (const statement of sqliteDdl()) db.sql.exec(statement);
    for (const statement of INDEXES) db.sql.exec(statement);
    for (const statement of LATER_TABLES) db.sql.exec(statement);
    db.sql.exec(`CREATE TABLE ducktail_catalog(key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    db.sql.exec(
      `CREATE TABLE ducktail_flushes(replica TEXT NOT NULL, flush_seq INTEGER NOT NULL, snapshot_id INTEGER NOT NULL, committed_at INTEGER NOT NULL, PRIMARY KEY (replica, flush_seq))`,
    );
    db.sql.exec(`INSERT INTO ducktail_catalog VALUES ('tenant', ?), ('created_at', ?)`, db.settings.tenant, now);
    const { prefix, tenant, dataPath, author } = db.settings;
    const time = catalogTime(now);
    const metadata: [string, string][] = [
      ["version", DUCKLAKE_VERSION],
      ["created_by", author],
      ["data_path", dataPath],
      ["encrypted", "false"],
    ];
    for (const [key, value] of metadata) {
      db.sql.exec(`INSERT INTO ducklake_metadata(key, value, scope, scope_id) VALUES (?, ?, NULL, NULL)`, key, value);
    }
    // Snapshot 0, as DuckDB starts every catalog: the schema `main`, whose path is the prefix.
    db.sql.exec(`INSERT INTO ducklake_snapshot VALUES (0, ?, 0, 1, 0)`, time);
    db.sql.exec(`INSERT INTO ducklake_snapshot_changes VALUES (0, 'created_schema:"main"', ?, NULL, NULL)`, author);
    db.sql.exec(
      `INSERT INTO ducklake_schema VALUES (?, ?, 0, NULL, 'main', ?, 1)`,
      SCHEMA_ID,
      crypto.randomUUID(),
      `${prefix}/`,
    );
    // Snapshot 1: the table, its columns, its partitioning and the name mapping its files need.
    db.sql.exec(`INSERT INTO ducklake_snapshot VALUES (1, ?, 1, ?, 0)`, time, NEXT_CATALOG_ID);
    db.sql.exec(
      `INSERT INTO ducklake_snapshot_changes VALUES (1, ?, ?, 'create the events table', NULL)`,
      `created_table:"main"."${TABLE_NAME}"`,
      author,
    );
    db.sql.exec(
      `INSERT INTO ducklake_table VALUES (?, ?, 1, NULL, ?, ?, ?, 1)`,
      TABLE_ID,
      crypto.randomUUID(),
      SCHEMA_ID,
      TABLE_NAME,
      `tenant=${tenant}/`,
    );
    db.sql.exec(`INSERT INTO ducklake_schema_versions VALUES (1, 1, ?)`, TABLE_ID);
    db.sql.exec(`INSERT INTO ducklake_column_mapping VALUES (?, ?, 'map_by_name')`, MAPPING_ID, TABLE_ID);
    for (const [order, c] of EVENT_COLUMNS.entries()) {
      db.sql.exec(
        `INSERT INTO ducklake_column VALUES (?, 1, NULL, ?, ?, ?, ?, NULL, NULL, 1, NULL, 'literal', NULL)`,
        c.id,
        TABLE_ID,
        order,
        c.name,
        c.type,
      );
      db.sql.exec(`INSERT INTO ducklake_name_mapping VALUES (?, ?, ?, ?, NULL, 0)`, MAPPING_ID, c.id, c.name, c.id);
    }
    db.sql.exec(`INSERT INTO ducklake_partition_info VALUES (?, ?, 1, NULL)`, PARTITION_ID, TABLE_ID);
    const partitionColumn = EVENT_COLUMNS.find((c) => c.name === PARTITION_COLUMN)?.id as number;
    for (const [k, transform] of PARTITION_KEYS.entries()) {
      db.sql.exec(
        `INSERT INTO ducklake_partition_column VALUES (?, ?, ?, ?, ?)`,
        PARTITION_ID,
        TABLE_ID,
        k,
        partitionColumn,
        transform,
      );
    }
    db.sql.exec(`INSERT INTO ducklake_table_stats VALUES (?, 0, 0, 0)`, TABLE_ID);
  });
}
