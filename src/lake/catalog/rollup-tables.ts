import { ROLLUP_GRAINS, type RollupGrain } from "../../protocol/lake";
import type { TableColumn } from "./events-table";

/**
 * The rollup tables of a tenant's lake, in the schema `rollups` (objects under `rollups/`): one
 * table per grain, `hourly`, `daily` and `monthly`, each a file per period. A row is either a
 * group, (period, source, type, importance) with its `events`, or a page, (period, path) with its
 * page views in `events`; both with `uniques`, the estimate of `sketch`, a HyperLogLog of their
 * visitors (`src/views/hll.ts`, as JSON), so a coarser grain merges the sketches of the finer one
 * and never sums uniques. Ids are fixed, after the events table's, so every catalog numbers them alike.
 */

export type Grain = RollupGrain;
export const GRAINS: readonly Grain[] = ROLLUP_GRAINS;

export const ROLLUP_SCHEMA_ID = 4;
export const ROLLUP_SCHEMA_NAME = "rollups";
/** The rollups' key prefix: outside the events', so globs over the events never read them. */
export const ROLLUP_PREFIX = "rollups";
/** The next free catalog id after the rollup tables'. */
export const ROLLUP_NEXT_CATALOG_ID = 14;

export interface RollupTable {
  grain: Grain;
  id: number;
  name: string;
  partitionId: number;
  mappingId: number;
  /** Transforms of `period`: a file's partition values name its period. */
  partitionKeys: readonly ("year" | "month" | "day" | "hour")[];
}

export const ROLLUP_TABLES: Record<Grain, RollupTable> = {
  hour: {
    grain: "hour",
    id: 5,
    name: "hourly",
    partitionId: 6,
    mappingId: 7,
    partitionKeys: ["year", "month", "day", "hour"],
  },
  day: { grain: "day", id: 8, name: "daily", partitionId: 9, mappingId: 10, partitionKeys: ["year", "month", "day"] },
  month: { grain: "month", id: 11, name: "monthly", partitionId: 12, mappingId: 13, partitionKeys: ["year", "month"] },
};

/** The rollup columns, in file order (src/lake/rollups.ts writes them). */
export const ROLLUP_COLUMNS: readonly TableColumn[] = (
  [
    ["period", "timestamp"],
    ["source", "varchar"],
    ["type", "varchar"],
    ["importance", "varchar"],
    ["path", "varchar"],
    ["events", "int64"],
    ["uniques", "int64"],
    ["sketch", "varchar"],
  ] as const
).map(([name, type], i) => ({ id: i + 1, name, type }));

export const ROLLUP_PARTITION_COLUMN = "period";

/** Start of the period of `grain` that holds `ms` (UTC). */
export function periodStart(grain: Grain, ms: number): number {
  const d = new Date(ms);
  if (grain === "hour") return ms - (((ms % 3_600_000) + 3_600_000) % 3_600_000);
  if (grain === "day") return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** Start of the period after the one starting at `start`. */
export function periodEnd(grain: Grain, start: number): number {
  if (grain === "hour") return start + 3_600_000;
  if (grain === "day") return start + 86_400_000;
  const d = new Date(start);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** The finer grain a grain is rolled up from (none for hours: compaction writes them). */
export function finerGrain(grain: Grain): Grain | null {
  return grain === "month" ? "day" : grain === "day" ? "hour" : null;
}
