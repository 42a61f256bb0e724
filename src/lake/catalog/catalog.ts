import type { ColumnStats, DataFileInfo } from "../../columns/stats";
import { DuckTailError, ErrorCode } from "../../protocol/errors";
import type { CatalogExport, SnapshotInfo, SnapshotList } from "../../protocol/lake";
import {
  EVENT_COLUMNS,
  hourOf,
  MAPPING_ID,
  NEXT_CATALOG_ID,
  PARTITION_COLUMN,
  PARTITION_ID,
  PARTITION_KEYS,
  partitionValues,
  SCHEMA_ID,
  TABLE_ID,
  TABLE_NAME,
} from "./events-table";
import { DUCKLAKE_SOURCE, DUCKLAKE_VERSION, SPEC_TABLES, sqliteDdl } from "./spec";
import { type CatalogSql, catalogTime, parseCatalogTime, type SqlValue } from "./sql";

/**
 * A tenant's lake as a DuckLake catalog (spec 1.0, ./spec.ts): one table, `events`, whose data
 * files are the Parquet objects the flushes and compactions wrote. A file is part of the table
 * from the snapshot that added it (`begin_snapshot`) until the one that removed it
 * (`end_snapshot`); readers pick a snapshot and read exactly its files, minus their delete files.
 *
 * Pure SQL over a {@link CatalogSql}: the Durable Object (./LakeCatalog.ts) runs it on its SQLite,
 * tests and tools on `node:sqlite`. One call of {@link commit} is one transaction (a group-commit
 * round): its inserts share one snapshot, every other change gets one of its own.
 */

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

interface Head {
  snapshot_id: number;
  schema_version: number;
  next_catalog_id: number;
  next_file_id: number;
}

interface LiveFile {
  data_file_id: number;
  path: string;
  record_count: number;
  file_size_bytes: number;
}

const INDEXES = [
  `CREATE INDEX IF NOT EXISTS ducktail_data_file_path ON ducklake_data_file(path)`,
  `CREATE INDEX IF NOT EXISTS ducktail_data_file_end ON ducklake_data_file(end_snapshot)`,
  `CREATE INDEX IF NOT EXISTS ducktail_file_partition ON ducklake_file_partition_value(data_file_id)`,
  `CREATE INDEX IF NOT EXISTS ducktail_file_stats ON ducklake_file_column_stats(data_file_id)`,
  `CREATE INDEX IF NOT EXISTS ducktail_delete_file_data ON ducklake_delete_file(data_file_id)`,
  `CREATE INDEX IF NOT EXISTS ducktail_scheduled_path ON ducklake_files_scheduled_for_deletion(path)`,
];

const HOUR_MS = 3_600_000;
/** How long a committed flush is remembered, so a retry of it commits nothing (see flushSnapshot). */
const FLUSH_MEMORY_MS = 7 * 24 * HOUR_MS;
const COLUMN_TYPES = new Map(EVENT_COLUMNS.map((c) => [c.name, c]));

export class Catalog {
  /** Where the table's files live: keys start with it, data file paths are relative to it. */
  readonly tablePrefix: string;

  constructor(
    private readonly sql: CatalogSql,
    private readonly settings: CatalogSettings,
  ) {
    this.tablePrefix = `${settings.prefix}/tenant=${settings.tenant}/`;
  }

