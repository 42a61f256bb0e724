/** Error codes sent to clients, in frames (`error`, `ack.rejected`) and HTTP bodies. */
export const ErrorCode = {
  badJson: "bad_json",
  /** A body that is not UTF-8. */
  invalidEncoding: "invalid_encoding",
  badFrame: "bad_frame",
  unknownType: "unknown_type",
  frameTooLarge: "frame_too_large",
  batchTooLarge: "batch_too_large",
  eventTooLarge: "event_too_large",
  invalidEvent: "invalid_event",
  invalidField: "invalid_field",
  invalidTimestamp: "invalid_timestamp",
  invalidStorageMode: "invalid_storage_mode",
  badRequest: "bad_request",
  bufferFull: "buffer_full",
  unauthorized: "unauthorized",
  forbidden: "forbidden",
  notFound: "not_found",
  methodNotAllowed: "method_not_allowed",
  /** A `Range` header no byte of the object satisfies, or a malformed one (416). */
  rangeNotSatisfiable: "range_not_satisfiable",
  flushFailed: "flush_failed",
  /**
   * A durable batch is committed to the replica's SQLite but not yet in R2 when its ack was due
   * (DURABLE_ACK_TIMEOUT_MS): it will reach R2 without being sent again, so do not resend it.
   * Carries `pending: {replica, firstSeq, lastSeq}`, the rows' `replica` and `seq` in Parquet.
   */
  durablePending: "durable_pending",
  /** A session recording past its size limit (RECORDING_MAX_SESSION_BYTES): its recorder stops. */
  recordingFull: "recording_full",
  internal: "internal",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  bad_json: 400,
  invalid_encoding: 400,
  bad_frame: 400,
  unknown_type: 400,
  frame_too_large: 413,
  batch_too_large: 413,
  event_too_large: 413,
  invalid_event: 400,
  invalid_field: 400,
  invalid_timestamp: 400,
  invalid_storage_mode: 400,
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  range_not_satisfiable: 416,
  buffer_full: 503,
  recording_full: 413,
  flush_failed: 502,
  // Accepted, not yet done: not a 5xx, which clients and proxies retry (a retry stores it twice).
  durable_pending: 202,
};

/** A client-facing error: thrown inside, turned into a response or frame at the edge. */
export class DuckTailError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** More about it, sent beside `code` and `message` (e.g. which sinks failed, a pending seq range). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "DuckTailError";
  }
  get status(): number {
    return HTTP_STATUS[this.code] ?? 500;
  }
}

/** The JSON response for an error; never a stack trace. */
export function errorResponse(err: unknown): Response {
  const e = err instanceof DuckTailError ? err : new DuckTailError(ErrorCode.internal, "internal error");
  if (!(err instanceof DuckTailError)) console.error("ducktail: unexpected error", err);
  return Response.json({ error: { ...e.details, code: e.code, message: e.message } }, { status: e.status });
}
