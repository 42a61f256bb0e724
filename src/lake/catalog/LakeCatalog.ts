import { DurableObject } from "cloudflare:workers";
import type {
  CatalogExport,
  ErasureRecord,
  ErasureSubject,
  RetentionAnswer,
  RetentionReport,
  SnapshotList,
} from "../../protocol/lake";
import { VERSION } from "../../protocol/version";
import { Catalog, type CommitRequest, type CommitResult, type SnapshotFile } from "./catalog";
import { CommitQueue } from "./commit-queue";
import type { Grain } from "./rollup-tables";
import { type LakeVars, lakeSettings } from "./settings";
import { durableSql } from "./sql";

const DAY_MS = 86_400_000;

/** Which snapshot, which range, and which table (`rollup`: the rollup table of that grain; absent: events). */
export interface LakeReadQuery {
  snapshot?: number;
  asOf?: number;
  from?: number;
  to?: number;
  rollup?: Grain;
}

/** What a read of the lake gets: the snapshot it reads and its files, or why there is none. */
export type LakeRead = { snapshot: number; files: SnapshotFile[] } | { missing: string };

/**
 * A tenant's DuckLake catalog (`idFromName(tenant)`): the shell that runs {@link Catalog} on the
 * Durable Object's SQLite and answers RPC from the replicas (commits), the Worker (reads,
 * snapshots, export) and the cron (expiry, cleanup). Commits go through a {@link CommitQueue}, so
 * concurrent flushes share a transaction and a snapshot.
 */
export class LakeCatalog extends DurableObject<LakeVars> {
  private catalog: Catalog | null = null;
  private readonly queue: CommitQueue<CommitRequest, CommitResult>;

  constructor(ctx: DurableObjectState, env: LakeVars) {
    super(ctx, env);
    this.queue = new CommitQueue(
      (batch) => (this.catalog as Catalog).commit(batch, Date.now()),
      lakeSettings(env).commitWindowMs,
    );
  }

  /** Commits a change (see CommitRequest); resolves once it is in SQLite, with its snapshot. */
  commit(tenant: string, req: CommitRequest): Promise<CommitResult> {
    this.open(tenant);
    return this.queue.submit(req);
  }

  /** The files of a snapshot (by id, by time, or the latest) whose hour (a rollup's: period) starts in [from, to). */
  read(tenant: string, q: LakeReadQuery): LakeRead {
    const catalog = this.open(tenant);
    let snapshot: number;
    try {
      snapshot = catalog.resolve(q);
    } catch (err) {
      return { missing: (err as Error).message };
    }
    return { snapshot, files: catalog.files(snapshot, q.from, q.to, q.rollup ?? "events") };
  }

  snapshots(tenant: string, limit: number, before?: number): SnapshotList {
    return this.open(tenant).snapshots(limit, before);
  }

  /** Of these keys, the ones the catalog does not know; and when it was created (older objects predate it). */
  unknownKeys(tenant: string, keys: string[]): { createdAt: number; unknown: string[] } {
    const catalog = this.open(tenant);
    return { createdAt: catalog.createdAt(), unknown: catalog.unknownKeys(keys) };
  }

  /** Expires snapshots older than `retentionMs`; returns those expired and the files due for deletion. */
  expire(tenant: string, retentionMs: number): { expired: number[]; scheduled: string[] } {
    const catalog = this.open(tenant);
    const now = Date.now();
    const expired = catalog.expire(now - retentionMs, now);
    return { expired, scheduled: catalog.scheduled(now) };
  }

  /** The tenant's retention: its own (PUT /lake/retention) or RETENTION_DAYS. */
  retention(tenant: string): RetentionAnswer {
    const own = this.open(tenant).retentionDays();
    const settings = lakeSettings(this.env);
    const fallback = settings.eventRetentionMs === null ? null : settings.eventRetentionMs / DAY_MS;
    return {
      days: own ?? fallback,
      source: own === null ? "default" : "tenant",
      rollupDays: settings.rollupRetentionMs / DAY_MS,
    };
  }

  /** Sets the tenant's own retention in days (null: back to RETENTION_DAYS). */
  setRetention(tenant: string, days: number | null): RetentionAnswer {
    this.open(tenant).setRetentionDays(days);
    return this.retention(tenant);
  }

  /**
   * Removes, in one snapshot, the hours that ended more than the tenant's retention ago, and the
   * rollups whose periods ended more than ROLLUP_RETENTION_DAYS ago (a snapshot per rollup table).
   */
  retain(tenant: string): RetentionReport {
    const { days, rollupDays } = this.retention(tenant);
    const now = Date.now();
    return this.open(tenant).retain(days === null ? null : now - days * DAY_MS, now, now - rollupDays * DAY_MS);
  }

  /** The latest snapshot's files whose column bounds do not rule out rows of `subject`. */
  candidates(tenant: string, subject: ErasureSubject): SnapshotFile[] {
    return this.open(tenant).candidates(subject);
  }

  recordErasure(tenant: string, record: Omit<ErasureRecord, "id">): ErasureRecord {
    return this.open(tenant).recordErasure(record);
  }

  erasures(tenant: string, limit: number): ErasureRecord[] {
    return this.open(tenant).erasures(limit);
  }

  /** Forgets scheduled files the cleanup deleted. */
  forget(tenant: string, keys: string[]): void {
    this.open(tenant).forget(keys);
  }

  exportCatalog(tenant: string, dataPath?: string): CatalogExport {
    return this.open(tenant).exportCatalog(dataPath);
  }

  /** Group-commit rounds and the commits they carried since start-up. */
  stats(): { rounds: number; commits: number } {
    return { rounds: this.queue.rounds, commits: this.queue.requests };
  }

  private open(tenant: string): Catalog {
    if (!this.catalog) {
      const settings = lakeSettings(this.env);
      const catalog = new Catalog(durableSql(this.ctx.storage), {
        tenant,
        prefix: settings.prefix,
        dataPath: settings.dataPath,
        author: `DuckTail ${VERSION}`,
      });
      catalog.init(Date.now());
      this.catalog = catalog;
    }
    return this.catalog;
  }
}
