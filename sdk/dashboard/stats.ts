// What the pages read of GET /stats (the coordinator's registry and each shard's counters).
import type { ShardListing, TenantListing } from "../../src/protocol/calls";

/** A shard of GET /stats: its listing and its replica's counters. */
export interface ShardStats extends ShardListing {
  /** The replica's own counters; null when it did not answer. */
  stats:
    | (Record<string, unknown> & {
        received?: number;
        bufferedBytes?: number;
        maxBufferBytes?: number;
        bufferedRows?: number;
        connections?: number;
        subscribers?: number;
        lastError?: string | null;
        sinks?: Record<string, { delivered: number; failures: number; deadLettered: number; lastError: string | null }>;
      })
    | null;
}

export interface TenantStats extends TenantListing {
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
