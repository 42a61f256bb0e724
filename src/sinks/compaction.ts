import {
  Bool,
  type Data,
  DataType,
  type Int64,
  makeData,
  RecordBatch,
  Struct,
  Table,
  type TimestampMillisecond,
  tableFromIPC,
  type Utf8,
} from "apache-arrow";
import { readParquet } from "parquet-wasm/esm";
import { hash32 } from "../views/hll";
import { CORE_COLUMNS, EVENT_SCHEMA } from "./columns";
import { encodeTable } from "./parquet";

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
 * parquet-wasm must have been initialized first (see `./wasm`).
 */

const HOUR_MS = 3_600_000;
const MiB = 1024 * 1024;
// Workers allow six simultaneous outgoing connections; more parallel gets would only queue.
const READ_CONCURRENCY = 6;
// R2 deletes at most 1,000 keys per call.
const DELETE_BATCH = 1000;
const COMPACTED_NAME = /^compacted-\d+\.parquet$/;
const PART_NAME = /^compacted-\d+-([0-9a-z]+)-(\d+)of(\d+)\.parquet$/;
const MANIFEST_NAME = "_compaction.json";

/** Where and how much to compact. */
export interface CompactionOptions {
  /** Key prefix of the event objects, as given to `R2ParquetSink`. Default `"events"`. */
  prefix?: string;
  /** Key prefix of the hourly rollups: outside `prefix`, so globs over the events never read them. Default `"rollups"`. */
  rollupPrefix?: string;
  /**
   * Skip an hour whose objects total more than this many (compressed) bytes: a bound on one hour's
   * work (a split decodes it twice, spread over cron runs by `deadline`). Default 1 GiB.
   */
  maxInputBytes?: number;
  /**
   * Most bytes of decoded Arrow data one compaction holds: the memory bound, as event Parquet
   * decodes to 4–30× its size and a compaction peaks at 3–5× the decoded bytes (inputs, merged
   * copy, IPC, parquet-wasm's copy) in an isolate of 128 MB. An hour that decodes to more is
   * split into parts of about half this. Default 16 MiB.
   */
  maxDecodedBytes?: number;
  /** An hour is closed, so compacted, once its end plus this is before `now`. Default 15 minutes. */
  graceMs?: number;
  /** `compactAll` lists and starts no more after this much wall time (but always starts one hour). Default 20 s. */
  budgetMs?: number;
  /**
   * Epoch ms after which a split hour stops between parts (after writing at least one); the next
   * run resumes it from its manifest. `compactAll` sets it from `budgetMs`. Default: none.
   */
  deadline?: number;
}

const DEFAULTS: Required<CompactionOptions> = {
  prefix: "events",
  rollupPrefix: "rollups",
  maxInputBytes: 1024 * MiB,
  maxDecodedBytes: 16 * MiB,
  graceMs: 15 * 60_000,
  budgetMs: 20_000,
  deadline: Number.POSITIVE_INFINITY,
};

/** What compacting one hour did. */
export interface CompactionSummary {
  tenant: string;
  /** Start of the UTC hour (epoch ms). */
  hour: number;
  /** Objects read (an earlier compacted object included). */
  inputs: number;
  rowsIn: number;
  rowsOut: number;
  /** Rows dropped because another row had the same id. */
  duplicates: number;
  /** The compacted object (the first part of a split hour). */
  key: string;
  /** Every compacted object of the hour: `[key]`, or the parts of a split hour. */
  objects: string[];
  rollupKey: string;
  bytesIn: number;
  bytesOut: number;
  /** Why nothing was written or deleted; absent when the hour was compacted. */
  skipped?: string;
}

/** The hourly rollup, `rollups/tenant=<t>/dt=<d>/hour=<HH>/rollup.json`. */
export interface HourRollup {
  tenant: string;
  /** Start of the UTC hour (epoch ms). */
  hour: number;
  /** The compacted object it describes (the first part of a split hour). */
  key: string;
  /** Every compacted object of the hour: `[key]`, or the parts of a split hour. */
  objects: string[];
  /** Rows in the compacted objects. */
  rows: number;
  /** Distinct event ids: equal to `rows`, since compaction keeps one row per id. */
  distinctIds: number;
  /** Rows dropped as duplicates in the compaction that wrote this rollup (of a resumed split compaction: in its parts written by the last run). */
  duplicates: number;
  /** Smallest and largest client `ts` (epoch ms); null for an empty hour. */
  minTs: number | null;
  maxTs: number | null;
  /** Rows per (source, type, importance), sorted by those. */
  counts: { source: string; type: string; importance: string; count: number }[];
}