  /** Creates the catalog on first use: the spec's tables, snapshot 0 (schema) and 1 (the events table). */
  init(now: number): void {
    const exists = this.sql.all(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'ducklake_metadata'`);
    if (exists.length > 0) {
      const tenant = this.meta("tenant");
      if (tenant !== this.settings.tenant) {
        throw new Error(`this catalog is tenant ${tenant}'s, not ${this.settings.tenant}'s`);
      }
      return;
    }
    this.sql.transaction(() => {
      for (const statement of sqliteDdl()) this.sql.exec(statement);
      for (const statement of INDEXES) this.sql.exec(statement);
      this.sql.exec(`CREATE TABLE ducktail_catalog(key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
      this.sql.exec(
        `CREATE TABLE ducktail_flushes(replica TEXT NOT NULL, flush_seq INTEGER NOT NULL, snapshot_id INTEGER NOT NULL, committed_at INTEGER NOT NULL, PRIMARY KEY (replica, flush_seq))`,
      );
      this.sql.exec(`INSERT INTO ducktail_catalog VALUES ('tenant', ?), ('created_at', ?)`, this.settings.tenant, now);
      const { prefix, tenant, dataPath, author } = this.settings;
      const time = catalogTime(now);
      const metadata: [string, string][] = [
        ["version", DUCKLAKE_VERSION],
        ["created_by", author],
        ["data_path", dataPath],
        ["encrypted", "false"],
      ];
      for (const [key, value] of metadata) {
        this.sql.exec(
          `INSERT INTO ducklake_metadata(key, value, scope, scope_id) VALUES (?, ?, NULL, NULL)`,
          key,
          value,
        );
      }
      // Snapshot 0, as DuckDB starts every catalog: the schema `main`, whose path is the prefix.
      this.sql.exec(`INSERT INTO ducklake_snapshot VALUES (0, ?, 0, 1, 0)`, time);
      this.sql.exec(`INSERT INTO ducklake_snapshot_changes VALUES (0, 'created_schema:"main"', ?, NULL, NULL)`, author);
      this.sql.exec(
        `INSERT INTO ducklake_schema VALUES (?, ?, 0, NULL, 'main', ?, 1)`,
        SCHEMA_ID,
        crypto.randomUUID(),
        `${prefix}/`,
      );
      // Snapshot 1: the table, its columns, its partitioning and the name mapping its files need.
      this.sql.exec(`INSERT INTO ducklake_snapshot VALUES (1, ?, 1, ?, 0)`, time, NEXT_CATALOG_ID);
      this.sql.exec(
        `INSERT INTO ducklake_snapshot_changes VALUES (1, ?, ?, 'create the events table', NULL)`,
        `created_table:"main"."${TABLE_NAME}"`,
        author,
      );
      this.sql.exec(
        `INSERT INTO ducklake_table VALUES (?, ?, 1, NULL, ?, ?, ?, 1)`,
        TABLE_ID,
        crypto.randomUUID(),
        SCHEMA_ID,
        TABLE_NAME,
        `tenant=${tenant}/`,
      );
      this.sql.exec(`INSERT INTO ducklake_schema_versions VALUES (1, 1, ?)`, TABLE_ID);
      this.sql.exec(`INSERT INTO ducklake_column_mapping VALUES (?, ?, 'map_by_name')`, MAPPING_ID, TABLE_ID);
      for (const [order, c] of EVENT_COLUMNS.entries()) {
        this.sql.exec(
          `INSERT INTO ducklake_column VALUES (?, 1, NULL, ?, ?, ?, ?, NULL, NULL, 1, NULL, 'literal', NULL)`,
          c.id,
          TABLE_ID,
          order,
          c.name,
          c.type,
        );
        this.sql.exec(`INSERT INTO ducklake_name_mapping VALUES (?, ?, ?, ?, NULL, 0)`, MAPPING_ID, c.id, c.name, c.id);
      }
      this.sql.exec(`INSERT INTO ducklake_partition_info VALUES (?, ?, 1, NULL)`, PARTITION_ID, TABLE_ID);
      const partitionColumn = COLUMN_TYPES.get(PARTITION_COLUMN)?.id as number;
      for (const [k, transform] of PARTITION_KEYS.entries()) {
        this.sql.exec(
          `INSERT INTO ducklake_partition_column VALUES (?, ?, ?, ?, ?)`,
          PARTITION_ID,
          TABLE_ID,
          k,
          partitionColumn,
          transform,
        );
      }
      this.sql.exec(`INSERT INTO ducklake_table_stats VALUES (?, 0, 0, 0)`, TABLE_ID);
    });
  }

