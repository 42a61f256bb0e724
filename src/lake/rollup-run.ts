import { encodeTable, readTable } from "../columns/parquet";
import { describeFile } from "../columns/stats";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import { ROLLUP_GRAINS, type RollupAnswer } from "../protocol/lake";
import { PARQUET } from "./bucket";
import type { TenantCatalog } from "./catalog/client";
import { finerGrain, type Grain, periodEnd, periodStart } from "./catalog/rollup-tables";
import type { SnapshotFile } from "./catalog/types";
import { isCompacted, nameOf, rollupKey } from "./keys";
import { time } from "./query";
import { mergeRollups, type RollupEntry, readRollups, rollupEvents, rollupRow, rollupTable } from "./rollups";

/**
 * Rollups on stored objects: a period's rows written as one Parquet file of its grain's table and
 * committed in place of the period's earlier file (`rollups/tenant=<t>/grain=<g>/…`); the closed
 * days and months rolled up from the finer table; GET /rollups read from the catalog's files.
 * Every file is found through the catalog, never a bucket listing.
 */

const READ_CONCURRENCY = 6;
/** A day or month is rolled up this long after its end; a later hour still rolls it up again. */
const CLOSED_AFTER_MS = 3_600_000;

/**
 * Writes `rows` as the rollup of `period` and commits it in place of the period's earlier file, if
 * any (one snapshot). Returns the snapshot, or null when there was nothing to write. A commit that
 * conflicts (another run replaced the period meanwhile) deletes its object, which no snapshot listed.
 */
export async function writeRollup(
  bucket: R2Bucket,
  catalog: TenantCatalog,
  grain: Grain,
  period: number,
  rows: RollupEntry[],
): Promise<{ snapshot: number; key: string } | null> {
  const earlier = await periodFiles(catalog, grain, period);
  if (rows.length === 0 && earlier.length === 0) return null;
  const table = rollupTable(rows);
  const body = encodeTable(table);
  const key = rollupKey(catalog.tenant, grain, period);
  await bucket.put(key, body, { httpMetadata: { contentType: PARQUET } });
  const committed = await catalog.commit({
    change: earlier.length > 0 ? "compact" : "insert",
    rollup: grain,
    remove: earlier.map((f) => f.key),
    add: [describeFile(key, period, body, table)],
    message: `rollup ${grain} ${new Date(period).toISOString().slice(0, grain === "hour" ? 13 : grain === "day" ? 10 : 7)}`,
  });
  if (!committed.ok) {
    await bucket.delete(key);
    throw new Error(
      `the ${grain} rollup of ${new Date(period).toISOString()} changed meanwhile: ${committed.conflict}`,
    );
  }
  return { snapshot: committed.snapshot, key };
}

/**
 * The hourly rollup right after an hour's compaction; returns its key ("" when none). A failure leaves the hour to
 * `rollupClosedPeriods`, which rolls up every compacted hour without a rollup as new as its files.
 */
export async function writeHourRollup(
  bucket: R2Bucket,
  catalog: TenantCatalog,
  hour: number,
  rows: RollupEntry[],
): Promise<string> {
  try {
    return (await writeRollup(bucket, catalog, "hour", hour, rows))?.key ?? "";
  } catch (err) {
    console.error(`ducktail: the hourly rollup of ${catalog.tenant} ${new Date(hour).toISOString()} failed`, err);
    return "";
  }
}

/**
 * Rolls up the compacted hours whose hourly rollup is missing or older than their files (one that
 * failed after its compaction, hours compacted before the rollup tables, files an erasure
 * rewrote), `limit` of them oldest first; returns how many it wrote.
 */
export async function rollupCompactedHours(bucket: R2Bucket, catalog: TenantCatalog, limit = 24): Promise<number> {
  const read = await catalog.read({});
  if ("missing" in read) throw new Error(read.missing);
  const hours = new Map<number, SnapshotFile[]>();
  for (const f of read.files) hours.set(f.hour, [...(hours.get(f.hour) ?? []), f]);
  const rolled = new Map<number, number>();
  for (const f of await tableFiles(catalog, "hour")) rolled.set(f.hour, Math.max(rolled.get(f.hour) ?? 0, f.id));
  let written = 0;
  for (const [hour, files] of [...hours].sort((a, b) => a[0] - b[0])) {
    if (written >= limit) break;
    if (!isCompacted(files.map((f) => nameOf(f.key))) || files.some((f) => f.deletes)) continue;
    if (files.every((f) => f.id < (rolled.get(hour) ?? 0))) continue;
    const rows: RollupEntry[] = [];
    for (const f of files) {
      const body = await bucket.get(f.key);
      if (!body) throw new Error(`${f.key} is listed by the catalog but missing from the bucket`);
      rows.push(...rollupEvents(readTable(new Uint8Array(await body.arrayBuffer())), hour));
    }
    await writeRollup(bucket, catalog, "hour", hour, mergeRollups(rows, hour));
    written++;
  }
  return written;
}