/** What `compactAll` did and what it left for the next run. */
export interface CompactionRun {
  summaries: CompactionSummary[];
  /** Hours that needed compaction but were not started within the budget. */
  remaining: { tenant: string; hour: number }[];
  /** Tenants whose hours were not even listed within the budget. */
  unlistedTenants: string[];
}

/** `<prefix>/tenant=<t>/dt=<YYYY-MM-DD>/hour=<HH>/`: the folder `objectKey` writes an hour's objects to. */
export function hourPrefix(prefix: string, tenant: string, hourStart: number): string {
  const iso = new Date(hourStart).toISOString();
  return `${prefix}/tenant=${tenant}/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/`;
}

/** The one object a compacted hour holds. */
export function compactedKey(prefix: string, tenant: string, hourStart: number): string {
  return `${hourPrefix(prefix, tenant, hourStart)}compacted-${hourStart}.parquet`;
}

/** Part `k` of `parts` of an hour split by the compaction generation `gen`. */
export function partKey(
  prefix: string,
  tenant: string,
  hourStart: number,
  gen: string,
  k: number,
  parts: number,
): string {
  return `${hourPrefix(prefix, tenant, hourStart)}compacted-${hourStart}-${gen}-${k}of${parts}.parquet`;
}

/** The manifest of a split compaction under way. */
export function manifestKey(prefix: string, tenant: string, hourStart: number): string {
  return `${hourPrefix(prefix, tenant, hourStart)}${MANIFEST_NAME}`;
}

/** Whether an hour holding objects of these names is compacted: one compacted object, or every part of one split. */
export function isCompacted(names: string[]): boolean {
  if (names.length === 1 && COMPACTED_NAME.test(names[0] as string)) return true;
  const parts = names.map((name) => PART_NAME.exec(name));
  const first = parts[0];
  if (!first || parts.some((p) => !p || p[1] !== first[1] || p[3] !== first[3])) return false;
  return new Set(parts.map((p) => p?.[2])).size === Number(first[3]) && names.length === Number(first[3]);
}

