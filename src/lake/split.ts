import { encodeTable } from "../columns/parquet";
import { type DataFileInfo, describeFile, describeTable, parquetFooterSize } from "../columns/stats";
import { hash32 } from "../hash";
import { deleteAll, listAll, PARQUET } from "./bucket";
import type { TenantCatalog } from "./catalog/client";
import { manifestKey, newGeneration, partKey, spillPrefix } from "./keys";
import { gather, indexRows, type LakeObject, merge, readInputs } from "./merge";
import { type CompactionOptions, type CompactionSummary, emptySummary, skip } from "./options";
import { writeHourRollup } from "./rollup-run";
import { mergeRollups, type RollupEntry, rollupEvents } from "./rollups";

// The split of an hour too large to compact in memory (see the module comment of ./compaction):
// a manifest names the inputs, their reading groups and the parts; every object written is a pure
// function of it, so any run can finish, resume or give up a split another run started. The parts
// become part of the table only when the last step commits them in place of the inputs.

/** What a split compaction will do, written before its first spill and deleted after its last delete. */
interface SplitManifest {
  version: 2;
  hour: number;
  /** Names the parts and the spill folder, so they never overwrite an earlier split's objects. */
  gen: string;
  parts: number;
  /** Keys of the files read (the catalog's for the hour); the parts hold exactly their rows, deduplicated. */
  inputs: string[];
  /** The inputs in reading groups, each of at most half of maxDecodedBytes decoded. */
  groups: string[][];
}

/** Plans the split (groups of inputs, parts), writes its manifest unless another run did, and runs it. */
export async function startSplit(
  bucket: R2Bucket,
  catalog: TenantCatalog,
  summary: CompactionSummary,
  inputs: LakeObject[],
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
    gen: newGeneration(),
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
  return finishSplit(bucket, catalog, summary, o);
}

/**
 * Finishes the split of the hour's manifest, resuming wherever a run died:
 * 1. each group of inputs is read once and its rows written out by part (`g<i>/b<k>.parquet`
 *    under the spill folder, then a `g<i>.done` marker), so the hour is decoded once in all;
 * 2. each part is merged from its spills alone (deduplicated, sorted) and written;
 * 3. the parts are committed in place of the inputs (one snapshot), the rollup written, the spills
 *    and the manifest deleted. A commit that finds an input gone gives the split up.
 * Every object it writes is a pure function of the manifest, so runs may overlap.
 */
export async function finishSplit(
  bucket: R2Bucket,
  catalog: TenantCatalog,
  summary: CompactionSummary,
  o: Required<CompactionOptions>,
): Promise<CompactionSummary> {
  const key = manifestKey(o.prefix, summary.tenant, summary.hour);
  const manifest = await readManifest(bucket, key);
  if (!manifest) return skip(summary, "the split compaction under way finished meanwhile");
  /** Whether the manifest is still this split's: another run may have finished it and started another. */
  const stillOurs = async () => (await readManifest(bucket, key))?.gen === manifest.gen;
  const spill = spillPrefix(o.prefix, summary.tenant, summary.hour, manifest.gen);
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
    const inputs: LakeObject[] = [];
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
  const rollupRows: RollupEntry[] = [];
  const files: DataFileInfo[] = [];
  for (let k = 0; k < manifest.parts; k++) {
    const partSummary = emptySummary(summary.tenant, summary.hour);
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
    if (existing) {
      partSummary.rowsIn = partSummary.duplicates = 0; // counted by the run that wrote it
      const tail = await bucket.get(partSummary.key, { range: { suffix: 8 } });
      if (!tail) return abandon(`part ${k} of ${manifest.parts} vanished`);
      const footer = parquetFooterSize(new Uint8Array(await tail.arrayBuffer()));
      files.push(describeTable(partSummary.key, summary.hour, merged.table, existing.size, footer));
    } else {
      work++;
      const body = encodeTable(merged.table);
      await bucket.put(partSummary.key, body, {
        httpMetadata: { contentType: PARQUET },
        customMetadata: { rows: String(partSummary.rowsOut), inputs: String(manifest.inputs.length) },
      });
      files.push(describeFile(partSummary.key, summary.hour, body, merged.table));
    }
    summary.rowsIn += partSummary.rowsIn;
    summary.rowsOut += partSummary.rowsOut;
    summary.duplicates += partSummary.duplicates;
    summary.bytesOut += files[k]?.bytes ?? 0;
    rollupRows.push(...rollupEvents(merged.table, summary.hour));
  }
  if (!(await stillOurs())) return skip(summary, "another run finished this split meanwhile");
  const committed = await catalog.commit({
    change: "compact",
    remove: manifest.inputs,
    add: files,
    message: `compact ${new Date(summary.hour).toISOString().slice(0, 13)}h in ${manifest.parts} parts`,
  });
  if (!committed.ok) return abandon(`the hour changed meanwhile: ${committed.conflict}`);
  summary.snapshot = committed.snapshot;
  // The parts hold disjoint ids, so their sketches merge into the hour's.
  summary.rollupKey = await writeHourRollup(bucket, catalog, summary.hour, mergeRollups(rollupRows, summary.hour));
  await deleteSpill(bucket, spill);
  if (await stillOurs()) await bucket.delete(key);
  return summary;
}

/**
 * A split that cannot finish (an input is gone, a part is over the memory bound, an input is
 * unreadable, the hour changed before its commit) is given up so the hour is not stuck: its
 * manifest, spills and parts go. No snapshot ever listed the parts, so no reader loses anything;
 * the inputs are untouched.
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
  await deleteAll(bucket, parts);
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