  /** When the catalog was created (epoch ms): objects older than it predate it, not orphans of it. */
  createdAt(): number {
    return Number(this.meta("created_at"));
  }

  // ---- commits ------------------------------------------------------------------------------

  /**
   * One group-commit round, in one transaction: every `insert` shares one snapshot, every other
   * change gets its own; each request gets its result, in order. A change that conflicts (a file
   * it removes is no longer part of the table) is refused alone.
   */
  commit(requests: readonly CommitRequest[], now: number): CommitResult[] {
    return this.sql.transaction(() => {
      const results: CommitResult[] = new Array(requests.length);
      const inserts: number[] = [];
      requests.forEach((r, i) => {
        if (r.change === "insert" && !r.remove?.length && !r.deletes?.length) inserts.push(i);
      });
      if (inserts.length > 0) this.commitInserts(requests, inserts, results, now);
      requests.forEach((r, i) => {
        if (!results[i]) results[i] = this.commitChange(r, now);
      });
      return results;
    });
  }

  /** The flushes of a round: one snapshot adding every file not committed before. */
  private commitInserts(requests: readonly CommitRequest[], which: number[], results: CommitResult[], now: number) {
    const files: DataFileInfo[] = [];
    const flushes = new Map<string, { replica: string; seq: number }>();
    const repeated: number[] = [];
    const seen = new Set<string>();
    const adding: number[] = [];
    for (const i of which) {
      const r = requests[i] as CommitRequest;
      if (r.flush) {
        const id = `${r.flush.replica}#${r.flush.seq}`;
        if (flushes.has(id)) {
          repeated.push(i);
          continue;
        }
        const done = this.flushSnapshot(r.flush.replica, r.flush.seq);
        if (done !== null) {
          results[i] = { ok: true, snapshot: done, duplicate: true };
          continue;
        }
        flushes.set(id, r.flush);
      }
      let fresh = 0;
      for (const f of r.add ?? []) {
        this.checkKey(f.key);
        if (seen.has(f.key) || this.fileId(f.key) !== null) continue;
        seen.add(f.key);
        files.push(f);
        fresh++;
      }
      if (fresh === 0 && !r.flush) results[i] = { ok: true, snapshot: this.head().snapshot_id, duplicate: true };
      else adding.push(i);
    }
    if (adding.length === 0 && repeated.length === 0) return;
    const messages = adding.map((i) => {
      const r = requests[i] as CommitRequest;
      return r.message ?? (r.flush ? `flush ${r.flush.replica}#${r.flush.seq}` : "insert");
    });
    const snapshot =
      files.length > 0
        ? this.writeSnapshot(now, `inserted_into_table:${TABLE_ID}`, messages.join(", "), files, [], [])
        : this.head().snapshot_id;
    for (const { replica, seq } of flushes.values()) {
      this.sql.exec(`INSERT INTO ducktail_flushes VALUES (?, ?, ?, ?)`, replica, seq, snapshot, now);
    }
    for (const i of adding) results[i] = { ok: true, snapshot, duplicate: files.length === 0 };
    for (const i of repeated) results[i] = { ok: true, snapshot, duplicate: true };
  }

  /**
   * The snapshot that committed this replica's flush `seq`, or null. Each flush is remembered for
   * FLUSH_MEMORY_MS, far longer than any retry waits; a dead letter replayed under its original
   * seq was never committed, so it is.
   */
  private flushSnapshot(replica: string, seq: number): number | null {
    const row = this.sql.all<{ snapshot_id: number }>(
      `SELECT snapshot_id FROM ducktail_flushes WHERE replica = ? AND flush_seq = ?`,
      replica,
      seq,
    )[0];
    return row ? row.snapshot_id : null;
  }

