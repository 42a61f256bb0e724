import { readTable } from "../../columns/parquet";
import { type DataFileInfo, describeFile } from "../../columns/stats";
import { listAll } from "../bucket";
import { MANIFEST_NAME } from "../keys";
import type { TenantCatalog } from "./client";

/** What one adoption did: the objects committed, and how many are left for the next call. */
export interface AdoptReport {
  tenant: string;
  adopted: string[];
  remaining: number;
  /** The snapshot that added them; null when there was nothing to adopt. */
  snapshot: number | null;
}

const HOURLY_KEY = /\/dt=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\/[^/]+\.parquet$/;

/**
 * The upgrade path of a lake written before its catalog: the Parquet objects in the tenant's folder
 * that are older than the catalog and unknown to it are read (for their row counts and column
 * statistics) and committed, at most `limit` per call, as one snapshot. An hour with a split
 * compaction under way (its manifest) is left for that compaction to finish first. A compacted
 * hour adopted beside inputs a crash left behind holds those rows twice until it is compacted
 * again, which keeps one row per id.
 */
export async function adoptLegacy(
  bucket: R2Bucket,
  catalog: TenantCatalog,
  options: { prefix: string; limit: number },
): Promise<AdoptReport> {
  const listed = (await listAll(bucket, { prefix: `${options.prefix}/tenant=${catalog.tenant}/` })).objects;
  const folder = (key: string) => key.slice(0, key.lastIndexOf("/") + 1);
  const splitting = new Set(listed.filter((o) => o.key.endsWith(`/${MANIFEST_NAME}`)).map((o) => folder(o.key)));
  const candidates = listed.filter((o) => HOURLY_KEY.test(o.key) && !splitting.has(folder(o.key)));
  const legacy: R2Object[] = [];
  for (let i = 0; i < candidates.length; i += 1000) {
    const page = candidates.slice(i, i + 1000);
    const { createdAt, unknown } = await catalog.unknownKeys(page.map((o) => o.key));
    const unknownKeys = new Set(unknown);
    legacy.push(...page.filter((o) => unknownKeys.has(o.key) && o.uploaded.getTime() <= createdAt));
  }
  const files: DataFileInfo[] = [];
  for (const obj of legacy.slice(0, options.limit)) {
    const body = await bucket.get(obj.key);
    if (!body) continue; // deleted meanwhile
    const bytes = new Uint8Array(await body.arrayBuffer());
    const [, day, hour] = HOURLY_KEY.exec(obj.key) as RegExpExecArray;
    files.push(describeFile(obj.key, Date.parse(`${day}T${hour}:00:00Z`), bytes, readTable(bytes)));
  }
  const report: AdoptReport = { tenant: catalog.tenant, adopted: [], remaining: legacy.length, snapshot: null };
  if (files.length === 0) return report;
  const committed = await catalog.commit({
    change: "insert",
    add: files,
    message: `adopt ${files.length} objects written before the catalog`,
  });
  if (!committed.ok) throw new Error(committed.conflict);
  return {
    ...report,
    adopted: files.map((f) => f.key),
    remaining: legacy.length - files.length,
    snapshot: committed.snapshot,
  };
}