/** Where the rollup of an hour is written. */
export function rollupKey(rollupPrefix: string, tenant: string, hourStart: number): string {
  return `${hourPrefix(rollupPrefix, tenant, hourStart)}rollup.json`;
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

const PARQUET = "application/vnd.apache.parquet";

/** What a split compaction will do, written before its first spill and deleted after its last delete. */
interface SplitManifest {
  version: 2;
  hour: number;
  /** Names the parts and the spill folder, so they never overwrite an earlier split's objects. */
  gen: string;
  parts: number;
  /** Keys of the objects read; the parts hold exactly their rows, deduplicated. */
  inputs: string[];
  /** The inputs in reading groups, each of at most half of maxDecodedBytes decoded. */
  groups: string[][];
}

/** Where a split keeps its intermediate objects: outside the events prefix, so no reader sees them. */
function spillPrefix(o: Required<CompactionOptions>, tenant: string, hour: number, gen: string): string {
  return `${o.prefix}-spill/tenant=${tenant}/hour=${hour}/${gen}/`;
}

async function startSplit(
  bucket: R2Bucket,
  summary: CompactionSummary,
  inputs: R2Object[],
  sizes: number[],
  o: Required<CompactionOptions>,
): Promise<CompactionSummary> {
  const target = o.maxDecodedBytes / 2;
  const groups: string[][] = [];
  let group: string[] = [];
  let groupBytes = 0;
  inputs.forEach((obj, i) => {
    const size = sizes[i] ?? 0;
    if (group.length > 0 && groupBytes + size > target) {
      groups.push(group);
      group = [];
      groupBytes = 0;
    }
    group.push(obj.key);
    groupBytes += size;
  });
  if (group.length > 0) groups.push(group);
  const manifest: SplitManifest = {
    version: 2,
    hour: summary.hour,
    gen: Date.now().toString(36) + Math.floor(Math.random() * 36 ** 4).toString(36),
    parts: Math.ceil(sizes.reduce((n, b) => n + b, 0) / target),
    inputs: inputs.map((obj) => obj.key),
    groups,
  };
  const key = manifestKey(o.prefix, summary.tenant, summary.hour);
  const created = await bucket.put(key, JSON.stringify(manifest), {
    onlyIf: { etagDoesNotMatch: "*" },
    httpMetadata: { contentType: "application/json" },
  });
  if (!created) return skip(summary, "another compaction of this hour started meanwhile");
  return finishSplit(bucket, summary, o);
}

/**
 * Finishes the split of the hour's manifest, resuming wherever a run died:
 * 1. each group of inputs is read once and its rows written out by part (`g<i>/b<k>.parquet`
 *    under the spill folder, then a `g<i>.done` marker), so the hour is decoded once in all;
 * 2. each part is merged from its spills alone (deduplicated, sorted) and written;
 * 3. the rollup is written, then the inputs, the spills and the manifest are deleted.
 * Every object it writes is a pure function of the manifest, so runs may overlap.
 */
async function finishSplit(
  bucket: R2Bucket,
  summary: CompactionSummary,
  o: Required<CompactionOptions>,
): Promise<CompactionSummary> {
  const key = manifestKey(o.prefix, summary.tenant, summary.hour);
  const manifest = await readManifest(bucket, key);
  if (!manifest) return skip(summary, "the split compaction under way finished meanwhile");
  /** Whether the manifest is still this split's: another run may have finished it and started another. */
  const stillOurs = async () => (await readManifest(bucket, key))?.gen === manifest.gen;
  const spill = spillPrefix(o, summary.tenant, summary.hour, manifest.gen);
  const keys = Array.from({ length: manifest.parts }, (_, k) =>
    partKey(o.prefix, summary.tenant, summary.hour, manifest.gen, k, manifest.parts),
  );
  summary.key = keys[0] as string;
  summary.objects = keys;
  summary.inputs = manifest.inputs.length;
  const heads = new Map<string, R2Object | null>();
  for (const input of manifest.inputs) heads.set(input, await bucket.head(input));
  summary.bytesIn = [...heads.values()].reduce((n, obj) => n + (obj?.size ?? 0), 0);
  const abandon = (reason: string) => abandonSplit(bucket, summary, key, stillOurs, manifest, keys, spill, reason);
  let work = 0;
  const paused = (what: string) =>
    work > 0 && Date.now() > o.deadline
      ? skip(summary, `split paused before ${what} (time budget); the next run resumes it`)
      : null;

  for (let g = 0; g < manifest.groups.length; g++) {
    if (await bucket.head(`${spill}g${g}.done`)) continue;
    const stop = paused(`group ${g} of ${manifest.groups.length}`);
    if (stop) return stop;
    const inputs: R2Object[] = [];
    for (const input of manifest.groups[g] as string[]) {
      // Gone before this run began (headed above); readInputs reports one that goes while it reads.
      const head = heads.get(input);
      if (!head) return abandon("an input vanished (another run compacted the hour)");
      inputs.push(head);
    }
    // A group of one input over the bound is read whole anyway: one isolate wrote it from memory.
    const read = await readInputs(bucket, inputs, inputs.length === 1 ? Number.POSITIVE_INFINITY : o.maxDecodedBytes);
    if (typeof read === "string") return abandon(read);
    if (!Array.isArray(read)) return abandon(`inputs of group ${g} decode to over maxDecodedBytes`);
    const rows = indexRows(read);
    const byPart = Array.from({ length: manifest.parts }, () => [] as number[]);
    for (let r = 0; r < rows.ids.length; r++) byPart[hash32(rows.ids[r] as string) % manifest.parts]?.push(r);
    for (let k = 0; k < manifest.parts; k++) {
      const order = byPart[k] as number[];
      if (order.length > 0)
        await bucket.put(`${spill}g${g}/b${k}.parquet`, encodeTable(gather(rows, Uint32Array.from(order))));
    }
    await bucket.put(`${spill}g${g}.done`, "");
    work++;
  }

  const spilled = (await listAll(bucket, { prefix: spill })).objects;
  const rollups: HourRollup[] = [];
  for (let k = 0; k < manifest.parts; k++) {
    const partSummary = emptySummary(summary.tenant, summary.hour, o);
    partSummary.key = keys[k] as string;
    const existing = await bucket.head(partSummary.key);
    if (!existing) {
      const stop = paused(`part ${k} of ${manifest.parts}`);
      if (stop) return stop;
    }
    const sources = existing ? [existing] : spilled.filter((obj) => obj.key.endsWith(`/b${k}.parquet`));
    const merged = await merge(bucket, sources, partSummary, o.maxDecodedBytes);
    if (typeof merged === "string") return abandon(merged);
    if ("decodedBytes" in merged) return abandon(`part ${k} of ${manifest.parts} decodes to over maxDecodedBytes`);
    if (existing)
      partSummary.rowsIn = partSummary.duplicates = 0; // counted by the run that wrote it
    else {
      work++;
      await bucket.put(partSummary.key, encodeTable(merged.table), {
        httpMetadata: { contentType: PARQUET },
        customMetadata: { rows: String(partSummary.rowsOut), inputs: String(manifest.inputs.length) },
      });
    }
    summary.rowsIn += partSummary.rowsIn;
    summary.rowsOut += partSummary.rowsOut;
    summary.duplicates += partSummary.duplicates;
    summary.bytesOut += (await bucket.head(partSummary.key))?.size ?? 0;
    rollups.push(merged.rollup);
  }
  if (!(await stillOurs())) return skip(summary, "another run finished this split meanwhile");
  await putRollup(bucket, summary, sumRollups(summary, rollups));
  await deleteAll(bucket, manifest.inputs);
  await deleteSpill(bucket, spill);
  if (await stillOurs()) await bucket.delete(key);
  return summary;
}

/**
 * A split that cannot finish (an input is gone, a part is over the memory bound, an input is
 * unreadable) is given up so the hour is not stuck: its manifest and spills go, and its parts too
 * while every input is still there (they only copy rows of those inputs). Parts left beside
 * deleted inputs may hold rows that exist nowhere else: they stay, as inputs of the next run.
 */
async function abandonSplit(
  bucket: R2Bucket,
  summary: CompactionSummary,
  key: string,
  stillOurs: () => Promise<boolean>,
  manifest: SplitManifest,
  parts: string[],
  spill: string,
  reason: string,
): Promise<CompactionSummary> {
  let complete = true;
  for (const input of manifest.inputs) if (!(await bucket.head(input))) complete = false;
  if (complete) await deleteAll(bucket, parts);
  await deleteSpill(bucket, spill);
  if (await stillOurs()) await bucket.delete(key);
  return skip(summary, `split ${manifest.gen} abandoned: ${reason}`);
}

async function readManifest(bucket: R2Bucket, key: string): Promise<SplitManifest | undefined> {
  return (await (await bucket.get(key))?.json()) as SplitManifest | undefined;
}

async function deleteSpill(bucket: R2Bucket, spill: string): Promise<void> {
  await deleteAll(
    bucket,
    (await listAll(bucket, { prefix: spill })).objects.map((obj) => obj.key),
  );
}

async function putRollup(bucket: R2Bucket, summary: CompactionSummary, rollup: HourRollup): Promise<void> {
  await bucket.put(summary.rollupKey, JSON.stringify(rollup), { httpMetadata: { contentType: "application/json" } });
}

async function deleteAll(bucket: R2Bucket, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += DELETE_BATCH) await bucket.delete(keys.slice(i, i + DELETE_BATCH));
}

