/** What the lake's read routes answer: GET /snapshots and GET /lake/catalog. */

/** One snapshot of a tenant's lake (GET /snapshots). */
export interface SnapshotInfo {
  /** `ducklake_snapshot.snapshot_id`: increasing; `?snapshot=` of GET /events takes it. */
  id: number;
  /** When it was committed (epoch ms). */
  time: number;
  /**
   * What it changed, as DuckLake lists it (`ducklake_snapshot_changes.changes_made`):
   * `inserted_into_table:1` (a flush), `compacted_table:1`, `deleted_from_table:1`,
   * `created_schema:"main"`, `created_table:"main"."events"`.
   */
  changes: string[];
  /** Who committed it and why: "flush <replica>#<seq>, …", "compact <hour>", … */
  message: string | null;
  rowsAdded: number;
  rowsRemoved: number;
  filesAdded: number;
  filesRemoved: number;
}

/** GET /snapshots: newest first. `next` is the `before` of the following page, if there is one. */
export interface SnapshotList {
  snapshots: SnapshotInfo[];
  next: number | null;
}

/**
 * GET /lake/catalog: the tenant's whole DuckLake catalog, for `ducktail lake export` to write as a
 * SQLite catalog database. `statements` create the spec's tables (as DuckDB's sqlite extension
 * would); `tables` holds every row of each, values in `columns` order.
 */
export interface CatalogExport {
  /** The DuckLake spec version (`ducklake_metadata` key `version`). */
  version: string;
  /** Where the spec's DDL was taken from. */
  source: string;
  /** `ducklake_metadata`'s `data_path`: the bucket root the file paths are relative to. */
  dataPath: string;
  statements: string[];
  tables: Record<string, { columns: string[]; rows: (string | number | null)[][] }>;
}
