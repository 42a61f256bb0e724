/** duck-record.js's options: duck.js's `recordOptions`, with their defaults. */
export interface RecordOptions {
  /** Stop recording after this many minutes of a page. Default 30. */
  maxMinutes: number;
  /** Stop recording after this many bytes of events (JSON, before compression) in a page. Default 10 MB. */
  maxBytes: number;
  /** A chunk is sent at least this often while events come (ms). Default 5000. */
  chunkMs: number;
  /** A chunk is sent at once when its events pass this many bytes (JSON). Default 256 KB. */
  chunkBytes: number;
  /** A chunk not acked after this long is sent again (ms). Default 5000. */
  resendMs: number;
  /** Record even when the browser asks not to be tracked (Do Not Track, Global Privacy Control). Default false. */
  ignoreDoNotTrack: boolean;
}

export const DEFAULT_RECORD_OPTIONS: RecordOptions = {
  maxMinutes: 30,
  maxBytes: 10_000_000,
  chunkMs: 5000,
  chunkBytes: 256_000,
  resendMs: 5000,
  ignoreDoNotTrack: false,
};

/** The options given, over the defaults; an option of the wrong type keeps its default. */
export function recordOptions(given: Record<string, unknown> | undefined): RecordOptions {
  const o = { ...DEFAULT_RECORD_OPTIONS };
  for (const [name, fallback] of Object.entries(DEFAULT_RECORD_OPTIONS)) {
    const value = given?.[name];
    if (typeof value === typeof fallback && (typeof value !== "number" || value > 0)) {
      (o as Record<string, unknown>)[name] = value;
    }
  }
  return o;
}

/** Whether a page recorded for `elapsedMs` with `bytes` of events must stop (maxMinutes, maxBytes). */
export function overLimits(
  o: Pick<RecordOptions, "maxMinutes" | "maxBytes">,
  elapsedMs: number,
  bytes: number,
): boolean {
  return elapsedMs > o.maxMinutes * 60_000 || bytes > o.maxBytes;
}

/** Whether a session is in the share `rate` (0..1) of recorded sessions: by its id, as duck.js picks it. */
export function sampled(session: string, rate: number): boolean {
  return Number.parseInt(session.slice(0, 8), 16) / 2 ** 32 < rate;
}