  /** A compaction, deletion or retention change: one snapshot of its own, or a conflict. */
  private commitChange(r: CommitRequest, now: number): CommitResult {
    const removed: LiveFile[] = [];
    for (const key of r.remove ?? []) {
      const file = this.liveFile(key);
      if (!file) return { ok: false, conflict: `${key} is not part of the table` };
      removed.push(file);
    }
    for (const d of r.deletes ?? []) {
      if (!this.liveFile(d.dataKey)) return { ok: false, conflict: `${d.dataKey} is not part of the table` };
      this.checkKey(d.key);
    }
    const added: DataFileInfo[] = [];
    for (const f of r.add ?? []) {
      this.checkKey(f.key);
      if (this.fileId(f.key) !== null) return { ok: false, conflict: `${f.key} was committed before` };
      added.push(f);
    }
    const change =
      r.change === "compact"
        ? `compacted_table:${TABLE_ID}`
        : r.change === "delete"
          ? `deleted_from_table:${TABLE_ID}`
          : `inserted_into_table:${TABLE_ID}`;
    const snapshot = this.writeSnapshot(now, change, r.message ?? r.change, added, removed, r.deletes ?? []);
    return { ok: true, snapshot, duplicate: false };
  }

  /** Writes a snapshot that adds `added`, removes `removed` and adds `deletes`; returns its id. */
  private writeSnapshot(
    now: number,
    change: string,
    message: string,
    added: readonly DataFileInfo[],
    removed: readonly LiveFile[],
    deletes: readonly DeleteFileInfo[],
  ): number {
    const head = this.head();
    const snapshot = head.snapshot_id + 1;
    let nextFileId = head.next_file_id;
    const stats = this.sql.all<{ record_count: number; next_row_id: number; file_size_bytes: number }>(
      `SELECT record_count, next_row_id, file_size_bytes FROM ducklake_table_stats WHERE table_id = ?`,
      TABLE_ID,
    )[0] as { record_count: number; next_row_id: number; file_size_bytes: number };
    let rowsAdded = 0;
    let rowsRemoved = 0;
    let bytesDelta = 0;
    let nextRowId = stats.next_row_id;

    for (const f of added) {
      const id = nextFileId++;
      this.sql.exec(
        `INSERT INTO ducklake_data_file VALUES (?, ?, ?, NULL, ?, ?, 1, 'parquet', ?, ?, ?, ?, ?, NULL, ?, NULL)`,
        id,
        TABLE_ID,
        snapshot,
        id,
        f.key.slice(this.tablePrefix.length),
        f.rows,
        f.bytes,
        f.footerBytes,
        nextRowId,
        PARTITION_ID,
        MAPPING_ID,
      );
      nextRowId += f.rows;
      rowsAdded += f.rows;
      bytesDelta += f.bytes;
      for (const [k, value] of partitionValues(f.hour).entries()) {
        this.sql.exec(`INSERT INTO ducklake_file_partition_value VALUES (?, ?, ?, ?)`, id, TABLE_ID, k, value);
      }
      for (const c of f.columns) {
        const column = COLUMN_TYPES.get(c.column);
        if (!column) continue; // not a column of the table
        this.sql.exec(
          `INSERT INTO ducklake_file_column_stats VALUES (?, ?, ?, NULL, ?, ?, ?, ?, NULL, NULL)`,
          id,
          TABLE_ID,
          column.id,
          c.valueCount,
          c.nullCount,
          c.min,
          c.max,
        );
        this.widenColumnStats(column.id, c);
      }
    }
    for (const f of removed) {
      const deleted = this.sql.all<{ n: number }>(
        `SELECT COALESCE(SUM(delete_count), 0) AS n FROM ducklake_delete_file WHERE data_file_id = ? AND end_snapshot IS NULL`,
        f.data_file_id,
      )[0]?.n as number;
      this.sql.exec(`UPDATE ducklake_data_file SET end_snapshot = ? WHERE data_file_id = ?`, snapshot, f.data_file_id);
      this.sql.exec(
        `UPDATE ducklake_delete_file SET end_snapshot = ? WHERE data_file_id = ? AND end_snapshot IS NULL`,
        snapshot,
        f.data_file_id,
      );
      rowsRemoved += f.record_count - deleted;
      bytesDelta -= f.file_size_bytes;
    }
    for (const d of deletes) {
      const data = this.liveFile(d.dataKey) as LiveFile;
      const previous = this.sql.all<{ delete_count: number }>(
        `SELECT delete_count FROM ducklake_delete_file WHERE data_file_id = ? AND end_snapshot IS NULL`,
        data.data_file_id,
      )[0];
      // At most one delete file per data file in a snapshot: a new one replaces (and includes) the old.
      this.sql.exec(
        `UPDATE ducklake_delete_file SET end_snapshot = ? WHERE data_file_id = ? AND end_snapshot IS NULL`,
        snapshot,
        data.data_file_id,
      );
      const id = nextFileId++;
      this.sql.exec(
        `INSERT INTO ducklake_delete_file VALUES (?, ?, ?, NULL, ?, ?, 1, 'parquet', ?, ?, ?, NULL, NULL)`,
        id,
        TABLE_ID,
        snapshot,
        data.data_file_id,
        d.key.slice(this.tablePrefix.length),
        d.count,
        d.bytes,
        d.footerBytes,
      );
      rowsRemoved += d.count - (previous?.delete_count ?? 0);
    }
    this.sql.exec(
      `UPDATE ducklake_table_stats SET record_count = ?, next_row_id = ?, file_size_bytes = ? WHERE table_id = ?`,
      stats.record_count + rowsAdded - rowsRemoved,
      nextRowId,
      stats.file_size_bytes + bytesDelta,
      TABLE_ID,
    );
    this.sql.exec(
      `INSERT INTO ducklake_snapshot VALUES (?, ?, ?, ?, ?)`,
      snapshot,
      catalogTime(now),
      head.schema_version,
      head.next_catalog_id,
      nextFileId,
    );
    const extra = {
      rowsAdded,
      rowsRemoved,
      filesAdded: added.length,
      filesRemoved: removed.length,
      deleteFiles: deletes.length,
    };
    this.sql.exec(
      `INSERT INTO ducklake_snapshot_changes VALUES (?, ?, ?, ?, ?)`,
      snapshot,
      change,
      this.settings.author,
      message,
      JSON.stringify(extra),
    );
    return snapshot;
  }