/** One rollup of the hour from its parts' rollups. */
function sumRollups(summary: CompactionSummary, rollups: HourRollup[]): HourRollup {
  const counts = new Map<string, HourRollup["counts"][number]>();
  let minTs: number | null = null;
  let maxTs: number | null = null;
  for (const r of rollups) {
    if (r.minTs !== null && (minTs === null || r.minTs < minTs)) minTs = r.minTs;
    if (r.maxTs !== null && (maxTs === null || r.maxTs > maxTs)) maxTs = r.maxTs;
    for (const c of r.counts) {
      const group = JSON.stringify([c.source, c.type, c.importance]);
      const entry = counts.get(group);
      if (entry) entry.count += c.count;
      else counts.set(group, { ...c });
    }
  }
  return {
    tenant: summary.tenant,
    hour: summary.hour,
    key: summary.key,
    objects: summary.objects,
    rows: summary.rowsOut,
    distinctIds: summary.rowsOut,
    duplicates: summary.duplicates,
    minTs,
    maxTs,
    counts: sortCounts([...counts.values()]),
  };
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

function emptySummary(tenant: string, hour: number, o: Required<CompactionOptions>): CompactionSummary {
  return {
    tenant,
    hour,
    inputs: 0,
    rowsIn: 0,
    rowsOut: 0,
    duplicates: 0,
    key: compactedKey(o.prefix, tenant, hour),
    objects: [compactedKey(o.prefix, tenant, hour)],
    rollupKey: rollupKey(o.rollupPrefix, tenant, hour),
    bytesIn: 0,
    bytesOut: 0,
  };
}

function skip(summary: CompactionSummary, reason: string): CompactionSummary {
  summary.skipped = reason;
  return summary;
}

function nameOf(key: string): string {
  return key.slice(key.lastIndexOf("/") + 1);
}

/** Every page of a listing. */
async function listAll(bucket: R2Bucket, options: R2ListOptions): Promise<{ objects: R2Object[]; prefixes: string[] }> {
  const objects: R2Object[] = [];
  const prefixes: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ ...options, cursor });
    objects.push(...page.objects);
    prefixes.push(...page.delimitedPrefixes);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return { objects, prefixes };
}

