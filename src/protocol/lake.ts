/** What the lake's read routes answer: GET /snapshots, GET /lake/files and GET /lake/catalog. */

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

/** Whose events DELETE /users/<id> removes: rows whose `user_id` (`userId`), `anonymous_id` (`anonymousId`) or either (`any`, the default) is `id`. */
export interface ErasureSubject {
  id: string;
  by: "userId" | "anonymousId" | "any";
}

/** What one DELETE /users/<id> did, as answered and as recorded in the catalog (`GET /users/erasures`). */
export interface ErasureRecord {
  /** Increasing per tenant. */
  id: number;
  /** Epoch ms. */
  requestedAt: number;
  /** Who asked: the key's tenant and scope and the first 12 hex digits of its SHA-256 (never the key). */
  requestedBy: string;
  /** SHA-256 of the subject's id, hex: the record names whom without keeping the id. */
  subjectSha256: string;
  matchedBy: ErasureSubject["by"];
  /** Their rows the replicas still buffered (flushed first, then removed from the lake with the rest). */
  bufferedRows: number;
  /** Their rows removed from the lake's files (the buffered ones included). */
  lakeRows: number;
  /** Files rewritten without their rows (or removed, when nothing else was in them). */
  filesRewritten: number;
  /** The snapshot that replaced the files; null when no file held their rows. */
  snapshot: number | null;
  /** When the replaced objects leave R2 at the latest: the snapshot's time plus SNAPSHOT_RETENTION_HOURS, plus the next cleanup. */
  objectsGoneBy: number;
}

/** GET / PUT /lake/retention: how long the tenant's events and rollups stay in the lake. */
export interface RetentionAnswer {
  /** Days an hour of events stays; null: kept. */
  days: number | null;
  /** Whether `days` is the tenant's own (PUT /lake/retention) or RETENTION_DAYS. */
  source: "tenant" | "default";
  rollupDays: number;
}

/** What one retention pass removed from the lake (the cron, POST /lake/retention). */
export interface RetentionReport {
  /** Hours that ended at or before this (epoch ms) left the table. */
  before: number | null;
  /** The snapshot that removed them; null when none did. */
  snapshot: number | null;
  files: number;
  rows: number;
  /** Rollup files whose period ended more than ROLLUP_RETENTION_DAYS ago, removed (a snapshot per rollup table; `snapshot` is the last). */
  rollupFiles: number;
}

/** Whether an event with these ids is one of the subject's. */
export function isSubject(
  subject: ErasureSubject,
  e: { userId?: string | null; anonymousId?: string | null },
): boolean {
  if (subject.by !== "anonymousId" && e.userId === subject.id) return true;
  return subject.by !== "userId" && e.anonymousId === subject.id;
}

/** The grains of GET /rollups. */
export const ROLLUP_GRAINS = ["hour", "day", "month"] as const;
export type RollupGrain = (typeof ROLLUP_GRAINS)[number];

/**
 * One row of GET /rollups: a (source, type, importance) group with its `events`, or a page
 * (`path` set, the others null) with its page views in `events`; `uniques` estimates its distinct
 * visitors (`userId`, else `anonymousId`) over the period, from sketches merged, never summed.
 */
export interface RollupRow {
  grain: RollupGrain;
  /** Start of the UTC period, ISO 8601. */
  period: string;
  source: string | null;
  type: string | null;
  importance: string | null;
  path: string | null;
  events: number;
  uniques: number;
}

/** GET /rollups: the rows of the periods starting in [from, to), by period. */
export interface RollupAnswer {
  grain: RollupGrain;
  from: string;
  to: string;
  /** The catalog snapshot read. */
  snapshot: number;
  rows: RollupRow[];
}

/** One data file of GET /lake/files. */
export interface LakeFile {
  /** The object's key: GET /lake/object?object= serves it. */
  key: string;
  bytes: number;
  /** Rows in the object, before its delete file. */
  rows: number;
  /** The range of receipt its rows are in (epoch ms, `to` exclusive): its hour partition. */
  from: number;
  to: number;
  /** Its positional delete file (`pos`: row numbers of the object that are gone), if any. */
  deletes: { key: string; count: number } | null;
}

/** GET /lake/files: the files of the snapshot a query of [from, to) reads. */
export interface LakeFileList {
  snapshot: number;
  /** The latest snapshot: what the replicas still buffer (GET /events?buffered=only) joins it. */
  live: boolean;
  from: number;
  to: number;
  files: LakeFile[];
  /** Their total size, and their rows less the deleted ones. */
  bytes: number;
  rows: number;
}
