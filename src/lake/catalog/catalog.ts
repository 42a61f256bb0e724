import { DuckTailError, ErrorCode } from "../../protocol/errors";
import type {
  CatalogExport,
  ErasureRecord,
  ErasureSubject,
  RetentionReport,
  SnapshotInfo,
  SnapshotList,
} from "../../protocol/lake";
import { commitRound, FLUSH_MEMORY_MS } from "./commit";
import { openCatalog } from "./create";
import { EVENT_COLUMNS, hourOf, TABLE_ID } from "./events-table";
import { GRAINS, type Grain, periodEnd } from "./rollup-tables";
import { DUCKLAKE_SOURCE, DUCKLAKE_VERSION, SPEC_TABLES, sqliteDdl } from "./spec";
import { type CatalogSql, catalogTime, parseCatalogTime, type SqlValue } from "./sql";
import { head, lakeTables, meta, metadata, tableOfKey } from "./tables";
import type { CatalogDb, CatalogSettings, CommitRequest, CommitResult, SnapshotFile, TableKey } from "./types";

export type { CatalogSettings, CommitRequest, CommitResult, DeleteFileInfo, SnapshotFile } from "./types";

/**
 * A tenant's lake as a DuckLake catalog (spec 1.0, ./spec.ts): the table `events`, whose data
 * files are the Parquet objects the flushes and compactions wrote, and the rollup tables
 * (./rollup-tables.ts), made by the first change to one. A file is part of the table
 * from the snapshot that added it (`begin_snapshot`) until the one that removed it
 * (`end_snapshot`); readers pick a snapshot and read exactly its files, minus their delete files.
 *
 * Pure SQL over a {@link CatalogSql}: the Durable Object (./LakeCatalog.ts) runs it on its SQLite,
 * tests and tools on `node:sqlite`. One call of {@link Catalog.commit} is one transaction (a
 * group-commit round): its inserts share one snapshot, every other change gets one of its own.
 * This class reads, expires and exports; ./create makes a new catalog, ./commit writes snapshots.
 */

const HOUR_MS = 3_600_000;

export class Catalog {
  private readonly db: CatalogDb;
  private readonly sql: CatalogSql;

  constructor(sql: CatalogSql, settings: CatalogSettings) {
    this.sql = sql;
    this.db = { sql, settings, tables: lakeTables(settings) };
  }

  /** Opens the catalog, creating it on first use: the spec's tables, snapshot 0 (schema) and 1 (the events table). */
  init(now: number): void {
    openCatalog(this.db, now);
  }

  /** When the catalog was created (epoch ms): objects older than it predate it, not orphans of it. */
  createdAt(): number {
    return Number(meta(this.db, "created_at"));
  }

  // ---- commits ------------------------------------------------------------------------------

  /**
   * One group-commit round, in one transaction: every `insert` shares one snapshot, every other
   * change gets its own; each request gets its result, in order. A change that conflicts (a file
   * it removes is no longer part of the table) is refused alone.
   */
  commit(requests: readonly CommitRequest[], now: number): CommitResult[] {
    return commitRound(this.db, requests, now);
  }

  // ---- reading ------------------------------------------------------------------------------

