import type { LoadReport } from "../protocol/routes";
import { Rounds } from "../rounds";

/** One replica shard of a tenant, as the coordinator records it. */
export interface Shard {
  n: number;
  /** The replica's Durable Object id (hex), `REPLICA.idFromName(tenant + "/" + n)`. */
  id: string;
  /** Open WebSockets dog placed on it. */
  connections: number;
  /** Left the routing table on a scale-down; takes sockets again only if no other shard has room. */
  draining: boolean;
  /** Its latest load report, if any. */
  report: LoadReport | null;
}

type ShardRow = {
  n: number;
  id: string;
  connections: number;
  draining: number | null;
  report: string | null;
};

const SHARD_SELECT = `SELECT s.n, s.id, s.connections, h.draining, h.report FROM shards s LEFT JOIN shard_health h ON h.n = s.n`;

function toShard(r: ShardRow): Shard {
  return {
    n: r.n,
    id: r.id,
    connections: r.connections,
    draining: r.draining === 1,
    report: r.report ? (JSON.parse(r.report) as LoadReport) : null,
  };
}

/**
 * The coordinator's registry in its SQLite storage. dog's Group keeps shards, counts and the
 * client mapping only in memory (dog #22, #25); persisting them lets a restarted coordinator
 * reuse the same shards and keep the gossip mesh whole.
 *
 * Shards, meta and the client map are read once and kept in memory, written through: every
 * socket's `identify` reads them, and a query per connect (a join and a report parsed per shard)
 * was most of its cost.
 */
export class Registry {
  private readonly metaCache = new Map<string, string>();
  /** Every shard by number, in number order. */
  private shardCache: Shard[];
  /** Each connected client's shard (dog forgets a client when its last socket closes). */
  private readonly clientCache = new Map<string, number>();
  /** Counts and client mappings changed in memory and not yet written: `committed` writes them. */
  private readonly dirtyCounts = new Set<number>();
  private readonly dirtyClients = new Set<string>();
  private readonly commits = new Rounds(
    () => null,
    async () => {
      this.persist();
      await this.sync();
    },
  );

  constructor(
    private readonly sql: SqlStorage,
    /** Resolves once every write so far is committed (`ctx.storage.sync()`). */
    private readonly sync: () => Promise<void> = async () => {},
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    sql.exec(
      `CREATE TABLE IF NOT EXISTS shards (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, connections INTEGER NOT NULL DEFAULT 0)`,
    );
    sql.exec(`CREATE TABLE IF NOT EXISTS clients (client TEXT PRIMARY KEY, shard INTEGER NOT NULL)`);
    sql.exec(
      `CREATE TABLE IF NOT EXISTS shard_health (n INTEGER PRIMARY KEY, draining INTEGER NOT NULL DEFAULT 0, report TEXT)`,
    );
    for (const r of sql.exec<{ key: string; value: string }>(`SELECT key, value FROM meta`)) {
      this.metaCache.set(r.key, r.value);
    }
    this.shardCache = sql.exec<ShardRow>(`${SHARD_SELECT} ORDER BY s.n`).toArray().map(toShard);
    for (const r of sql.exec<{ client: string; shard: number }>(`SELECT client, shard FROM clients`)) {
      this.clientCache.set(r.client, r.shard);
    }
  }

  meta(key: string): string | null {
    return this.metaCache.get(key) ?? null;
  }

  setMeta(key: string, value: string): void {
    this.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)`, key, value);
    this.metaCache.set(key, value);
  }

  /** Every shard, in number order (copies: callers sort and filter them). */
  shards(): Shard[] {
    return this.shardCache.map((s) => ({ ...s }));
  }

  shardById(id: string): Shard | null {
    const s = this.shardCache.find((x) => x.id === id);
    return s ? { ...s } : null;
  }

  addShard(n: number, id: string): Shard {
    this.sql.exec(`INSERT INTO shards (n, id, connections) VALUES (?, ?, 0)`, n, id);
    const shard: Shard = { n, id, connections: 0, draining: false, report: null };
    this.shardCache = [...this.shardCache, shard].sort((a, b) => a.n - b.n);
    return { ...shard };
  }

  setDraining(n: number, draining: boolean): void {
    this.sql.exec(
      `INSERT INTO shard_health (n, draining) VALUES (?, ?) ON CONFLICT (n) DO UPDATE SET draining = excluded.draining`,
      n,
      draining ? 1 : 0,
    );
    const s = this.cached(n);
    if (s) s.draining = draining;
  }

  saveReport(report: LoadReport): void {
    this.sql.exec(
      `INSERT INTO shard_health (n, report) VALUES (?, ?) ON CONFLICT (n) DO UPDATE SET report = excluded.report`,
      report.n,
      JSON.stringify(report),
    );
    const s = this.cached(report.n);
    if (s) s.report = report;
  }

  setConnections(n: number, connections: number): void {
    const s = this.cached(n);
    if (!s) return;
    s.connections = Math.max(0, connections);
    this.dirtyCounts.add(n);
  }

  private cached(n: number): Shard | undefined {
    return this.shardCache.find((s) => s.n === n);
  }

  clientShard(client: string): number | null {
    return this.clientCache.get(client) ?? null;
  }

  mapClient(client: string, shard: number): void {
    if (this.clientCache.get(client) === shard) return;
    this.clientCache.set(client, shard);
    this.dirtyClients.add(client);
  }

  forgetClient(client: string): void {
    if (!this.clientCache.delete(client)) return;
    this.dirtyClients.add(client);
  }

  /**
   * Resolves once the counts and client mappings changed so far are committed: a group commit.
   * Every socket's connect and close changes them; written as each came, each answer to dog's
   * identify waited for a commit of its own (the output gate), which made connecting 1,000 sockets
   * ~40 % slower. One round is committing at a time, and the changes made meanwhile share the next.
   */
  committed(): Promise<void> {
    return this.commits.next().done;
  }

  /** Writes the counts and client mappings changed since the last write, in one go. */
  persist(): void {
    for (const n of this.dirtyCounts) {
      const s = this.cached(n);
      if (s) this.sql.exec(`UPDATE shards SET connections = ? WHERE n = ?`, s.connections, n);
    }
    this.dirtyCounts.clear();
    for (const client of this.dirtyClients) {
      const shard = this.clientCache.get(client);
      if (shard === undefined) this.sql.exec(`DELETE FROM clients WHERE client = ?`, client);
      else this.sql.exec(`INSERT OR REPLACE INTO clients (client, shard) VALUES (?, ?)`, client, shard);
    }
    this.dirtyClients.clear();
  }
}