  /** Widens the table-wide bounds of a column by one file's. */
  private widenColumnStats(columnId: number, c: ColumnStats): void {
    const row = this.sql.all<{ contains_null: number; min_value: string | null; max_value: string | null }>(
      `SELECT contains_null, min_value, max_value FROM ducklake_table_column_stats WHERE table_id = ? AND column_id = ?`,
      TABLE_ID,
      columnId,
    )[0];
    const type = EVENT_COLUMNS[columnId - 1]?.type;
    if (!row) {
      this.sql.exec(
        `INSERT INTO ducklake_table_column_stats VALUES (?, ?, ?, 0, ?, ?, NULL)`,
        TABLE_ID,
        columnId,
        c.nullCount > 0 ? 1 : 0,
        c.min,
        c.max,
      );
      return;
    }
    // A bound unknown for one file is unknown for the table.
    const min = row.min_value === null || c.min === null ? null : lesser(row.min_value, c.min, type);
    const max = row.max_value === null || c.max === null ? null : lesser(row.max_value, c.max, type, true);
    this.sql.exec(
      `UPDATE ducklake_table_column_stats SET contains_null = ?, min_value = ?, max_value = ? WHERE table_id = ? AND column_id = ?`,
      row.contains_null || c.nullCount > 0 ? 1 : 0,
      min,
      max,
      TABLE_ID,
      columnId,
    );
  }

  // ---- reading ------------------------------------------------------------------------------

  /** The latest snapshot's id. */
  latest(): number {
    return this.head().snapshot_id;
  }

