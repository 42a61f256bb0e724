import type { DataFileInfo } from "../../columns/stats";
import type { CatalogExport, SnapshotList } from "../../protocol/lake";
import type { CommitRequest, CommitResult } from "./catalog";
import type { LakeCatalog, LakeRead } from "./LakeCatalog";

/** The CATALOG binding: one LakeCatalog per tenant, by name. */
export type CatalogNamespace = DurableObjectNamespace<LakeCatalog>;

/** A tenant's catalog as its callers use it: typed RPC to its Durable Object. */
export interface TenantCatalog {
  readonly tenant: string;
  commit(req: CommitRequest): Promise<CommitResult>;
  read(q: { snapshot?: number; asOf?: number; from?: number; to?: number }): Promise<LakeRead>;
  snapshots(limit: number, before?: number): Promise<SnapshotList>;
  unknownKeys(keys: string[]): Promise<{ createdAt: number; unknown: string[] }>;
  /** Expires the snapshots older than `retentionMs` (SNAPSHOT_RETENTION_HOURS), never the latest. */
  expire(retentionMs: number): Promise<{ expired: number[]; scheduled: string[] }>;
  forget(keys: string[]): Promise<void>;
  exportCatalog(dataPath?: string): Promise<CatalogExport>;
}

/** The tenant's catalog; `name` picks another Durable Object for it (benchmarks: a fresh catalog per run). */
export function tenantCatalog(ns: CatalogNamespace, tenant: string, name = tenant): TenantCatalog {
  // Typed as the class, not through Rpc's mapped stub types: every answer is plain data.
  const stub = ns.get(ns.idFromName(name)) as unknown as LakeCatalog;
  return {
    tenant,
    commit: (req) => stub.commit(tenant, req),
    read: async (q) => stub.read(tenant, q),
    snapshots: async (limit, before) => stub.snapshots(tenant, limit, before),
    unknownKeys: async (keys) => stub.unknownKeys(tenant, keys),
    expire: async (retentionMs) => stub.expire(tenant, retentionMs),
    forget: async (keys) => stub.forget(tenant, keys),
    exportCatalog: async (dataPath) => stub.exportCatalog(tenant, dataPath),
  };
}

/**
 * What R2ParquetSink commits through: a flush's objects, as one snapshot (one per group-commit
 * round, shared with the other replicas' flushes). Committing a flush again is a no-op.
 */
export function flushCommits(ns: CatalogNamespace) {
  return {
    async commitFlush(tenant: string, flush: { replica: string; seq: number }, files: DataFileInfo[]): Promise<number> {
      const result = await tenantCatalog(ns, tenant).commit({ change: "insert", add: files, flush });
      if (!result.ok) throw new Error(`catalog refused the flush: ${result.conflict}`);
      return result.snapshot;
    },
  };
}
