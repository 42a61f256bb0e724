import type { LakeFile, LakeFileList } from "../../src/protocol/lake";
import { bufferedSelect, eventsIPC, type QueriedEvent } from "./buffered";
import { referencedColumns } from "./columns";
import { rowGroupBounds } from "./footer";
import { type BlobLike, type LakeObjects, lakeObjects } from "./objects";
import { EVENT_TABLE_COLUMNS } from "./schema";

/**
 * Loads the DuckDB table `events` for one SQL query from the lake's objects, reading only what
 * the query needs: the files of its time range (the catalog's list, GET /lake/files), of each
 * file its footer and then, row group by row group, only the columns the SQL names, through HTTP
 * Range requests (GET /lake/object); then the replicas' still-buffered rows (GET
 * /events?buffered=only), less those a flush already put in the lake. Memory holds one row group
 * of the named columns at a time besides the table itself. Shared by `ducktail query` (Node) and
 * the dashboard's Explorer (browser): they differ only in the DuckDB and parquet-wasm they pass.
 */

/** Which events: the range of receipt [from, to) (epoch ms), and a past snapshot (then no buffers). */
export interface LakeRange {
  from: number;
  to: number;
  snapshot?: number | undefined;
  asOf?: number | undefined;
}

/** Exact values the rows must have (the CLI's --source, --type, --importance). */
export interface LakeFilter {
  source?: string[] | undefined;
  type?: string[] | undefined;
  importance?: string[] | undefined;
}

/** The deployment: its base URL, the read key, and its two JSON answers. */
export interface LakeSource {
  base: string;
  key?: string | undefined;
  /** GET /lake/files for the range. */
  files(range: LakeRange): Promise<LakeFileList>;
  /** GET /events?buffered=only&format=ndjson for the range and filter. */
  buffered(range: LakeRange, filter: LakeFilter): Promise<QueriedEvent[]>;
}

/** The DuckDB the table is built in (duckdb-wasm, blocking in Node or async in a browser). */
export interface EventsDb {
  run(sql: string): Promise<void>;
  /** The first column of the first row of a query's answer. */
  value(sql: string): Promise<unknown>;
  /** Creates table `name` from an Arrow IPC stream. */
  insertIPC(name: string, ipc: Uint8Array): Promise<void>;
}

/** What of parquet-wasm is used: its async reader over a Blob-like handle, and the whole-file reader. */
export interface ParquetReader {
  ParquetFile: { fromFile(handle: BlobLike): Promise<RemoteParquetFile> };
  readParquet(bytes: Uint8Array, options?: { columns?: string[] }): { intoIPCStream(): Uint8Array };
}
export interface RemoteParquetFile {
  metadata(): { numRowGroups(): number; rowGroup(i: number): { numRows(): number } };
  schema(): { indexOf(name: string): number };
  read(options: { rowGroups?: number[]; columns?: string[] }): Promise<{ intoIPCStream(): Uint8Array }>;
  free(): void;
}

export interface LoadOptions {
  sql: string;
  range: LakeRange;
  filter?: LakeFilter;
  /** Keep only the newest `limit` rows (by receipt). Default: every row of the range. */
  limit?: number | undefined;
  source: LakeSource;
  parquet: ParquetReader;
  db: EventsDb;
}

/** What a load read, against what the lake holds for the range. */
export interface LoadStats {
  snapshot: number;
  /** The columns read (the SQL's, plus those the range, filter and deduplication need). */
  columns: string[];
  files: number;
  rowGroups: number;
  rowGroupsRead: number;
  /** Bytes of the objects' answers (footers, column chunks, delete files). */
  bytesRead: number;
  /** Total size of the range's objects. */
  lakeBytes: number;
  requests: number;
  lakeRows: number;
  bufferedRows: number;
  /** Rows of `events` after the load. */
  rows: number;
}

/** Files whose footers are fetched ahead of the one being read. */
const FOOTERS_AHEAD = 8;