/**
 * The record batches of every input, or why the hour cannot be compacted, or, once over
 * `maxDecodedBytes`, only how many bytes each input decodes to (the reads go on to learn it,
 * holding nothing). Bodies are fetched a few at a time and decoded as they arrive, so only a
 * few compressed bodies are held besides the decoded data.
 */
async function readInputs(
  bucket: R2Bucket,
  inputs: R2Object[],
  maxDecodedBytes: number,
): Promise<RecordBatch[] | { decodedBytes: number; sizes: number[] } | string> {
  const tables: Table[] = [];
  const sizes: number[] = [];
  let decodedBytes = 0;
  let failure: string | null = null;
  let next = 0;
  const reader = async () => {
    while (failure === null && next < inputs.length) {
      const i = next++;
      const key = (inputs[i] as R2Object).key;
      const body = await bucket.get(key);
      if (failure !== null) return;
      if (!body) {
        failure = `input ${key} vanished while compacting`;
        return;
      }
      const ipc = readParquet(new Uint8Array(await body.arrayBuffer())).intoIPCStream();
      sizes[i] = ipc.byteLength;
      decodedBytes += ipc.byteLength;
      if (decodedBytes > maxDecodedBytes) {
        tables.length = 0; // sizing only from here on
        continue;
      }
      const table = tableFromIPC(ipc);
      // The context columns may be missing (files written before them): their rows are null.
      const mismatch = EVENT_SCHEMA.fields.find((f, c) => {
        const type = table.schema.fields.find((g) => g.name === f.name)?.type;
        return (type !== undefined || c < CORE_COLUMNS) && String(type) !== String(f.type);
      });
      if (mismatch) {
        failure = `input ${key} has no ${mismatch.name} column of type ${mismatch.type}`;
        return;
      }
      tables[i] = table;
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, inputs.length) }, reader));
  if (failure !== null) return failure;
  if (decodedBytes > maxDecodedBytes) return { decodedBytes, sizes };
  return tables.flatMap((t) => t.batches);
}

/**
 * The inputs' rows, deduplicated and sorted, as one Arrow table, plus its rollup; or why not; or,
 * over `maxDecodedBytes`, how many bytes each input decodes to. Apart so the decoded inputs are
 * garbage once it returns, before the table is encoded.
 */
async function merge(
  bucket: R2Bucket,
  inputs: R2Object[],
  summary: CompactionSummary,
  maxDecodedBytes: number,
): Promise<{ table: Table; rollup: HourRollup } | { decodedBytes: number; sizes: number[] } | string> {
  const read = await readInputs(bucket, inputs, maxDecodedBytes);
  if (typeof read === "string" || !Array.isArray(read)) return read;
  const rows = indexRows(read);
  const order = keepAndSort(rows);
  summary.rowsIn = rows.ids.length;
  summary.rowsOut = order.length;
  summary.duplicates = summary.rowsIn - summary.rowsOut;
  return { table: gather(rows, order), rollup: rollupOf(rows, order, summary) };
}

/** An input's column; undefined for a context column the input does not have. */
type Column = Data<Utf8> | Data<TimestampMillisecond> | Data<Int64> | Data<Bool> | undefined;

/** Every input row, addressed by a row number across batches, with what dedup and sort compare. */
interface Rows {
  /** `columns[c][b]`: column `c` of EVENT_SCHEMA in input batch `b`. */
  columns: Column[][];
  batchOf: Uint32Array;
  rowOf: Uint32Array;
  ids: string[];
  ts: Float64Array;
  receivedAt: Float64Array;
  decoder: TextDecoder;
}

