import { encodeTable, readTable } from "../columns/parquet";
import { describeFile } from "../columns/stats";
import { type ErasureSubject, isSubject } from "../protocol/lake";
import { deleteAll, PARQUET } from "./bucket";
import type { SnapshotFile } from "./catalog/catalog";
import type { TenantCatalog } from "./catalog/client";
import { nameOf, newGeneration } from "./keys";
import { gather, indexRows, textAt } from "./merge";

/** What removing one person's rows from the lake did. */
export interface LakeErasure {
  /** Files read (their column bounds did not rule the subject out). */
  checked: number;
  /** Files that held their rows, replaced by a copy without them (or removed, when nothing else was left). */
  rewritten: number;
  rows: number;
  /** The snapshot that replaced the files; null when no file held their rows. */
  snapshot: number | null;
}

// A compaction or a flush can commit between our reads and our commit; the change then
// conflicts (a file it replaces left the table) and the pass runs again on the new files.
const ATTEMPTS = 4;

/**
 * Removes every row of `subject` from the lake's latest snapshot by rewriting the files that hold
 * them: each such file is read (minus its delete file's rows), written again without their rows
 * under a new name, and every replacement is committed as one snapshot. Rewriting, not DuckLake
 * delete files: a delete file hides rows from readers but leaves them in the data file, and the
 * point is that no object keeps them: once the snapshots before this one expire
 * (SNAPSHOT_RETENTION_HOURS), the cleanup deletes the old files, and their rows with them.
 */
export async function eraseFromLake(
  bucket: R2Bucket,
  catalog: TenantCatalog,
  subject: ErasureSubject,
): Promise<LakeErasure> {
  for (let attempt = 1; ; attempt++) {
    const files = await catalog.candidates(subject);
    const report: LakeErasure = { checked: files.length, rewritten: 0, rows: 0, snapshot: null };
    const remove: string[] = [];
    const add = [];
    for (const file of files) {
      const rewrite = await withoutSubject(bucket, file, subject);
      if (rewrite === null) continue;
      remove.push(file.key);
      report.rows += rewrite.removed;
      if (rewrite.info) add.push(rewrite.info);
    }
    report.rewritten = remove.length;
    if (remove.length === 0) return report;
    const result = await catalog.commit({
      change: "delete",
      remove,
      add,
      message: `erase the rows of one ${subject.by === "any" ? "user" : subject.by} (${report.rows} rows, ${remove.length} files)`,
    });
    if (result.ok) {
      report.snapshot = result.snapshot;
      return report;
    }
    // No snapshot lists the copies: delete them, and try again on what the table holds now.
    await deleteAll(
      bucket,
      add.map((f) => f.key),
    );
    if (attempt === ATTEMPTS) throw new Error(`the lake kept changing while erasing: ${result.conflict}`);
  }
}

/**
 * The file without the subject's rows, written to R2 (null `info` when no row is left); or null
 * when the file holds none of them.
 */
async function withoutSubject(bucket: R2Bucket, file: SnapshotFile, subject: ErasureSubject) {
  const table = readTable(await objectBytes(bucket, file.key));
  const deleted = new Set<number>();
  if (file.deletes) {
    const pos = readTable(await objectBytes(bucket, file.deletes.key)).getChild("pos");
    for (let i = 0; i < (pos?.length ?? 0); i++) deleted.add(Number(pos?.get(i)));
  }
  const rows = indexRows(table.batches);
  const kept: number[] = [];
  let removed = 0;
  for (let r = 0; r < rows.ids.length; r++) {
    if (deleted.has(r)) continue;
    if (isSubject(subject, { userId: textAt(rows, "user_id", r), anonymousId: textAt(rows, "anonymous_id", r) })) {
      removed++;
    } else kept.push(r);
  }
  if (removed === 0) return null;
  if (kept.length === 0) return { removed, info: null };
  const rest = gather(rows, Uint32Array.from(kept));
  const body = encodeTable(rest);
  const key = rewrittenKey(file);
  await bucket.put(key, body, { httpMetadata: { contentType: PARQUET } });
  return { removed, info: describeFile(key, file.hour, body, rest) };
}

/**
 * A new name beside the file: a compacted hour's copy stays one compacted object (a new
 * generation, so the hour is not compacted again); any other file gets a suffix.
 */
function rewrittenKey(file: SnapshotFile): string {
  const gen = newGeneration();
  const folder = file.key.slice(0, file.key.length - nameOf(file.key).length);
  const whole = /^compacted-(\d+)-[0-9a-z]+-0of1\.parquet$/.exec(nameOf(file.key));
  if (whole) return `${folder}compacted-${whole[1]}-${gen}-0of1.parquet`;
  return `${folder}${nameOf(file.key).replace(/\.parquet$/, "")}-erased-${gen}.parquet`;
}

async function objectBytes(bucket: R2Bucket, key: string): Promise<Uint8Array> {
  const obj = await bucket.get(key);
  if (!obj) throw new Error(`the lake lists ${key} but R2 has no such object`);
  return new Uint8Array(await obj.arrayBuffer());
}