/**
 * Rolls up every closed day, then every closed month, whose rollup is missing or older than a
 * file of the finer grain in it (a late hour compacted after its day was rolled up): the finer
 * rows merged, sketches into sketches. Returns how many periods it wrote.
 */
export async function rollupClosedPeriods(bucket: R2Bucket, catalog: TenantCatalog, now: number): Promise<number> {
  let written = 0;
  for (const grain of ["day", "month"] as const) {
    const finer = finerGrain(grain) as Grain;
    const [inputs, outputs] = await Promise.all([tableFiles(catalog, finer), tableFiles(catalog, grain)]);
    const newest = new Map<number, number>();
    for (const f of outputs) newest.set(f.hour, Math.max(newest.get(f.hour) ?? 0, f.id));
    const periods = new Map<number, { key: string; id: number }[]>();
    for (const f of inputs) {
      const period = periodStart(grain, f.hour);
      // Closed an hour after its end: its last hour is compacted by then (grace of 15 minutes).
      if (periodEnd(grain, period) + CLOSED_AFTER_MS > now) continue;
      periods.set(period, [...(periods.get(period) ?? []), f]);
    }
    for (const [period, files] of [...periods].sort((a, b) => a[0] - b[0])) {
      if (files.every((f) => f.id < (newest.get(period) ?? 0))) continue;
      const rows = (
        await readFiles(
          bucket,
          files.map((f) => f.key),
        )
      ).flat();
      await writeRollup(bucket, catalog, grain, period, mergeRollups(rows, period));
      written++;
    }
  }
  return written;
}

/** The default and the longest range of GET /rollups per grain: each reads at most a few hundred files. */
const RANGES: Record<Grain, { fallback: number; max: number; label: string }> = {
  hour: { fallback: 86_400_000, max: 31 * 86_400_000, label: "31 days" },
  day: { fallback: 31 * 86_400_000, max: 3 * 366 * 86_400_000, label: "3 years" },
  month: { fallback: 366 * 86_400_000, max: 50 * 366 * 86_400_000, label: "50 years" },
};

/**
 * GET /rollups' query: `grain` (hour, day or month: required), `from` and `to` (epoch ms or
 * ISO-8601; `to` defaults to now, `from` to a day, 31 days or a year before it). `from` is taken
 * back to the start of its period, so the period holding it is in the answer.
 */
export function parseRollupQuery(url: URL, now = Date.now()): { grain: Grain; from: number; to: number } {
  const p = url.searchParams;
  const grain = p.get("grain") as Grain | null;
  if (grain === null || !ROLLUP_GRAINS.includes(grain)) {
    throw new DuckTailError(ErrorCode.badRequest, `grain must be one of ${ROLLUP_GRAINS.join(", ")}`);
  }
  const range = RANGES[grain];
  const to = time(p.get("to"), now, "to");
  const from = periodStart(grain, time(p.get("from"), to - range.fallback, "from"));
  if (!(from < to) || to - from > range.max) {
    throw new DuckTailError(
      ErrorCode.badRequest,
      `from must be before to, at most ${range.label} apart for grain=${grain}`,
    );
  }
  return { grain, from, to };
}

/** GET /rollups: the rows of the `grain` periods starting in [from, to), from the latest snapshot's files. */
export async function queryRollups(
  bucket: R2Bucket,
  catalog: TenantCatalog,
  grain: Grain,
  from: number,
  to: number,
): Promise<RollupAnswer> {
  const read = await catalog.read({ rollup: grain, from, to });
  if ("missing" in read) throw new DuckTailError(ErrorCode.notFound, read.missing);
  const files = read.files.filter((f) => f.hour >= from && f.hour < to);
  const rows = (
    await readFiles(
      bucket,
      files.map((f) => f.key),
    )
  )
    .flat()
    .filter((r) => r.period >= from && r.period < to)
    .sort((a, b) => a.period - b.period);
  return {
    grain,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    snapshot: read.snapshot,
    rows: rows.map((r) => rollupRow(grain, r)),
  };
}

async function periodFiles(catalog: TenantCatalog, grain: Grain, period: number) {
  const read = await catalog.read({ rollup: grain, from: period, to: periodEnd(grain, period) });
  if ("missing" in read) throw new Error(read.missing);
  return read.files.filter((f) => f.hour === period);
}

async function tableFiles(catalog: TenantCatalog, grain: Grain) {
  const read = await catalog.read({ rollup: grain });
  if ("missing" in read) throw new Error(read.missing);
  return read.files;
}

/** The rows of each rollup file, a few read at a time; a file the catalog lists but R2 lacks is an error. */
async function readFiles(bucket: R2Bucket, keys: string[]): Promise<RollupEntry[][]> {
  const out: RollupEntry[][] = new Array(keys.length);
  let next = 0;
  const reader = async () => {
    while (next < keys.length) {
      const i = next++;
      const body = await bucket.get(keys[i] as string);
      if (!body) throw new Error(`rollup file ${keys[i]} is listed by the catalog but missing from the bucket`);
      out[i] = readRollups(readTable(new Uint8Array(await body.arrayBuffer())));
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, keys.length) }, reader));
  return out;
}