const column = (name: string) => EVENT_SCHEMA.fields.findIndex((f) => f.name === name);
const ID = column("id");
const TS = column("ts");
const RECEIVED_AT = column("received_at");
const SOURCE = column("source");
const TYPE = column("type");
const IMPORTANCE = column("importance");
const REPLICA = column("replica");
const SEQ = column("seq");

function indexRows(batches: RecordBatch[]): Rows {
  const columns = EVENT_SCHEMA.fields.map((f) =>
    batches.map((b) => b.data.children[b.schema.fields.findIndex((g) => g.name === f.name)] as Column),
  );
  let n = 0;
  for (const b of batches) n += b.numRows;
  const rows: Rows = {
    columns,
    batchOf: new Uint32Array(n),
    rowOf: new Uint32Array(n),
    ids: new Array<string>(n),
    ts: new Float64Array(n),
    receivedAt: new Float64Array(n),
    decoder: new TextDecoder(),
  };
  let r = 0;
  batches.forEach((b, bi) => {
    for (let i = 0; i < b.numRows; i++, r++) {
      rows.batchOf[r] = bi;
      rows.rowOf[r] = i;
      rows.ids[r] = text(rows, ID, r) as string;
      rows.ts[r] = int64(rows, TS, r);
      rows.receivedAt[r] = int64(rows, RECEIVED_AT, r);
    }
  });
  return rows;
}

function text(rows: Rows, c: number, r: number): string | null {
  const data = (rows.columns[c] as Column[])[rows.batchOf[r] as number] as Data<Utf8>;
  const i = rows.rowOf[r] as number;
  if (!data.getValid(i)) return null;
  return rows.decoder.decode(data.values.subarray(data.valueOffsets[i], data.valueOffsets[i + 1]));
}

function int64(rows: Rows, c: number, r: number): number {
  const data = (rows.columns[c] as Column[])[rows.batchOf[r] as number] as Data<Int64>;
  return Number((data.values as unknown as BigInt64Array)[rows.rowOf[r] as number]);
}

/** One row per id (smallest received_at, replica, seq: the same choice on every run), sorted by ts, received_at, id. */
function keepAndSort(rows: Rows): Uint32Array {
  const kept = new Map<string, number>();
  for (let r = 0; r < rows.ids.length; r++) {
    const id = rows.ids[r] as string;
    const other = kept.get(id);
    if (other === undefined || firstReceived(rows, r, other) < 0) kept.set(id, r);
  }
  return Uint32Array.from(kept.values()).sort(
    (a, b) =>
      (rows.ts[a] as number) - (rows.ts[b] as number) ||
      (rows.receivedAt[a] as number) - (rows.receivedAt[b] as number) ||
      compareText(rows.ids[a] as string, rows.ids[b] as string),
  );
}

