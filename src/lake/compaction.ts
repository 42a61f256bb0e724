import { encodeTable } from "../columns/parquet";
import { deleteAll, listAll, PARQUET, putRollup } from "./bucket";
import { hourPrefix, isCompacted, MANIFEST_NAME, nameOf } from "./keys";
import { merge } from "./merge";
import { type CompactionOptions, type CompactionSummary, DEFAULTS, emptySummary, skip } from "./options";
import { finishSplit, startSplit } from "./split";

export type { CompactionOptions, CompactionSummary, HourRollup } from "./options";

/**
 * Compaction of a tenant's Parquet lake: the many small flush objects of a closed UTC hour
 * become one `compacted-<hourStart>.parquet`, deduplicated by event id and sorted by ts, plus an
 * hourly rollup. The compacted object is written (conditionally) before any input is deleted, and
 * a re-run merges it with whatever is left, so a crash at any point loses and duplicates nothing.
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
 * Compacts one hour of a tenant: reads every object of the hour, keeps one row per event id (the
 * smallest received_at, replica, seq), sorts by ts (then received_at, id), writes
 * `compacted-<hourStart>.parquet` (or, for an hour over `maxDecodedBytes`, parts: see the module
 * comment) and the rollup, and only then deletes the objects it read. The write is conditional
 * on the compacted object being as listed, so two runs never undo each other. Does not check
 * that the hour is closed (`compactTenant` does); throws on R2 errors.
 */
export async function compactHour(
  bucket: R2Bucket,
  tenant: string,
  hourStart: number,
  options: CompactionOptions = {},
): Promise<CompactionSummary> {
  const o = { ...DEFAULTS, ...options };
  const summary = emptySummary(tenant, hourStart, o);
  const listed = await listAll(bucket, { prefix: hourPrefix(o.prefix, tenant, hourStart), delimiter: "/" });
  if (listed.objects.some((obj) => nameOf(obj.key) === MANIFEST_NAME)) return finishSplit(bucket, summary, o);
  const inputs = listed.objects.filter((obj) => obj.key.endsWith(".parquet"));
  summary.inputs = inputs.length;
  for (const obj of inputs) summary.bytesIn += obj.size;
  if (inputs.length === 0) return skip(summary, "no objects");
  if (isCompacted(inputs.map((obj) => nameOf(obj.key)))) return skip(summary, "already compacted");
  if (summary.bytesIn > o.maxInputBytes) {
    return skip(summary, `inputs total ${summary.bytesIn} bytes, over maxInputBytes (${o.maxInputBytes})`);
  }

  const merged = await merge(bucket, inputs, summary, o.maxDecodedBytes);
  if (typeof merged === "string") return skip(summary, merged);
  if ("decodedBytes" in merged) return startSplit(bucket, summary, inputs, merged.sizes, o);
  const body = encodeTable(merged.table);

  const previous = inputs.find((obj) => obj.key === summary.key);
  const written = await bucket.put(summary.key, body, {
    // Another run may have rewritten the compacted object since we listed it: writing over it
    // could drop rows only it holds, whose inputs that run has deleted.
    onlyIf: previous ? { etagMatches: previous.etag } : { etagDoesNotMatch: "*" },
    httpMetadata: { contentType: PARQUET },
    customMetadata: { rows: String(summary.rowsOut), inputs: String(summary.inputs) },
  });
  if (!written) return skip(summary, "the compacted object changed while compacting (another run?)");
  summary.bytesOut = written.size;
  await putRollup(bucket, summary, merged.rollup);
  await deleteAll(
    bucket,
    inputs.map((obj) => obj.key).filter((key) => key !== summary.key),
  );
  return summary;
}

/**
 * The start of every closed hour of a tenant that needs compaction (its objects are not one
 * compacted object or the complete parts of one split, or a split is under way), oldest first.
 * An hour is closed when its end plus `graceMs` is at or before `now`.
 */
export async function pendingHours(
  bucket: R2Bucket,
  tenant: string,
  now: number,
  options: CompactionOptions = {},
): Promise<number[]> {
  const o = { ...DEFAULTS, ...options };
  const root = `${o.prefix}/tenant=${tenant}/`;
  const partition = /^dt=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\/([^/]+)$/;
  const hours = new Map<number, string[]>();
  for (const obj of (await listAll(bucket, { prefix: root })).objects) {
    const match = partition.exec(obj.key.slice(root.length));
    const name = match?.[3] as string;
    if (!match || !(name.endsWith(".parquet") || name === MANIFEST_NAME)) continue;
    const hour = Date.parse(`${match[1]}T${match[2]}:00:00Z`);
    hours.set(hour, [...(hours.get(hour) ?? []), name]);
  }
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
  tenant: string,
  now: number,
  options: CompactionOptions = {},
): Promise<CompactionSummary[]> {
  const summaries: CompactionSummary[] = [];
  for (const hour of await pendingHours(bucket, tenant, now, options)) {
    summaries.push(await compactOrReport(bucket, tenant, hour, options));
  }
  return summaries;
}

/** Every tenant with objects under the events prefix. */
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
    else queues.push({ tenant, hours: await pendingHours(bucket, tenant, now, options) });
  }
  const rounds = Math.max(0, ...queues.map((q) => q.hours.length));
  for (let round = 0; round < rounds; round++) {
    for (const { tenant, hours } of queues) {
      const hour = hours[round];
      if (hour === undefined) continue;
      // At least one hour per run, so a slow listing cannot stall compaction for good.
      if (run.summaries.length > 0 && overBudget()) run.remaining.push({ tenant, hour });
      else
        run.summaries.push(await compactOrReport(bucket, tenant, hour, { deadline: started + budgetMs, ...options }));
    }
  }
  return run;
}

async function compactOrReport(
  bucket: R2Bucket,
  tenant: string,
  hour: number,
  options: CompactionOptions,
): Promise<CompactionSummary> {
  try {
    return await compactHour(bucket, tenant, hour, options);
  } catch (e) {
    return skip(emptySummary(tenant, hour, { ...DEFAULTS, ...options }), `failed: ${(e as Error).message}`);
  }
}
