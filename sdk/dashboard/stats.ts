// What the pages read of GET /stats (the coordinator's registry and each shard's counters).

/** A shard's latest load report (src/protocol/routes.ts LoadReport). */
export interface LoadReport {
  n: number;
  requests: number;
  events: number;
  seconds: number;
  bufferedBytes: number;
  bufferedRows: number;
  connections: number;
  at: number;
}

export interface ShardStats {
  n: number;
  name: string;
  state: string;
  connections: number;
  health: string;
  lastReport: LoadReport | null;
  /** The replica's own counters; absent when it did not answer. */
  stats?: Record<string, unknown> & {
    received?: number;
    bufferedBytes?: number;
    maxBufferBytes?: number;
    bufferedRows?: number;
    connections?: number;
    subscribers?: number;
    lastError?: string | null;
    sinks?: Record<string, { delivered: number; failures: number; deadLettered: number; lastError: string | null }>;
  };
}

export interface TenantStats {
  tenant: string;
  tier: number;
  pinned: number | null;
  routed: number;
  rps: number;
  shards: ShardStats[];
  connectionLimit?: number;
}

/** A load report older than this no longer says what a shard does now. */
export const REPORT_FRESH_MS = 60_000;

/** Events per second a shard reported last, or null when it has no fresh report. */
export function shardRate(shard: ShardStats, now: number): number | null {
  const r = shard.lastReport;
  if (!r || r.seconds <= 0 || now - r.at > REPORT_FRESH_MS) return null;
  return r.events / r.seconds;
}

/** Events per second over every shard's fresh load report (0 when none is fresh). */
export function eventsPerSecond(stats: TenantStats, now: number): number {
  return stats.shards.reduce((sum, s) => sum + (shardRate(s, now) ?? 0), 0);
}
