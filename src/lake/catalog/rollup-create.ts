import {
  GRAINS,
  ROLLUP_COLUMNS,
  ROLLUP_NEXT_CATALOG_ID,
  ROLLUP_PARTITION_COLUMN,
  ROLLUP_PREFIX,
  ROLLUP_SCHEMA_ID,
  ROLLUP_SCHEMA_NAME,
  ROLLUP_TABLES,
} from "./rollup-tables";
import { catalogTime } from "./sql";
import { head, rollupTablePath } from "./tables";
import type { CatalogDb } from "./types";

/**
 * Creates the schema `rollups` and its three tables in a snapshot of their own, once: on the
 * first change to a rollup table, so a catalog made before them (or one never compacted) gets
 * them the same way, and the snapshots of one without rollups are unchanged. A new schema
 * version, as DuckDB writes for any table it creates. Runs inside the commit's transaction.
 */
export function ensureRollupTables(db: CatalogDb, now: number): void {
  const found = db.sql.all(`SELECT 1 FROM ducklake_schema WHERE schema_id = ?`, ROLLUP_SCHEMA_ID);
  if (found.length > 0) return;
  const last = head(db);
  const snapshot = last.snapshot_id + 1;
  const schemaVersion = last.schema_version + 1;
  const { author, tenant } = db.settings;
  db.sql.exec(
    `INSERT INTO ducklake_snapshot VALUES (?, ?, ?, ?, ?)`,
    snapshot,
    catalogTime(now),
    schemaVersion,
    Math.max(last.next_catalog_id, ROLLUP_NEXT_CATALOG_ID),
    last.next_file_id,
  );
  const changes = [
    `created_schema:"${ROLLUP_SCHEMA_NAME}"`,
    ...GRAINS.map((g) => `created_table:"${ROLLUP_SCHEMA_NAME}"."${ROLLUP_TABLES[g].name}"`),
  ];
  db.sql.exec(
    `INSERT INTO ducklake_snapshot_changes VALUES (?, ?, ?, 'create the rollup tables', NULL)`,
    snapshot,
    changes.join(","),
    author,
  );
  db.sql.exec(
    `INSERT INTO ducklake_schema VALUES (?, ?, ?, NULL, ?, ?, 1)`,
    ROLLUP_SCHEMA_ID,
    crypto.randomUUID(),
    snapshot,
    ROLLUP_SCHEMA_NAME,
    `${ROLLUP_PREFIX}/`,
  );
  const periodColumn = ROLLUP_COLUMNS.find((c) => c.name === ROLLUP_PARTITION_COLUMN)?.id as number;
  for (const grain of GRAINS) {
    const t = ROLLUP_TABLES[grain];
    db.sql.exec(
      `INSERT INTO ducklake_table VALUES (?, ?, ?, NULL, ?, ?, ?, 1)`,
      t.id,
      crypto.randomUUID(),
      snapshot,
      ROLLUP_SCHEMA_ID,
      t.name,
      rollupTablePath(tenant, grain),
    );
    db.sql.exec(`INSERT INTO ducklake_schema_versions VALUES (?, ?, ?)`, snapshot, schemaVersion, t.id);
    db.sql.exec(`INSERT INTO ducklake_column_mapping VALUES (?, ?, 'map_by_name')`, t.mappingId, t.id);
    for (const [order, c] of ROLLUP_COLUMNS.entries()) {
      db.sql.exec(
        `INSERT INTO ducklake_column VALUES (?, ?, NULL, ?, ?, ?, ?, NULL, NULL, 1, NULL, 'literal', NULL)`,
        c.id,
        snapshot,
        t.id,
        order,
        c.name,
        c.type,
      );
      db.sql.exec(`INSERT INTO ducklake_name_mapping VALUES (?, ?, ?, ?, NULL, 0)`, t.mappingId, c.id, c.name, c.id);
    }
    db.sql.exec(`INSERT INTO ducklake_partition_info VALUES (?, ?, ?, NULL)`, t.partitionId, t.id, snapshot);
    for (const [k, transform] of t.partitionKeys.entries()) {
      db.sql.exec(
        `INSERT INTO ducklake_partition_column VALUES (?, ?, ?, ?, ?)`,
        t.partitionId,
        t.id,
        k,
        periodColumn,
        transform,
      );
    }
    db.sql.exec(`INSERT INTO ducklake_table_stats VALUES (?, 0, 0, 0)`, t.id);
  }
}