const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** Builds `events` in `db` for `sql` (see the module's comment) and tells what it read. */
export async function loadEvents(o: LoadOptions): Promise<LoadStats> {
  const filter = o.filter ?? {};
  const live = o.range.snapshot === undefined && o.range.asOf === undefined;
  // Buffers before the file list: a row flushed in between is then in both (and deduplicated
  // below), never in neither.
  const buffered = live ? await o.source.buffered(o.range, filter) : [];
  const list = await o.source.files(o.range);
  const needed = new Set(referencedColumns(o.sql));
  needed.add("received_at");
  for (const [column, values] of Object.entries(filter)) if (values?.length) needed.add(column);
  if (buffered.length > 0) for (const c of ["replica", "seq"]) needed.add(c);
  const columns = EVENT_TABLE_COLUMNS.filter(([name]) => needed.has(name));
  await o.db.run("DROP TABLE IF EXISTS events");
  await o.db.run(`CREATE TABLE events (${columns.map(([name, type]) => `"${name}" ${type}`).join(", ")})`);

  const where = [
    `epoch_ms(received_at::TIMESTAMP) >= ${Math.floor(o.range.from)}`,
    `epoch_ms(received_at::TIMESTAMP) < ${Math.ceil(o.range.to)}`,
    ...Object.entries(filter)
      .filter(([, values]) => values?.length)
      .map(([column, values]) => `${column} IN (${(values as string[]).map(quote).join(", ")})`),
  ].join(" AND ");
  const stats: LoadStats = {
    snapshot: list.snapshot,
    columns: columns.map(([name]) => name),
    files: list.files.length,
    rowGroups: 0,
    rowGroupsRead: 0,
    bytesRead: 0,
    lakeBytes: list.bytes,
    requests: 0,
    lakeRows: 0,
    bufferedRows: 0,
    rows: 0,
  };
  const objects = lakeObjects(o.source.base, o.source.key);
  // Footers are fetched FOOTERS_AHEAD files ahead of the one being read: over many small files
  // (a month of hours) the reader waits on round trips, not on each file in turn.
  const footers = new Map<number, Promise<Uint8Array>>();
  const footerOf = (i: number) => {
    const file = list.files[i];
    if (!file || footers.has(i)) return;
    const footer = objects.footer(file.key, file.bytes);
    footer.catch(() => {}); // awaited, and so reported, when its file's turn comes
    footers.set(i, footer);
  };
  for (let i = 0; i < list.files.length; i++) {
    for (let ahead = i; ahead <= i + FOOTERS_AHEAD; ahead++) footerOf(ahead);
    const footer = footers.get(i) as Promise<Uint8Array>;
    footers.delete(i);
    await loadFile(o, objects, list.files[i] as LakeFile, footer, stats.columns, where, stats);
  }
  stats.bytesRead = objects.bytes;
  stats.requests = objects.requests;
  stats.lakeRows = await count(o.db);

  if (buffered.length > 0) {
    await o.db.insertIPC("lake_buffered", eventsIPC(buffered));
    await o.db.run(
      `INSERT INTO events BY NAME SELECT ${stats.columns.map(bufferedSelect).join(", ")} FROM lake_buffered b ` +
        "WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.replica = b.replica AND e.seq = b.seq::BIGINT)",
    );
    await o.db.run("DROP TABLE lake_buffered");
  }
  if (o.limit !== undefined) {
    await o.db.run(
      `DELETE FROM events WHERE rowid NOT IN (SELECT rowid FROM events ORDER BY received_at DESC LIMIT ${o.limit})`,
    );
  }
  stats.rows = await count(o.db);
  stats.bufferedRows = stats.rows - stats.lakeRows;
  return stats;
}

/** One object: its footer, then each row group's columns as a piece of `events`, less its deleted rows. */
async function loadFile(
  o: LoadOptions,
  objects: LakeObjects,
  file: LakeFile,
  footer: Promise<Uint8Array>,
  columns: string[],
  where: string,
  stats: LoadStats,
): Promise<void> {
  const deletes = file.deletes !== null;
  if (file.deletes) {
    const positions = o.parquet.readParquet(await objects.whole(file.deletes.key), { columns: ["pos"] });
    await o.db.insertIPC("lake_deletes", positions.intoIPCStream());
  }
  // Row groups whose received_at bounds miss the range are never fetched; nor is a file with none left.
  const groups = rowGroupBounds(await footer, "received_at");
  stats.rowGroups += groups.length;
  const wanted = groups.map((g) => g.min === null || g.max === null || (g.max >= o.range.from && g.min < o.range.to));
  if (!wanted.includes(true)) {
    objects.forget(file.key);
    if (deletes) await o.db.run("DROP TABLE lake_deletes");
    return;
  }
  // Every parquet-wasm call races the objects' failure: a request that failed for good ends the load.
  const guard = <T>(p: Promise<T>) => Promise.race([p, objects.failed]);
  const parquet = await guard(o.parquet.ParquetFile.fromFile(objects.blob(file.key, file.bytes)));
  try {
    // Files written before the context columns have none: those stay null.
    const schema = parquet.schema();
    const present = columns.filter((c) => schema.indexOf(c) >= 0);
    const select = present
      .map((c) => (c === "ts" || c === "received_at" ? `${c}::TIMESTAMP AS ${c}` : `"${c}"`))
      .join(", ");
    const meta = parquet.metadata();
    let offset = 0;
    for (let g = 0; g < meta.numRowGroups(); g++) {
      const rows = meta.rowGroup(g).numRows();
      if (wanted[g] === false) {
        offset += rows;
        continue;
      }
      stats.rowGroupsRead++;
      const piece = await guard(parquet.read({ rowGroups: [g], columns: present }));
      await o.db.insertIPC("lake_piece", piece.intoIPCStream());
      const kept = deletes ? ` AND rowid + ${offset} NOT IN (SELECT pos FROM lake_deletes)` : "";
      await o.db.run(`INSERT INTO events BY NAME SELECT ${select} FROM lake_piece WHERE ${where}${kept}`);
      await o.db.run("DROP TABLE lake_piece");
      offset += rows;
    }
  } finally {
    parquet.free();
    objects.forget(file.key);
    if (deletes) await o.db.run("DROP TABLE lake_deletes");
  }
}

async function count(db: EventsDb): Promise<number> {
  return Number(await db.value("SELECT count(*) FROM events"));
}
