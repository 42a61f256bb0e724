import { encodeTable } from "../columns/parquet";
import { describeFile } from "../columns/stats";
import { listAll, PARQUET } from "./bucket";
import type { TenantCatalog } from "./catalog/client";
import { isCompacted, manifestKey, nameOf, newGeneration, partKey } from "./keys";
import { type LakeObject, merge } from "./merge";
import { type CompactionOptions, type CompactionSummary, DEFAULTS, emptySummary, skip } from "./options";
import { writeHourRollup } from "./rollup-run";
import { rollupEvents } from "./rollups";
import { finishSplit, startSplit } from "./split";

export type { CompactionOptions, CompactionSummary } from "./options";

/**
 * Compaction of a tenant's lake: the many small flush objects of a closed UTC hour become one
 * `compacted-<hourStart>-<gen>-0of1.parquet`, deduplicated by event id and sorted by ts, plus an
 * hourly rollup. The hour's objects are the files its catalog lists (src/lake/catalog), never a
 * bucket listing: an object a flush wrote but never committed is not part of the table. The merge
 * is written under a new name, then committed to the catalog as one snapshot ("these inputs
 * removed, this output added"); the inputs stay in R2, readable by snapshots before it, until the
 * catalog's expiry schedules them and the cleanup deletes them (src/lake/catalog/cleanup.ts). A
 * crash before the commit leaves an output no snapshot lists (an orphan the cleanup deletes); a
 * commit that finds an input gone (another compaction won) deletes its output and changes nothing.
 *
 * An hour too large to hold in an isolate's memory (over `maxDecodedBytes` decoded) is split by a
 * hash of the event id into parts `compacted-<hourStart>-<gen>-<k>of<n>.parquet`, each sorted by ts:
 * all copies of an id fall in the same part, so dedup stays exact. The inputs are read once, in
 * groups that fit in memory, and their rows written out by part to a spill folder outside the
 * events prefix; then each part is merged from its spills. A manifest (`_compaction.json`: the
 * inputs, their groups, the split) is written first and deleted last; a run that finds one
 * finishes that compaction (every object is a pure function of the manifest), so a crash at any
 * step loses nothing, and a run past its time budget stops between steps for the next to resume.
 * parquet-wasm must have been initialized first (see `../columns/wasm`).
 *
 * This file runs compactions (an hour, a tenant, every tenant); `./keys` names the objects,
 * `./merge` merges rows, `./split` runs the manifest protocol, `./bucket` holds the R2 calls they
 * share and `./options` the options and reports.
 */

const HOUR_MS = 3_600_000;

/** What `compactAll` did and what it left for the next run. */
export interface CompactionRun {
  summaries: CompactionSummary[];
  /** Hours that needed compaction but were not started within the budget. */
  remaining: { tenant: string; hour: number }[];
  /** Tenants whose hours were not even listed within the budget. */
  unlistedTenants: string[];
}

/**
 * Compacts one hour of the catalog's tenant: reads every file the catalog lists for the hour,
 * keeps one row per event id (the smallest received_at, replica, seq), sorts by ts (then
 * received_at, id), writes the output (or, for an hour over `maxDecodedBytes`, parts: see the
 * module comment), commits it in place of the inputs, and writes the hour's rollup (a file of the
 * hourly rollup table, committed right after: ./rollup-run). Does not check that
 * the hour is closed (`compactTenant` does); throws on R2 or catalog errors.
 */
export async function compactHour(
  bucket: R2Bucket,
  catalog: TenantCatalog,
  hourStart: number,
  options: CompactionOptions = {},
): Promise<CompactionSummary> {
  const o = { ...DEFAULTS, ...options };
  const summary = emptySummary(catalog.tenant, hourStart);
  if (await bucket.head(manifestKey(o.prefix, catalog.tenant, hourStart))) {
    return finishSplit(bucket, catalog, summary, o);
  }
  const files = await hourFiles(catalog, hourStart);
  const inputs: LakeObject[] = files.map((f) => ({ key: f.key, size: f.bytes }));
  summary.inputs = inputs.length;
  for (const obj of inputs) summary.bytesIn += obj.size;
  if (inputs.length === 0) return skip(summary, "no objects");
  if (isCompacted(inputs.map((obj) => nameOf(obj.key)))) return skip(summary, "already compacted");
  // Merging would bring back the rows they delete: an hour with deletes waits for a rewrite that applies them.
  if (files.some((f) => f.deletes)) return skip(summary, "has delete files");
  if (summary.bytesIn > o.maxInputBytes) {
    return skip(summary, `inputs total ${summary.bytesIn} bytes, over maxInputBytes (${o.maxInputBytes})`);
  }

  const merged = await merge(bucket, inputs, summary, o.maxDecodedBytes);
  if (typeof merged === "string") return skip(summary, merged);
  if ("decodedBytes" in merged) return startSplit(bucket, catalog, summary, inputs, merged.sizes, o);
  const body = encodeTable(merged.table);
  const key = partKey(o.prefix, catalog.tenant, hourStart, newGeneration(), 0, 1);
  const written = await bucket.put(key, body, {
    httpMetadata: { contentType: PARQUET },
    customMetadata: { rows: String(summary.rowsOut), inputs: String(summary.inputs) },
  });
  summary.key = key;
  summary.objects = [key];
  summary.bytesOut = written.size;
  const committed = await catalog.commit({
    change: "compact",
    remove: inputs.map((obj) => obj.key),
    add: [describeFile(key, hourStart, body, merged.table)],
    message: `compact ${new Date(hourStart).toISOString().slice(0, 13)}h`,
  });
  if (!committed.ok) {
    // Never listed by any snapshot: no reader can have it.
    await bucket.delete(key);
    return skip(summary, `the hour changed while compacting (another run?): ${committed.conflict}`);
  }
  summary.snapshot = committed.snapshot;
  summary.rollupKey = await writeHourRollup(bucket, catalog, hourStart, rollupEvents(merged.table, hourStart));
  return summary;
}

