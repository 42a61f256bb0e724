// What every step of compaction shares: its options and defaults, and what it reports.

const MiB = 1024 * 1024;

/** Where and how much to compact. */
export interface CompactionOptions {
  /** Key prefix of the event objects, as given to `R2ParquetSink`. Default `"events"`. */
  prefix?: string;
  /**
   * Skip an hour whose objects total more than this many (compressed) bytes: a bound on one hour's
   * work (a split decodes it twice, spread over cron runs by `deadline`). Default 1 GiB.
   */
  maxInputBytes?: number;
  /**
   * Most bytes of decoded Arrow data one compaction holds: the memory bound, as event Parquet
   * decodes to 4–30× its size and a compaction peaks at 3–5× the decoded bytes (inputs, merged
   * copy, IPC, parquet-wasm's copy) in an isolate of 128 MB. An hour that decodes to more is
   * split into parts of about half this. Default 16 MiB.
   */
  maxDecodedBytes?: number;
  /** An hour is closed, so compacted, once its end plus this is before `now`. Default 15 minutes. */
  graceMs?: number;
  /** `compactAll` lists and starts no more after this much wall time (but always starts one hour). Default 20 s. */
  budgetMs?: number;
  /**
   * Epoch ms after which a split hour stops between parts (after writing at least one); the next
   * run resumes it from its manifest. `compactAll` sets it from `budgetMs`. Default: none.
   */
  deadline?: number;
}

export const DEFAULTS: Required<CompactionOptions> = {
  prefix: "events",
  maxInputBytes: 1024 * MiB,
  maxDecodedBytes: 16 * MiB,
  graceMs: 15 * 60_000,
  budgetMs: 20_000,
  deadline: Number.POSITIVE_INFINITY,
};

/** What compacting one hour did. */
export interface CompactionSummary {
  tenant: string;
  /** Start of the UTC hour (epoch ms). */
  hour: number;
  /** Objects read (an earlier compacted object included). */
  inputs: number;
  rowsIn: number;
  rowsOut: number;
  /** Rows dropped because another row had the same id. */
  duplicates: number;
  /** The compacted object (the first part of a split hour); empty when none was written. */
  key: string;
  /** Every compacted object of the hour: `[key]`, or the parts of a split hour. */
  objects: string[];
  /** The catalog snapshot that replaced the inputs with `objects`; absent when none did. */
  snapshot?: number;
  /** The hour's rollup file (`rollups/tenant=<t>/grain=hour/…`, its own table), committed after the compaction; empty when none was written. */
  rollupKey: string;
  bytesIn: number;
  bytesOut: number;
  /** Why nothing was committed; absent when the hour was compacted. */
  skipped?: string;
}

/** The summary of an hour before anything is read: nothing in, nothing out. */
export function emptySummary(tenant: string, hour: number): CompactionSummary {
  return {
    tenant,
    hour,
    inputs: 0,
    rowsIn: 0,
    rowsOut: 0,
    duplicates: 0,
    key: "",
    objects: [],
    rollupKey: "",
    bytesIn: 0,
    bytesOut: 0,
  };
}

/** Marks the summary as skipped, for `reason`, and returns it. */
export function skip(summary: CompactionSummary, reason: string): CompactionSummary {
  summary.skipped = reason;
  return summary;
}
