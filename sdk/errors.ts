import type { ErrorCode } from "../src/protocol/errors";

/** Codes the client itself gives, next to the server's `ErrorCode`s. */
export const ClientErrorCode = {
  /** `maxQueue` events already wait for an ack; this one was not taken. */
  queueFull: "queue_full",
  /** `close()` ended the client before the event was acked. */
  closed: "closed",
  /** The server dropped live-tail events for a slow subscriber (`count` says how many). */
  tailDropped: "tail_dropped",
  /** The socket reconnected and the subscription was renewed; events in between were missed. */
  tailGap: "tail_gap",
  /** Live tail needs a WebSocket; this client fell back to HTTP. */
  unsupported: "unsupported",
  /** An HTTP answer without a DuckTail error body. */
  http: "http_error",
  /**
   * The Worker cannot be reached (connection refused, DNS, 5xx, 429, a failing upgrade): events
   * wait in the queue and the client retries with backoff. Reported once per outage.
   */
  unreachable: "unreachable",
  /** The runtime refused the socket URL (e.g. `ws://` from an `https://` page). Permanent. */
  invalidUrl: "invalid_url",
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Every failure the client reports: `code` is the server's (e.g. "invalid_field") or the client's. */
export class DuckTailClientError extends Error {
  constructor(
    readonly code: ErrorCode | ClientErrorCode,
    message: string,
    /** The event it concerns, when it concerns one. */
    readonly eventId?: string,
    /** How many events it concerns (tail drops). */
    readonly count?: number,
    /** The HTTP status behind it, when there was one (e.g. 401 on the upgrade or the POST). */
    readonly status?: number,
  ) {
    super(message);
    this.name = "DuckTailClientError";
  }
}
