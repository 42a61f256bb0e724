import { deleteAll } from "../bucket";
import type { TenantCatalog } from "./client";
import { ROLLUP_PREFIX } from "./rollup-tables";
import type { LakeSettings } from "./settings";

/** What one cleanup of a tenant's lake did. */
export interface CleanupReport {
  tenant: string;
  /** Snapshots expired (older than SNAPSHOT_RETENTION_HOURS). */
  expired: number;
  /** Objects deleted because no remaining snapshot lists them (replaced by compaction, removed). */
  deleted: string[];
  /** Objects deleted because no snapshot ever listed them and they are older than the grace period. */
  orphans: string[];
}

/**
 * The lake's cleanup pass for one tenant:
 * 1. the catalog expires its snapshots older than `retentionMs` and schedules the files no
 *    remaining snapshot lists;
 *    those objects are deleted, then forgotten;
 * 2. every Parquet object under the tenant's folders (events and rollups) that the catalog does not know (a flush or compaction
 *    that died between its put and its commit) is deleted once older than `orphanGraceMs`. Objects
 *    older than the catalog itself predate it and are left alone.
 * A commit takes seconds; the grace (hours) is what keeps a slow commit's object from being taken.
 */
export async function cleanLake(
  bucket: R2Bucket,
  catalog: TenantCatalog,
  now: number,
  settings: Pick<LakeSettings, "retentionMs" | "orphanGraceMs" | "prefix">,
): Promise<CleanupReport> {
  const { retentionMs, orphanGraceMs, prefix } = settings;
  const { expired, scheduled } = await catalog.expire(retentionMs);
  await deleteAll(bucket, scheduled);
  if (scheduled.length > 0) await catalog.forget(scheduled);

  const orphans: string[] = [];
  for (const folder of [prefix, ROLLUP_PREFIX]) {
    let cursor: string | undefined;
    do {
      const page = await bucket.list({ prefix: `${folder}/tenant=${catalog.tenant}/`, cursor });
      const old = page.objects.filter((o) => o.key.endsWith(".parquet") && o.uploaded.getTime() <= now - orphanGraceMs);
      if (old.length > 0) {
        const { createdAt, unknown } = await catalog.unknownKeys(old.map((o) => o.key));
        const uploaded = new Map(old.map((o) => [o.key, o.uploaded.getTime()]));
        orphans.push(...unknown.filter((key) => (uploaded.get(key) as number) >= createdAt));
      }
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
  }
  await deleteAll(bucket, orphans);
  return { tenant: catalog.tenant, expired: expired.length, deleted: scheduled, orphans };
}
