import type { ColumnStats, DataFileInfo } from "../../columns/stats";
import { partitionValues } from "./events-table";
import { ensureRollupTables } from "./rollup-create";
import { catalogTime } from "./sql";
import { checkKey, fileId, head, type LiveFile, liveFile } from "./tables";
import type { CatalogDb, CommitRequest, CommitResult, DeleteFileInfo, LakeTable } from "./types";

// Commits: one group-commit round in one transaction, the snapshots it writes, and the table-wide
// statistics they widen.

const HOUR_MS = 3_600_000;
/** How long a committed flush is remembered, so a retry of it commits nothing (see flushSnapshot). */
export const FLUSH_MEMORY_MS = 7 * 24 * HOUR_MS;

/**
 * One group-commit round, in one transaction: every `insert` shares one snapshot, every other
 * change gets its own; each request gets its result, in order. A change that conflicts (a file
 * it removes is no longer part of the table) is refused alone.
 */
export function commitRound(db: CatalogDb, requests: readonly CommitRequest[], now: number): CommitResult[] {
  return db.sql.transaction(() => {
    // The rollup tables are made by the first change to one (a snapshot of their own).
    if (requests.some((r) => r.rollup)) ensureRollupTables(db, now);
    const results: CommitResult[] = new Array(requests.length);
    const inserts: number[] = [];
    requests.forEach((r, i) => {
      if (r.change === "insert" && !r.rollup && !r.remove?.length && !r.deletes?.length) inserts.push(i);
    });
    if (inserts.length > 0) commitInserts(db, requests, inserts, results, now);
    requests.forEach((r, i) => {
      if (!results[i]) results[i] = commitChange(db, r, now);
    });
    return results;
  });
}

/** The flushes of a round: one snapshot adding every file not committed before. */
function commitInserts(
  db: CatalogDb,
  requests: readonly CommitRequest[],
  which: number[],
  results: CommitResult[],
  now: number,
) {
  const events = db.tables.events;
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
      const done = flushSnapshot(db, r.flush.replica, r.flush.seq);
      if (done !== null) {
        results[i] = { ok: true, snapshot: done, duplicate: true };
        continue;
      }
      flushes.set(id, r.flush);
    }
    let fresh = 0;
    for (const f of r.add ?? []) {
      checkKey(events, f.key);
      if (seen.has(f.key) || fileId(db, events, f.key) !== null) continue;
      seen.add(f.key);
      files.push(f);
      fresh++;
    }
    if (fresh === 0 && !r.flush) results[i] = { ok: true, snapshot: head(db).snapshot_id, duplicate: true };
    else adding.push(i);
  }
  if (adding.length === 0 && repeated.length === 0) return;
  const messages = adding.map((i) => {
    const r = requests[i] as CommitRequest;
    return r.message ?? (r.flush ? `flush ${r.flush.replica}#${r.flush.seq}` : "insert");
  });
  const snapshot =
    files.length > 0
      ? writeSnapshot(db, events, now, `inserted_into_table:${events.id}`, messages.join(", "), files, [], [])
      : head(db).snapshot_id;
  for (const { replica, seq } of flushes.values()) {
    db.sql.exec(`INSERT INTO ducktail_flushes VALUES (?, ?, ?, ?)`, replica, seq, snapshot, now);
  }
  for (const i of adding) results[i] = { ok: true, snapshot, duplicate: files.length === 0 };
  for (const i of repeated) results[i] = { ok: true, snapshot, duplicate: true };
}

/**
 * The snapshot that committed this replica's flush `seq`, or null. Each flush is remembered for
 * FLUSH_MEMORY_MS, far longer than any retry waits; a dead letter replayed under its original
 * seq was never committed, so it is.
 */
function flushSnapshot(db: CatalogDb, replica: string, seq: number): number | null {
  const row = db.sql.all<{ snapshot_id: number }>(
    `SELECT snapshot_id FROM ducktail_flushes WHERE replica = ? AND flush_seq = ?`,
    replica,
    seq,
  )[0];
  return row ? row.snapshot_id : null;
}

/** A compaction, deletion or retention change: one snapshot of its own, or a conflict. */
function commitChange(db: CatalogDb, r: CommitRequest, now: number): CommitResult {
  const table = db.tables[r.rollup ?? "events"];
  const removed: LiveFile[] = [];
  for (const key of r.remove ?? []) {
    const file = liveFile(db, table, key);
    if (!file) return { ok: false, conflict: `${key} is not part of the table` };
    removed.push(file);
  }
  for (const d of r.deletes ?? []) {
    if (!liveFile(db, table, d.dataKey)) return { ok: false, conflict: `${d.dataKey} is not part of the table` };
    checkKey(table, d.key);
  }
  const added: DataFileInfo[] = [];
  for (const f of r.add ?? []) {
    checkKey(table, f.key);
    if (fileId(db, table, f.key) !== null) return { ok: false, conflict: `${f.key} was committed before` };
    added.push(f);
  }
  const change =
    r.change === "compact"
      ? `compacted_table:${table.id}`
      : r.change === "delete"
        ? `deleted_from_table:${table.id}`
        : `inserted_into_table:${table.id}`;
  const snapshot = writeSnapshot(db, table, now, change, r.message ?? r.change, added, removed, r.deletes ?? []);
  return { ok: true, snapshot, duplicate: false };
}

