import { numericVar } from "../../protocol/limits";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** The lake's vars (wrangler.toml), all optional. */
export interface LakeVars {
  /**
   * `ducklake_metadata.data_path`: the bucket's root as DuckDB reaches it; object keys are relative
   * to it. Default `s3://ducktail-events/` (the bucket wrangler.toml binds).
   */
  LAKE_DATA_PATH?: string;
  /** How long a snapshot stays readable (time travel), and so how long replaced files stay in R2. Default 24. */
  SNAPSHOT_RETENTION_HOURS?: string;
  /** How old an object no snapshot ever listed must be before the cleanup deletes it. Default 6. */
  ORPHAN_GRACE_HOURS?: string;
  /**
   * Group commit: a commit arriving within this long of the last round waits this long for others
   * to share its transaction (a commit to an idle catalog runs at once). Default 5 ms.
   */
  CATALOG_COMMIT_WINDOW_MS?: string;
  /**
   * Days an hour of events stays in the lake: the cron removes every hour partition that ended
   * more than this long ago, in one snapshot; its objects go once that snapshot's predecessors
   * expire (SNAPSHOT_RETENTION_HOURS). A tenant's `PUT /lake/retention` overrides it. Default
   * none: events are kept.
   */
  RETENTION_DAYS?: string;
  /** Days the rollup tables keep their rows (hourly, daily and monthly alike). Default 730. */
  ROLLUP_RETENTION_DAYS?: string;
}

export interface LakeSettings {
  prefix: string;
  dataPath: string;
  retentionMs: number;
  orphanGraceMs: number;
  commitWindowMs: number;
  /** RETENTION_DAYS in ms; null: events are kept. */
  eventRetentionMs: number | null;
  rollupRetentionMs: number;
}

export function lakeSettings(vars: LakeVars): LakeSettings {
  const dataPath = vars.LAKE_DATA_PATH || "s3://ducktail-events/";
  return {
    prefix: "events",
    dataPath: dataPath.endsWith("/") ? dataPath : `${dataPath}/`,
    retentionMs: numericVar(vars.SNAPSHOT_RETENTION_HOURS, 24) * HOUR_MS,
    orphanGraceMs: numericVar(vars.ORPHAN_GRACE_HOURS, 6) * HOUR_MS,
    commitWindowMs: numericVar(vars.CATALOG_COMMIT_WINDOW_MS, 5),
    eventRetentionMs: vars.RETENTION_DAYS ? numericVar(vars.RETENTION_DAYS, 0, false) * DAY_MS : null,
    rollupRetentionMs: numericVar(vars.ROLLUP_RETENTION_DAYS, 730, false) * DAY_MS,
  };
}