/** The files the catalog lists now for one hour. */
export async function hourFiles(catalog: TenantCatalog, hourStart: number) {
  const read = await catalog.read({ from: hourStart, to: hourStart + HOUR_MS });
  if ("missing" in read) throw new Error(read.missing);
  return read.files.filter((f) => f.hour === hourStart);
}

/**
 * The start of every closed hour of the catalog's tenant that needs compaction (its files are not
 * one compacted object or the complete parts of one split), oldest first. An hour is closed when
 * its end plus `graceMs` is at or before `now`.
 */
export async function pendingHours(
  catalog: TenantCatalog,
  now: number,
  options: CompactionOptions = {},
): Promise<number[]> {
  const o = { ...DEFAULTS, ...options };
  const read = await catalog.read({ to: now - HOUR_MS - o.graceMs + 1 });
  if ("missing" in read) throw new Error(read.missing);
  const hours = new Map<number, string[]>();
  for (const f of read.files) hours.set(f.hour, [...(hours.get(f.hour) ?? []), nameOf(f.key)]);
  return [...hours]
    .filter(([hour, names]) => hour + HOUR_MS + o.graceMs <= now && !isCompacted(names))
    .map(([hour]) => hour)
    .sort((a, b) => a - b);
}

/**
 * Compacts every closed hour of a tenant that needs it (see `pendingHours`), oldest first.
 * An hour that fails is reported with `skipped` and does not stop the others.
 */
export async function compactTenant(
  bucket: R2Bucket,
  catalog: TenantCatalog,
  now: number,
  options: CompactionOptions = {},
): Promise<CompactionSummary[]> {
  const summaries: CompactionSummary[] = [];
  for (const hour of await pendingHours(catalog, now, options)) {
    summaries.push(await compactOrReport(bucket, catalog, hour, options));
  }
  return summaries;
}

/** Every tenant with objects under the events prefix (each has a catalog once it flushed). */
export async function listTenants(bucket: R2Bucket, options: CompactionOptions = {}): Promise<string[]> {
  const root = `${options.prefix ?? DEFAULTS.prefix}/tenant=`;
  const listed = await listAll(bucket, { prefix: root, delimiter: "/" });
  return listed.prefixes.map((p) => p.slice(root.length, -1));
}

/**
 * Compacts the pending hours of every tenant, taking tenants in turn (one hour each per round)
 * so a tenant with a backlog does not starve the others. Starts no new hour once `budgetMs` of
 * wall time has passed (a cron invocation's limit; Workers clocks advance on I/O, which this is
 * mostly made of) and reports what it left.
 */
export async function compactAll(
  bucket: R2Bucket,
  catalogOf: (tenant: string) => TenantCatalog,
  now: number,
  options: CompactionOptions = {},
): Promise<CompactionRun> {
  const budgetMs = options.budgetMs ?? DEFAULTS.budgetMs;
  const started = Date.now();
  const overBudget = () => Date.now() - started >= budgetMs;
  const run: CompactionRun = { summaries: [], remaining: [], unlistedTenants: [] };
  const queues: { tenant: string; hours: number[] }[] = [];
  for (const tenant of await listTenants(bucket, options)) {
    // Listing goes on until one hour is found, so a run always makes progress.
    if (queues.some((q) => q.hours.length > 0) && overBudget()) run.unlistedTenants.push(tenant);
    else queues.push({ tenant, hours: await pendingHours(catalogOf(tenant), now, options) });
  }
  const rounds = Math.max(0, ...queues.map((q) => q.hours.length));
  for (let round = 0; round < rounds; round++) {
    for (const { tenant, hours } of queues) {
      const hour = hours[round];
      if (hour === undefined) continue;
      // At least one hour per run, so a slow listing cannot stall compaction for good.
      if (run.summaries.length > 0 && overBudget()) run.remaining.push({ tenant, hour });
      else
        run.summaries.push(
          await compactOrReport(bucket, catalogOf(tenant), hour, { deadline: started + budgetMs, ...options }),
        );
    }
  }
  return run;
}

async function compactOrReport(
  bucket: R2Bucket,
  catalog: TenantCatalog,
  hour: number,
  options: CompactionOptions,
): Promise<CompactionSummary> {
  try {
    return await compactHour(bucket, catalog, hour, options);
  } catch (e) {
    return skip(emptySummary(catalog.tenant, hour), `failed: ${(e as Error).message}`);
  }
}
