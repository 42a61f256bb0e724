import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Miniflare } from "miniflare";
import { query } from "./duckdb";

/** `events/tenant=<t>/dt=<YYYY-MM-DD>/hour=<HH>/<replica>-<seq>.parquet` */
export const OBJECT_KEY = /^events\/tenant=([^/]+)\/dt=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\/([^/]+)-(\d+)\.parquet$/;

/** A row as DuckDB reads it back, with timestamps as epoch ms and the hive path columns. */
export interface LakeRow {
  id: string;
  tenant: string;
  ts: number;
  received_at: number;
  source: string;
  type: string;
  importance: string;
  user_id: string | null;
  anonymous_id: string | null;
  session_id: string | null;
  data: string;
  replica: string;
  seq: number;
  /** From the object's path (hive partitioning). */
  dt: string;
  hour: string;
  filename: string;
}

/**
 * Copies every object under `prefix` (the whole bucket for "") from the Worker's EVENTS bucket into
 * a fresh temp dir, keeping the keys as paths. Returns the dir and the keys, sorted.
 */
export async function downloadBucket(mf: Miniflare, prefix = ""): Promise<{ dir: string; keys: string[] }> {
  const bucket = await mf.getR2Bucket("EVENTS");
  const dir = mkdtempSync(join(tmpdir(), "ducktail-lake-"));
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor });
    for (const obj of page.objects) {
      const body = await bucket.get(obj.key);
      if (!body) throw new Error(`listed object ${obj.key} has no body`);
      const path = join(dir, obj.key);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, new Uint8Array(await body.arrayBuffer()));
      keys.push(obj.key);
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return { dir, keys: keys.sort() };
}

/** The lake's objects (everything under `events/`), as `downloadBucket` copies them. */
export function downloadEvents(mf: Miniflare): Promise<{ dir: string; keys: string[] }> {
  return downloadBucket(mf, "events/");
}

/** Every event in the downloaded lake, read with DuckDB's read_parquet over the hive layout. */
export async function readLake(dir: string): Promise<LakeRow[]> {
  // The files carry their own `tenant` column; the path's `tenant=` partition is compared via filename.
  const rows = await query(`
    SELECT id, tenant, epoch_ms(ts) AS ts, epoch_ms(received_at) AS received_at, source, type, importance,
           user_id, anonymous_id, session_id, data, replica, seq, dt, hour, filename
    FROM read_parquet('${dir}/**/*.parquet', hive_partitioning = true, hive_types_autocast = false, filename = true)
    ORDER BY seq`);
  return rows.map((r) => ({
    ...(r as unknown as LakeRow),
    ts: Number(r.ts),
    received_at: Number(r.received_at),
    seq: Number(r.seq),
    filename: String(r.filename).slice(dir.length + 1),
  }));
}

/** Downloads and reads the whole lake in one go (the temp copy is removed afterwards). */
export async function lakeRows(mf: Miniflare): Promise<{ rows: LakeRow[]; keys: string[] }> {
  const { dir, keys } = await downloadEvents(mf);
  try {
    return { rows: keys.length ? await readLake(dir) : [], keys };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Counts how often each value occurs; returns the ones seen more than once. */
export function duplicates<T>(values: T[]): T[] {
  const seen = new Map<T, number>();
  for (const v of values) seen.set(v, (seen.get(v) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([v]) => v);
}