  /** The latest snapshot's id. */
  latest(): number {
    return head(this.db).snapshot_id;
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

  /**
   * The data files of `snapshot` whose hour of receipt is in [from, to), each with its delete file;
   * of a rollup table (`table`: its grain), the files whose period starts in [from, to).
   */
  files(
    snapshot: number,
    from = Number.NEGATIVE_INFINITY,
    to = Number.POSITIVE_INFINITY,
    table: TableKey = "events",
  ): SnapshotFile[] {
    const { id, prefix } = this.db.tables[table];
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
      id,
    );
    const firstHour = Number.isFinite(from) ? from - (from % HOUR_MS) : from;
    const files: SnapshotFile[] = [];
    for (const r of rows) {
      const hour = hourOf(r.partition.split("/"));
      if (hour < firstHour || hour >= to) continue;
      files.push({
        id: r.data_file_id,
        key: prefix + r.path,
        hour,
        rows: r.record_count,
        bytes: r.file_size_bytes,
        deletes: r.delete_path === null ? null : { key: prefix + r.delete_path, count: r.delete_count ?? 0 },
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
      const table = tableOfKey(this.db, key);
      if (!table) return false;
      const path = key.slice(table.prefix.length);
      const known = this.sql.all(
        `SELECT 1 FROM ducklake_data_file WHERE path = ?1 AND table_id = ?3
         UNION ALL SELECT 1 FROM ducklake_delete_file WHERE path = ?1 AND table_id = ?3
         UNION ALL SELECT 1 FROM ducklake_files_scheduled_for_deletion WHERE path = ?2 LIMIT 1`,
        path,
        key,
        table.id,
      );
      return known.length === 0;
    });
  }

  /**
   * The latest snapshot's files that may hold rows of `subject`: those whose bounds of `user_id`
   * (or `anonymous_id`, or either) include the id, or that have no bounds for it. Files whose
   * bounds exclude it cannot hold it and are never read.
   */
  candidates(subject: ErasureSubject): SnapshotFile[] {
    const columns =
      subject.by === "any" ? ["user_id", "anonymous_id"] : [subject.by === "userId" ? "user_id" : "anonymous_id"];
    const ids = columns.map((name) => EVENT_COLUMNS.find((c) => c.name === name)?.id as number);
    const ruledOut = new Set(
      this.sql
        .all<{ data_file_id: number }>(
          `SELECT data_file_id FROM ducklake_file_column_stats WHERE table_id = ? AND column_id IN (${ids.join(", ")})
           GROUP BY data_file_id
           HAVING COUNT(*) = ? AND SUM(CASE WHEN null_count = value_count
                  OR (min_value IS NOT NULL AND max_value IS NOT NULL AND (? < min_value OR ? > max_value)) THEN 1 ELSE 0 END) = COUNT(*)`,
          TABLE_ID,
          ids.length,
          subject.id,
          subject.id,
        )
        .map((r) => r.data_file_id),
    );
    return this.files(this.latest()).filter((f) => !ruledOut.has(f.id));
  }

  /** Records a DELETE /users/<id> (what it removed, who asked); returns its record. */
  recordErasure(record: Omit<ErasureRecord, "id">): ErasureRecord {
    this.sql.exec(
      `INSERT INTO ducktail_erasures(requested_at, requested_by, subject_sha256, matched_by, buffered_rows, lake_rows, files_rewritten, snapshot_id, objects_gone_by)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      record.requestedAt,
      record.requestedBy,
      record.subjectSha256,
      record.matchedBy,
      record.bufferedRows,
      record.lakeRows,
      record.filesRewritten,
      record.snapshot,
      record.objectsGoneBy,
    );
    const id = this.sql.all<{ id: number }>(`SELECT MAX(erasure_id) AS id FROM ducktail_erasures`)[0]?.id as number;
    return { id, ...record };
  }

  /** The recorded erasures, newest first. */
  erasures(limit: number): ErasureRecord[] {
    return this.sql
      .all<Record<string, number | string | null>>(
        `SELECT * FROM ducktail_erasures ORDER BY erasure_id DESC LIMIT ?`,
        limit,
      )
      .map((r) => ({
        id: r.erasure_id as number,
        requestedAt: r.requested_at as number,
        requestedBy: r.requested_by as string,
        subjectSha256: r.subject_sha256 as string,
        matchedBy: r.matched_by as ErasureSubject["by"],
        bufferedRows: r.buffered_rows as number,
        lakeRows: r.lake_rows as number,
        filesRewritten: r.files_rewritten as number,
        snapshot: r.snapshot_id as number | null,
        objectsGoneBy: r.objects_gone_by as number,
      }));
  }

  // ---- retention ----------------------------------------------------------------------------

  /** The tenant's own retention of events in days (PUT /lake/retention), or null: the default applies. */
  retentionDays(): number | null {
    const value = meta(this.db, "retention_days");
    return value === null ? null : Number(value);
  }

  /** Sets (or, with null, drops) the tenant's own retention. */
  setRetentionDays(days: number | null): void {
    if (days === null) this.sql.exec(`DELETE FROM ducktail_catalog WHERE key = 'retention_days'`);
    else this.sql.exec(`INSERT OR REPLACE INTO ducktail_catalog VALUES ('retention_days', ?)`, String(days));
  }

  /**
   * Removes from the events table, in one snapshot, every file of an hour that ended at or before
   * `before` (epoch ms; null: none), and from each rollup table, in one snapshot per table, every
   * file of a period that ended at or before `rollupsBefore` (their own, longer retention); a
   * period that ends after its cutoff is never touched. The files stay in R2 for the snapshots
   * before these, until those expire and the cleanup deletes them.
   */
  retain(before: number | null, now: number, rollupsBefore: number | null = null): RetentionReport {
    const report: RetentionReport = { before, snapshot: null, files: 0, rows: 0, rollupFiles: 0 };
    if (before !== null) {
      const expired = this.files(this.latest(), Number.NEGATIVE_INFINITY, before).filter(
        (f) => f.hour + HOUR_MS <= before,
      );
      report.files = expired.length;
      for (const f of expired) report.rows += f.rows - (f.deletes?.count ?? 0);
      const label = `hours before ${new Date(before).toISOString().slice(0, 13)}h`;
      report.snapshot = this.removeFiles("events", expired, label, now) ?? report.snapshot;
    }
    if (rollupsBefore !== null) {
      for (const grain of GRAINS) {
        const expired = this.files(this.latest(), Number.NEGATIVE_INFINITY, rollupsBefore, grain).filter(
          (f) => periodEnd(grain, f.hour) <= rollupsBefore,
        );
        report.rollupFiles += expired.length;
        const label = `${grain} rollups before ${new Date(rollupsBefore).toISOString().slice(0, 10)}`;
        report.snapshot = this.removeFiles(grain, expired, label, now) ?? report.snapshot;
      }
    }
    return report;
  }

  /** Removes `files` from `table` in one snapshot (none when there are none); returns it. */
  private removeFiles(table: TableKey, files: SnapshotFile[], label: string, now: number): number | null {
    if (files.length === 0) return null;
    const rollup = table === "events" ? undefined : (table as Grain);
    const [result] = this.commit(
      [{ change: "delete", rollup, remove: files.map((f) => f.key), message: `retention: ${label}` }],
      now,
    );
    // One transaction in a single-threaded object: the files listed above are still the table's.
    if (!result?.ok) throw new Error(`retention conflicted: ${result?.ok === false ? result.conflict : "no result"}`);
    return result.snapshot;
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
      for (const { id, prefix } of Object.values(this.db.tables)) {
        this.sql.exec(
          `INSERT INTO ducklake_files_scheduled_for_deletion
           SELECT data_file_id, ?1 || path, 1, ?2 FROM ducklake_data_file WHERE end_snapshot <= ?3 AND table_id = ?4
           UNION ALL SELECT delete_file_id, ?1 || path, 1, ?2 FROM ducklake_delete_file WHERE end_snapshot <= ?3 AND table_id = ?4`,
          prefix,
          catalogTime(now),
          oldest,
          id,
        );
      }
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
    const path = dataPath ?? (metadata(this.db, "data_path") as string);
    const rows = tables.ducklake_metadata?.rows ?? [];
    for (const row of rows) if (row[0] === "data_path") row[1] = path;
    return {
      version: DUCKLAKE_VERSION,
      source: DUCKLAKE_SOURCE,
      dataPath: path,
      statements: sqliteDdl(),
      tables,
    };
  }

  // ---- helpers ------------------------------------------------------------------------------
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
