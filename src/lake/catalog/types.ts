import type { DataFileInfo } from "../../columns/stats";
import type { TableColumn } from "./events-table";
import type { Grain } from "./rollup-tables";
import type { CatalogSql } from "./sql";

// What the catalog is given and answers, shared by its parts (./catalog, ./create, ./commit).

/** A delete file (positional: `file_path`, `pos`) for one data file. */
export interface DeleteFileInfo {
  /** Key of the data file whose rows it deletes. */
  dataKey: string;
  key: string;
  /** Rows it deletes. */
  count: number;
  bytes: number;
  footerBytes: number;
}

/** One change to commit. */
export interface CommitRequest {
  /** `insert`: a flush's files; `compact`: inputs replaced by their merge; `delete`: files or rows removed. */
  change: "insert" | "compact" | "delete";
  add?: DataFileInfo[];
  /** Keys of files the change removes: each must be part of the table now, or the change conflicts. */
  remove?: string[];
  deletes?: DeleteFileInfo[];
  /** The flush that wrote `add`: a flush is committed once, however often its write is retried. */
  flush?: { replica: string; seq: number };
  /** A line for `commit_message` (the snapshot's list of flushes, a compaction's hour, …). */
  message?: string;
  /** The rollup table of this grain the change is to; absent: the events table. */
  rollup?: Grain;
}

export type CommitResult =
  | {
      ok: true;
      snapshot: number;
      /** Nothing new: the flush or its files were committed before (`snapshot` is the one that did). */
      duplicate: boolean;
    }
  | { ok: false; conflict: string };

/** A data file of a snapshot, with its delete file if it has one. */
export interface SnapshotFile {
  /** `ducklake_data_file.data_file_id`. */
  id: number;
  key: string;
  hour: number;
  rows: number;
  bytes: number;
  deletes: { key: string; count: number } | null;
}

export interface CatalogSettings {
  tenant: string;
  /** Key prefix of the event objects (R2ParquetSink's). */
  prefix: string;
  /** `ducklake_metadata.data_path`: the bucket's root as DuckDB reaches it, e.g. `s3://ducktail-events/`. */
  dataPath: string;
  /** `created_by` and the snapshots' `author`. */
  author: string;
}

/** Which table: `events`, or the rollup table of a grain. */
export type TableKey = "events" | Grain;

/** One table of the lake as the catalog's parts need it. */
export interface LakeTable {
  key: TableKey;
  id: number;
  /** Its files' keys start with it (its schema's path, then its own); data file paths are relative to it. */
  prefix: string;
  columns: readonly TableColumn[];
  partitionId: number;
  mappingId: number;
  /** How many partition values a file has (year, month, day, hour: the first n). */
  partitionDepth: number;
}

/** The catalog's SQLite, its settings, and where its tables' files live. */
export interface CatalogDb {
  sql: CatalogSql;
  settings: CatalogSettings;
  /** Every table, with where its files live (`events`: `<prefix>/tenant=<t>/`). */
  tables: Record<TableKey, LakeTable>;
}