  /**
   * The snapshot a read asks for: `snapshot` itself (it must exist: expired ones do not), or the
   * last one committed at or before `asOf` (epoch ms), or the latest.
   */
  resolve(q: { snapshot?: number; asOf?: number }): number {
    if (q.snapshot !== undefined) {
      const found = this.sql.all(`SELECT 1 FROM ducklake_snapshot WHERE snapshot_id = ?`, q.snapshot);
      if (found.length === 0) {
        throw new DuckTailError(ErrorCode.notFound, `no snapshot ${q.snapshot} (expired, or not yet taken)`);
      }
      return q.snapshot;
    }
    if (q.asOf !== undefined) {
      const row = this.sql.all<{ id: number | null }>(
        `SELECT MAX(snapshot_id) AS id FROM ducklake_snapshot WHERE snapshot_time <= ?`,
        catalogTime(q.asOf),
      )[0];
      if (row?.id === null || row?.id === undefined) {
        throw new DuckTailError(ErrorCode.notFound, `no snapshot at or before ${new Date(q.asOf).toISOString()}`);
      }
      return row.id;
    }
    return this.latest();
  }

  /** The data files of `snapshot` whose hour of receipt is in [from, to), each with its delete file. */
  files(snapshot: number, from = Number.NEGATIVE_INFINITY, to = Number.POSITIVE_INFINITY): SnapshotFile[] {
    const rows = this.sql.all<{
      data_file_id: number;
      path: string;
      record_count: number;
      file_size_bytes: number;
      partition: string;
      delete_path: string | null;
      delete_count: number | null;
    }>(
      `SELECT d.data_file_id, d.path, d.record_count, d.file_size_bytes,
              (SELECT group_concat(partition_value, '/') FROM
                 (SELECT partition_value FROM ducklake_file_partition_value v
                  WHERE v.data_file_id = d.data_file_id ORDER BY partition_key_index)) AS partition,
              x.path AS delete_path, x.delete_count
       FROM ducklake_data_file d
       LEFT JOIN ducklake_delete_file x ON x.data_file_id = d.data_file_id
            AND x.begin_snapshot <= ?1 AND (x.end_snapshot IS NULL OR x.end_snapshot > ?1)
       WHERE d.table_id = ?2 AND d.begin_snapshot <= ?1 AND (d.end_snapshot IS NULL OR d.end_snapshot > ?1)
       ORDER BY d.data_file_id`,
      snapshot,
      TABLE_ID,
    );
    const firstHour = Number.isFinite(from) ? from - (from % HOUR_MS) : from;
    const files: SnapshotFile[] = [];
    for (const r of rows) {
      const hour = hourOf(r.partition.split("/"));
      if (hour < firstHour || hour >= to) continue;
      files.push({
        key: this.tablePrefix + r.path,
        hour,
        rows: r.record_count,
        bytes: r.file_size_bytes,
        deletes: r.delete_path === null ? null : { key: this.tablePrefix + r.delete_path, count: r.delete_count ?? 0 },
      });
    }
    return files;
  }

  /** The snapshots, newest first, `limit` of them before the id `before`. */
  snapshots(limit: number, before = Number.MAX_SAFE_INTEGER): SnapshotList {
    const rows = this.sql.all<{
      snapshot_id: number;
      snapshot_time: string;
      changes_made: string | null;
      commit_message: string | null;
      commit_extra_info: string | null;
    }>(
      `SELECT s.snapshot_id, s.snapshot_time, c.changes_made, c.commit_message, c.commit_extra_info
       FROM ducklake_snapshot s LEFT JOIN ducklake_snapshot_changes c USING (snapshot_id)
       WHERE s.snapshot_id < ? ORDER BY s.snapshot_id DESC LIMIT ?`,
      before,
      limit + 1,
    );
    const snapshots = rows.slice(0, limit).map((r): SnapshotInfo => {
      const extra = r.commit_extra_info ? (JSON.parse(r.commit_extra_info) as Partial<SnapshotInfo>) : {};
      return {
        id: r.snapshot_id,
        time: parseCatalogTime(r.snapshot_time),
        changes: splitChanges(r.changes_made ?? ""),
        message: r.commit_message,
        rowsAdded: extra.rowsAdded ?? 0,
        rowsRemoved: extra.rowsRemoved ?? 0,
        filesAdded: extra.filesAdded ?? 0,
        filesRemoved: extra.filesRemoved ?? 0,
      };
    });
    return { snapshots, next: rows.length > limit ? (snapshots.at(-1)?.id ?? null) : null };
  }

