import type { DataFileInfo } from "../../columns/stats";
import type {
  CatalogExport,
  ErasureRecord,
  ErasureSubject,
  RetentionAnswer,
  RetentionReport,
  SnapshotList,
} from "../../protocol/lake";
import type { CommitRequest, CommitResult, SnapshotFile } from "./catalog";
import type { LakeCatalog, LakeRead, LakeReadQuery } from "./LakeCatalog";

/** The CATALOG binding: one LakeCatalog per tenant, by name. */
export type CatalogNamespace = DurableObjectNamespace<LakeCatalog>;

/** A tenant's catalog as its callers use it: typed RPC to its Durable Object. */
export interface TenantCatalog {
  readonly tenant: string;
  commit(req: CommitRequest): Promise<CommitResult>;
  read(q: LakeReadQuery): Promise<LakeRead>;
  snapshots(limit: number, before?: number): Promise<SnapshotList>;
  unknownKeys(keys: string[]): Promise<{ createdAt: number; unknown: string[] }>;
  /** Expires the snapshots older than `retentionMs` (SNAPSHOT_RETENTION_HOURS), never the latest. */
  expire(retentionMs: number): Promise<{ expired: number[]; scheduled: string[] }>;
  forget(keys: string[]): Promise<void>;
  exportCatalog(dataPath?: string): Promise<CatalogExport>;
  retention(): Promise<RetentionAnswer>;
  setRetention(days: number | null): Promise<RetentionAnswer>;
  /** Removes the hours past the tenant's retention from the table, in one snapshot, and the rollups past ROLLUP_RETENTION_DAYS. */
  retain(): Promise<RetentionReport>;
  /** The latest files that may hold rows of `subject` (their column bounds do not rule it out). */
  candidates(subject: ErasureSubject): Promise<SnapshotFile[]>;
  recordErasure(record: Omit<ErasureRecord, "id">): Promise<ErasureRecord>;
  erasures(limit: number): Promise<ErasureRecord[]>;
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
    retention: async () => stub.retention(tenant),
    setRetention: async (days) => stub.setRetention(tenant, days),
    retain: async () => stub.retain(tenant),
    candidates: async (subject) => stub.candidates(tenant, subject),
    recordErasure: async (record) => stub.recordErasure(tenant, record),
    erasures: async (limit) => stub.erasures(tenant, limit),
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
