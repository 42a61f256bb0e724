import type { LoadReport } from "../protocol/routes";

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
 */
export class Registry {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    sql.exec(
      `CREATE TABLE IF NOT EXISTS shards (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, connections INTEGER NOT NULL DEFAULT 0)`,
    );
    sql.exec(`CREATE TABLE IF NOT EXISTS clients (client TEXT PRIMARY KEY, shard INTEGER NOT NULL)`);
    sql.exec(
      `CREATE TABLE IF NOT EXISTS shard_health (n INTEGER PRIMARY KEY, draining INTEGER NOT NULL DEFAULT 0, report TEXT)`,
    );
  }

  meta(key: string): string | null {
    return this.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = ?`, key).toArray()[0]?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)`, key, value);
  }

  shards(): Shard[] {
    return this.sql.exec<ShardRow>(`${SHARD_SELECT} ORDER BY s.n`).toArray().map(toShard);
  }

  shardById(id: string): Shard | null {
    const row = this.sql.exec<ShardRow>(`${SHARD_SELECT} WHERE s.id = ?`, id).toArray()[0];
    return row ? toShard(row) : null;
  }

  addShard(n: number, id: string): Shard {
    this.sql.exec(`INSERT INTO shards (n, id, connections) VALUES (?, ?, 0)`, n, id);
    return { n, id, connections: 0, draining: false, report: null };
  }

  setDraining(n: number, draining: boolean): void {
    this.sql.exec(
      `INSERT INTO shard_health (n, draining) VALUES (?, ?) ON CONFLICT (n) DO UPDATE SET draining = excluded.draining`,
      n,
      draining ? 1 : 0,
    );
  }

  saveReport(report: LoadReport): void {
    this.sql.exec(
      `INSERT INTO shard_health (n, report) VALUES (?, ?) ON CONFLICT (n) DO UPDATE SET report = excluded.report`,
      report.n,
      JSON.stringify(report),
    );
  }

  setConnections(n: number, connections: number): void {
    this.sql.exec(`UPDATE shards SET connections = ? WHERE n = ?`, Math.max(0, connections), n);
  }

  clientShard(client: string): number | null {
    return (
      this.sql.exec<{ shard: number }>(`SELECT shard FROM clients WHERE client = ?`, client).toArray()[0]?.shard ?? null
    );
  }

  mapClient(client: string, shard: number): void {
    this.sql.exec(`INSERT OR REPLACE INTO clients (client, shard) VALUES (?, ?)`, client, shard);
  }

  forgetClient(client: string): void {
    this.sql.exec(`DELETE FROM clients WHERE client = ?`, client);
  }
}