  /** Of these keys, the ones the catalog knows nothing of (no file, delete file or scheduled deletion). */
  unknownKeys(keys: readonly string[]): string[] {
    return keys.filter((key) => {
      if (!key.startsWith(this.tablePrefix)) return false;
      const path = key.slice(this.tablePrefix.length);
      const known = this.sql.all(
        `SELECT 1 FROM ducklake_data_file WHERE path = ?1
         UNION ALL SELECT 1 FROM ducklake_delete_file WHERE path = ?1
         UNION ALL SELECT 1 FROM ducklake_files_scheduled_for_deletion WHERE path = ?2 LIMIT 1`,
        path,
        key,
      );
      return known.length === 0;
    });
  }

  // ---- expiry and cleanup -------------------------------------------------------------------

  /**
   * Expires the snapshots committed before `cutoff` (epoch ms), never the latest, then schedules
   * for deletion every file no remaining snapshot can see (removed at or before the oldest one
   * left), as DuckDB's `ducklake_expire_snapshots` does. Returns the snapshots expired.
   */
  expire(cutoff: number, now: number): number[] {
    return this.sql.transaction(() => {
      const latest = this.latest();
      const expired = this.sql
        .all<{ snapshot_id: number }>(
          `SELECT snapshot_id FROM ducklake_snapshot WHERE snapshot_time < ? AND snapshot_id < ? ORDER BY snapshot_id`,
          catalogTime(cutoff),
          latest,
        )
        .map((r) => r.snapshot_id);
      this.sql.exec(`DELETE FROM ducktail_flushes WHERE committed_at < ?`, now - FLUSH_MEMORY_MS);
      if (expired.length === 0) return [];
      const last = expired.at(-1) as number;
      this.sql.exec(`DELETE FROM ducklake_snapshot WHERE snapshot_id <= ?`, last);
      this.sql.exec(`DELETE FROM ducklake_snapshot_changes WHERE snapshot_id <= ?`, last);
      const oldest = this.sql.all<{ id: number }>(`SELECT MIN(snapshot_id) AS id FROM ducklake_snapshot`)[0]
        ?.id as number;
      // Scheduled paths are relative to data_path (the bucket's root): the objects' keys.
      const schedule = this.tablePrefix;
      this.sql.exec(
        `INSERT INTO ducklake_files_scheduled_for_deletion
         SELECT data_file_id, ? || path, 1, ? FROM ducklake_data_file WHERE end_snapshot <= ?
         UNION ALL SELECT delete_file_id, ? || path, 1, ? FROM ducklake_delete_file WHERE end_snapshot <= ?`,
        schedule,
        catalogTime(now),
        oldest,
        schedule,
        catalogTime(now),
        oldest,
      );
      const gone = `SELECT data_file_id FROM ducklake_data_file WHERE end_snapshot <= ${Number(oldest)}`;
      this.sql.exec(`DELETE FROM ducklake_file_column_stats WHERE data_file_id IN (${gone})`);
      this.sql.exec(`DELETE FROM ducklake_file_partition_value WHERE data_file_id IN (${gone})`);
      this.sql.exec(`DELETE FROM ducklake_data_file WHERE end_snapshot <= ?`, oldest);
      this.sql.exec(`DELETE FROM ducklake_delete_file WHERE end_snapshot <= ?`, oldest);
      return expired;
    });
  }

  /** Keys of the files scheduled for deletion at or before `before` (epoch ms). */
  scheduled(before: number): string[] {
    return this.sql
      .all<{ path: string }>(
        `SELECT path FROM ducklake_files_scheduled_for_deletion WHERE schedule_start <= ? ORDER BY path`,
        catalogTime(before),
      )
      .map((r) => r.path);
  }

