import { numericVar } from "../protocol/limits";

const DAY_MS = 86_400_000;

/** The recording vars (wrangler.toml), all optional. */
export interface RecordingVars {
  /**
   * Days a session recording is kept, counted from the UTC day it started. Default: the lake's
   * retention for the tenant (its `PUT /lake/retention`, else RETENTION_DAYS); when that keeps
   * events for good, recordings are kept too.
   */
  RECORDING_RETENTION_DAYS?: string;
  /** Most stored (gzipped) bytes of one session; past it, chunks are refused (`recording_full`). Default 20 MiB. */
  RECORDING_MAX_SESSION_BYTES?: string;
}

export interface RecordingSettings {
  /** RECORDING_RETENTION_DAYS in ms; null: follow the lake. */
  retentionMs: number | null;
  maxSessionBytes: number;
}

export function recordingSettings(vars: RecordingVars): RecordingSettings {
  return {
    retentionMs: vars.RECORDING_RETENTION_DAYS ? numericVar(vars.RECORDING_RETENTION_DAYS, 0, false) * DAY_MS : null,
    maxSessionBytes: numericVar(vars.RECORDING_MAX_SESSION_BYTES, 20 * 1024 * 1024, false),
  };
}