function firstReceived(rows: Rows, a: number, b: number): number {
  return (
    (rows.receivedAt[a] as number) - (rows.receivedAt[b] as number) ||
    compareText(text(rows, REPLICA, a) as string, text(rows, REPLICA, b) as string) ||
    int64(rows, SEQ, a) - int64(rows, SEQ, b)
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The rows in `order` as one Arrow table with EVENT_SCHEMA, copied column by column from the inputs' buffers. */
function gather(rows: Rows, order: Uint32Array): Table {
  const children = EVENT_SCHEMA.fields.map((f, c) =>
    DataType.isUtf8(f.type)
      ? gatherUtf8(rows, c, order)
      : DataType.isBool(f.type)
        ? gatherBool(rows, c, order)
        : gatherInt64(rows, c, order, f.type as TimestampMillisecond | Int64),
  );
  const struct = makeData({ type: new Struct(EVENT_SCHEMA.fields), length: order.length, nullCount: 0, children });
  return new Table(EVENT_SCHEMA, [new RecordBatch(EVENT_SCHEMA, struct)]);
}

function gatherUtf8(rows: Rows, c: number, order: Uint32Array): Data<Utf8> {
  const sources = rows.columns[c] as (Data<Utf8> | undefined)[];
  const n = order.length;
  let size = 0;
  let nulls = 0;
  for (const r of order) {
    const data = sources[rows.batchOf[r] as number];
    const i = rows.rowOf[r] as number;
    if (!data?.getValid(i)) nulls++;
    else size += (data.valueOffsets[i + 1] as number) - (data.valueOffsets[i] as number);
  }
  const bytes = new Uint8Array(size);
  const offsets = new Int32Array(n + 1);
  const validity = nulls > 0 ? new Uint8Array((n + 7) >> 3) : null;
  let pos = 0;
  for (let k = 0; k < n; k++) {
    const r = order[k] as number;
    const data = sources[rows.batchOf[r] as number];
    const i = rows.rowOf[r] as number;
    if (data?.getValid(i)) {
      const start = data.valueOffsets[i] as number;
      const end = data.valueOffsets[i + 1] as number;
      bytes.set(data.values.subarray(start, end), pos);
      pos += end - start;
      if (validity) validity[k >> 3] = (validity[k >> 3] as number) | (1 << (k & 7));
    }
    offsets[k + 1] = pos;
  }
  return makeData({
    type: EVENT_SCHEMA.fields[c]?.type as Utf8,
    length: n,
    nullCount: nulls,
    nullBitmap: validity,
    valueOffsets: offsets,
    data: bytes,
  });
}

/** A boolean column (is_bot); null where the input has no such column. */
function gatherBool(rows: Rows, c: number, order: Uint32Array): Data<Bool> {
  const sources = rows.columns[c] as (Data<Bool> | undefined)[];
  const n = order.length;
  const bits = new Uint8Array((n + 7) >> 3);
  const validity = new Uint8Array((n + 7) >> 3);
  let nulls = 0;
  for (let k = 0; k < n; k++) {
    const r = order[k] as number;
    const data = sources[rows.batchOf[r] as number];
    const i = rows.rowOf[r] as number;
    if (!data?.getValid(i)) {
      nulls++;
      continue;
    }
    validity[k >> 3] = (validity[k >> 3] as number) | (1 << (k & 7));
    const bit = data.offset + i;
    if (((data.values[bit >> 3] as number) >> (bit & 7)) & 1) bits[k >> 3] = (bits[k >> 3] as number) | (1 << (k & 7));
  }
  return makeData({ type: new Bool(), length: n, nullCount: nulls, nullBitmap: validity, data: bits });
}

/** Copies the 64-bit words as they are: no BigInt and no rounding through doubles. */
function gatherInt64<T extends TimestampMillisecond | Int64>(
  rows: Rows,
  c: number,
  order: Uint32Array,
  type: T,
): Data<T> {
  const sources = (rows.columns[c] as Data<T>[]).map((d) => {
    const v = d.values as unknown as BigInt64Array;
    return new Uint32Array(v.buffer, v.byteOffset, v.length * 2);
  });
  const words = new Uint32Array(order.length * 2);
  for (let k = 0; k < order.length; k++) {
    const r = order[k] as number;
    const from = sources[rows.batchOf[r] as number] as Uint32Array;
    const i = (rows.rowOf[r] as number) * 2;
    words[2 * k] = from[i] as number;
    words[2 * k + 1] = from[i + 1] as number;
  }
  return makeData({
    type,
    length: order.length,
    nullCount: 0,
    data: new BigInt64Array(words.buffer),
  } as never) as unknown as Data<T>;
}

function rollupOf(rows: Rows, order: Uint32Array, summary: CompactionSummary): HourRollup {
  const counts = new Map<string, HourRollup["counts"][number]>();
  let minTs: number | null = null;
  let maxTs: number | null = null;
  for (const r of order) {
    const ts = rows.ts[r] as number;
    if (minTs === null || ts < minTs) minTs = ts;
    if (maxTs === null || ts > maxTs) maxTs = ts;
    const source = text(rows, SOURCE, r) as string;
    const type = text(rows, TYPE, r) as string;
    const importance = text(rows, IMPORTANCE, r) as string;
    const group = JSON.stringify([source, type, importance]);
    const entry = counts.get(group);
    if (entry) entry.count++;
    else counts.set(group, { source, type, importance, count: 1 });
  }
  return {
    tenant: summary.tenant,
    hour: summary.hour,
    key: summary.key,
    objects: summary.objects,
    rows: order.length,
    distinctIds: order.length,
    duplicates: rows.ids.length - order.length,
    minTs,
    maxTs,
    counts: sortCounts([...counts.values()]),
  };
}

function sortCounts(counts: HourRollup["counts"]): HourRollup["counts"] {
  return counts.sort(
    (a, b) => compareText(a.source, b.source) || compareText(a.type, b.type) || compareText(a.importance, b.importance),
  );
}