/** Writes a snapshot that adds `added`, removes `removed` and adds `deletes`; returns its id. */
function writeSnapshot(
  db: CatalogDb,
  table: LakeTable,
  now: number,
  change: string,
  message: string,
  added: readonly DataFileInfo[],
  removed: readonly LiveFile[],
  deletes: readonly DeleteFileInfo[],
): number {
  const last = head(db);
  const snapshot = last.snapshot_id + 1;
  let nextFileId = last.next_file_id;
  const stats = db.sql.all<{ record_count: number; next_row_id: number; file_size_bytes: number }>(
    `SELECT record_count, next_row_id, file_size_bytes FROM ducklake_table_stats WHERE table_id = ?`,
    table.id,
  )[0] as { record_count: number; next_row_id: number; file_size_bytes: number };
  let rowsAdded = 0;
  let rowsRemoved = 0;
  let bytesDelta = 0;
  let nextRowId = stats.next_row_id;

  for (const f of added) {
    const id = nextFileId++;
    db.sql.exec(
      `INSERT INTO ducklake_data_file VALUES (?, ?, ?, NULL, ?, ?, 1, 'parquet', ?, ?, ?, ?, ?, NULL, ?, NULL)`,
      id,
      table.id,
      snapshot,
      id,
      f.key.slice(table.prefix.length),
      f.rows,
      f.bytes,
      f.footerBytes,
      nextRowId,
      table.partitionId,
      table.mappingId,
    );
    nextRowId += f.rows;
    rowsAdded += f.rows;
    bytesDelta += f.bytes;
    for (const [k, value] of partitionValues(f.hour).slice(0, table.partitionDepth).entries()) {
      db.sql.exec(`INSERT INTO ducklake_file_partition_value VALUES (?, ?, ?, ?)`, id, table.id, k, value);
    }
    for (const c of f.columns) {
      const column = table.columns.find((t) => t.name === c.column);
      if (!column) continue; // not a column of the table
      db.sql.exec(
        `INSERT INTO ducklake_file_column_stats VALUES (?, ?, ?, NULL, ?, ?, ?, ?, NULL, NULL)`,
        id,
        table.id,
        column.id,
        c.valueCount,
        c.nullCount,
        c.min,
        c.max,
      );
      widenColumnStats(db, table, column.id, c);
    }
  }
  for (const f of removed) {
    const deleted = db.sql.all<{ n: number }>(
      `SELECT COALESCE(SUM(delete_count), 0) AS n FROM ducklake_delete_file WHERE data_file_id = ? AND end_snapshot IS NULL`,
      f.data_file_id,
    )[0]?.n as number;
    db.sql.exec(`UPDATE ducklake_data_file SET end_snapshot = ? WHERE data_file_id = ?`, snapshot, f.data_file_id);
    db.sql.exec(
      `UPDATE ducklake_delete_file SET end_snapshot = ? WHERE data_file_id = ? AND end_snapshot IS NULL`,
      snapshot,
      f.data_file_id,
    );
    rowsRemoved += f.record_count - deleted;
    bytesDelta -= f.file_size_bytes;
  }
  for (const d of deletes) {
    const data = liveFile(db, table, d.dataKey) as LiveFile;
    const previous = db.sql.all<{ delete_count: number }>(
      `SELECT delete_count FROM ducklake_delete_file WHERE data_file_id = ? AND end_snapshot IS NULL`,
      data.data_file_id,
    )[0];
    // At most one delete file per data file in a snapshot: a new one replaces (and includes) the old.
    db.sql.exec(
      `UPDATE ducklake_delete_file SET end_snapshot = ? WHERE data_file_id = ? AND end_snapshot IS NULL`,
      snapshot,
      data.data_file_id,
    );
    const id = nextFileId++;
    db.sql.exec(
      `INSERT INTO ducklake_delete_file VALUES (?, ?, ?, NULL, ?, ?, 1, 'parquet', ?, ?, ?, NULL, NULL)`,
      id,
      table.id,
      snapshot,
      data.data_file_id,
      d.key.slice(table.prefix.length),
      d.count,
      d.bytes,
      d.footerBytes,
    );
    rowsRemoved += d.count - (previous?.delete_count ?? 0);
  }
  db.sql.exec(
    `UPDATE ducklake_table_stats SET record_count = ?, next_row_id = ?, file_size_bytes = ? WHERE table_id = ?`,
    stats.record_count + rowsAdded - rowsRemoved,
    nextRowId,
    stats.file_size_bytes + bytesDelta,
    table.id,
  );
  db.sql.exec(
    `INSERT INTO ducklake_snapshot VALUES (?, ?, ?, ?, ?)`,
    snapshot,
    catalogTime(now),
    last.schema_version,
    last.next_catalog_id,
    nextFileId,
  );
  const extra = {
    rowsAdded,
    rowsRemoved,
    filesAdded: added.length,
    filesRemoved: removed.length,
    deleteFiles: deletes.length,
  };
  db.sql.exec(
    `INSERT INTO ducklake_snapshot_changes VALUES (?, ?, ?, ?, ?)`,
    snapshot,
    change,
    db.settings.author,
    message,
    JSON.stringify(extra),
  );
  return snapshot;
}

/** Widens the table-wide bounds of a column by one file's. */
function widenColumnStats(db: CatalogDb, table: LakeTable, columnId: number, c: ColumnStats): void {
  const row = db.sql.all<{ contains_null: number; min_value: string | null; max_value: string | null }>(
    `SELECT contains_null, min_value, max_value FROM ducklake_table_column_stats WHERE table_id = ? AND column_id = ?`,
    table.id,
    columnId,
  )[0];
  const type = table.columns[columnId - 1]?.type;
  if (!row) {
    db.sql.exec(
      `INSERT INTO ducklake_table_column_stats VALUES (?, ?, ?, 0, ?, ?, NULL)`,
      table.id,
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
  db.sql.exec(
    `UPDATE ducklake_table_column_stats SET contains_null = ?, min_value = ?, max_value = ? WHERE table_id = ? AND column_id = ?`,
    row.contains_null || c.nullCount > 0 ? 1 : 0,
    min,
    max,
    table.id,
    columnId,
  );
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