  /** Forgets scheduled files once they are deleted from the bucket. */
  forget(keys: readonly string[]): void {
    this.sql.transaction(() => {
      for (const key of keys) {
        this.sql.exec(`DELETE FROM ducklake_files_scheduled_for_deletion WHERE path = ?`, key);
      }
    });
  }

  // ---- export -------------------------------------------------------------------------------

  /** Every row of every spec table (`ducklake_metadata.data_path` replaced by `dataPath` if given). */
  exportCatalog(dataPath?: string): CatalogExport {
    const tables: CatalogExport["tables"] = {};
    for (const t of SPEC_TABLES) {
      const columns = t.columns.map((c) => c.name);
      const list = columns.map((c) => `"${c}"`).join(", ");
      const rows = this.sql
        .all<Record<string, SqlValue>>(`SELECT ${list} FROM "${t.name}"`)
        .map((r) => columns.map((c) => (r[c] ?? null) as SqlValue));
      tables[t.name] = { columns, rows };
    }
    const path = dataPath ?? (this.metadata("data_path") as string);
    const metadata = tables.ducklake_metadata;
    if (metadata) for (const row of metadata.rows) if (row[0] === "data_path") row[1] = path;
    return {
      version: DUCKLAKE_VERSION,
      source: DUCKLAKE_SOURCE,
      dataPath: path,
      statements: sqliteDdl(),
      tables,
    };
  }

  // ---- helpers ------------------------------------------------------------------------------

  private head(): Head {
    return this.sql.all<Head>(
      `SELECT snapshot_id, schema_version, next_catalog_id, next_file_id FROM ducklake_snapshot ORDER BY snapshot_id DESC LIMIT 1`,
    )[0] as Head;
  }

  private fileId(key: string): number | null {
    const row = this.sql.all<{ id: number }>(
      `SELECT data_file_id AS id FROM ducklake_data_file WHERE path = ? LIMIT 1`,
      key.slice(this.tablePrefix.length),
    )[0];
    return row ? row.id : null;
  }

  private liveFile(key: string): LiveFile | null {
    return (
      this.sql.all<LiveFile>(
        `SELECT data_file_id, path, record_count, file_size_bytes FROM ducklake_data_file WHERE path = ? AND end_snapshot IS NULL`,
        key.slice(this.tablePrefix.length),
      )[0] ?? null
    );
  }

  private checkKey(key: string): void {
    if (!key.startsWith(this.tablePrefix) || key.length === this.tablePrefix.length) {
      throw new DuckTailError(ErrorCode.badRequest, `${key} is not under ${this.tablePrefix}`);
    }
  }

  private meta(key: string): string | null {
    return this.sql.all<{ value: string }>(`SELECT value FROM ducktail_catalog WHERE key = ?`, key)[0]?.value ?? null;
  }

  private metadata(key: string): string | null {
    return (
      this.sql.all<{ value: string }>(`SELECT value FROM ducklake_metadata WHERE key = ? AND scope IS NULL`, key)[0]
        ?.value ?? null
    );
  }
}

/** `changes_made` as its entries: commas inside quoted names do not split. */
export function splitChanges(changes: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < changes.length; i++) {
    if (changes[i] === '"') quoted = !quoted;
    else if (changes[i] === "," && !quoted) {
      out.push(changes.slice(start, i));
      start = i + 1;
    }
  }
  if (changes.length > 0) out.push(changes.slice(start));
  return out;
}

/** The smaller (or with `larger`, the larger) of two encoded bounds of a column of `type`. */
function lesser(a: string, b: string, type: string | undefined, larger = false): string {
  const order = type === "int64" ? Number(BigInt(a) - BigInt(b)) : compareCodePoints(a, b);
  return (larger ? order >= 0 : order <= 0) ? a : b;
}

/** Compares strings by code point, as their UTF-8 bytes compare (JS `<` compares UTF-16 units). */
function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i] as string).codePointAt(0) as number;
    const e = (y[i] as string).codePointAt(0) as number;
    if (d !== e) return d - e;
  }
  return x.length - y.length;
}
