import { DuckTailClient } from "./client";
import { ClientErrorCode, type DuckTailClientError } from "./errors";
import type { ErrorListener } from "./reporter";
import type { ClientOptions, FlushReport, TrackOptions, TrackResult } from "./types";
import { checkObject, checkType, describe, isPlainObject } from "./validate";

/** The options of the original package's `DuckTailWSClient`, next to `DuckTailClient`'s. */
export interface WSClientOptions extends Omit<ClientOptions, "key"> {
  /** A write key (the original's name). Default: `key`, else the URL's `?key=`, else none. */
  apiKey?: string;
  /** The same as `apiKey`; give one or the other. */
  key?: string;
  /** Events per batch (the original's name for `maxBatchSize`). Default 100. */
  batchSize?: number;
  /** Most ms an event waits before its batch is sent (the original's name for `batchInterval`). Default 1000. */
  flushInterval?: number;
}

/** What `DuckTailWSClient.track(type, event)` takes besides the type: `DuckTailClient`'s options and `data`. */
export interface WSTrackEvent extends TrackOptions {
  /** Free-form JSON object. */
  data?: Record<string, unknown>;
}

const EVENT_FIELDS = ["data", "importance", "userId", "anonymousId", "sessionId", "timestamp", "source", "id"];
const CALL = "track(type, event?)";

/**
 * The original package's WebSocket client, kept so code written for it runs unchanged:
 * `new DuckTailWSClient({ url: "wss://<worker>/ws", apiKey })`, `await client.connect()`,
 * `client.track(type, { data, importance, userId, … })`. A thin adapter over `DuckTailClient`
 * (same transport, reconnects, HTTP fallback, bounded queue and error reporting).
 */
export class DuckTailWSClient {
  /** The client underneath, for what the original did not have (`subscribe`, `identify`, …). */
  readonly client: DuckTailClient;

  /** Throws a TypeError for options that cannot work (see `DuckTailClient`). */
  constructor(options: WSClientOptions) {
    if (!isPlainObject(options)) {
      const got = describe(options);
      throw new TypeError(
        `new DuckTailWSClient(options): options must be an object like { url: "wss://<worker>/ws", apiKey }; got ${got}`,
      );
    }
    const { apiKey, key, batchSize, flushInterval, ...rest } = options;
    if (apiKey !== undefined && key !== undefined && apiKey !== key) {
      throw new TypeError("new DuckTailWSClient(options): apiKey and key name the same thing; give one of them");
    }
    this.client = new DuckTailClient({
      ...rest,
      key: apiKey ?? key,
      maxBatchSize: batchSize ?? rest.maxBatchSize,
      batchInterval: flushInterval ?? rest.batchInterval,
    });
  }

  /**
   * Opens the socket (or settles on HTTP). Rejects with the first failure instead of waiting
   * through an outage: `unreachable` (the client keeps retrying and queueing meanwhile) or a
   * permanent one such as `unauthorized`.
   */
  connect(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const failed = (err: DuckTailClientError) => {
        if (err.code !== ClientErrorCode.unreachable) return; // a permanent failure rejects connect() itself
        this.client.off("error", failed);
        reject(err);
      };
      this.client.on("error", failed);
      this.client.connect().then(
        () => {
          this.client.off("error", failed);
          resolve();
        },
        (err: Error) => {
          this.client.off("error", failed);
          reject(err);
        },
      );
    });
  }

  /**
   * Queues an event; resolves with `{id}` once the server acked it. Throws a TypeError at once
   * for a `type` that is not a non-empty string, or an `event` that is not `{ data, importance, … }`.
   */
  track(type: string, event?: WSTrackEvent): Promise<TrackResult> {
    checkType(CALL, type, "track('name', { data: {...} })");
    checkObject(CALL, "event", event);
    const fields: WSTrackEvent = event ?? {};
    const unknown = Object.keys(fields).filter((k) => !EVENT_FIELDS.includes(k));
    if (unknown.length > 0) {
      throw new TypeError(
        `${CALL}: event takes ${EVENT_FIELDS.join(", ")}; got ${unknown.map((k) => `"${k}"`).join(", ")} — put your own fields in { data: {...} }`,
      );
    }
    const { data, ...options } = fields;
    checkObject(CALL, "event.data", data);
    return this.client.track(type, data ?? undefined, options);
  }

  /** Sends what is queued; resolves within `timeoutMs` (default 10 s) with what is still pending. */
  flush(timeoutMs?: number): Promise<FlushReport> {
    return this.client.flush(timeoutMs);
  }

  /** Flushes (at most `timeoutMs`, default 5 s), then rejects what is left with "closed". */
  close(timeoutMs?: number): Promise<void> {
    return this.client.close(timeoutMs);
  }

  /** Also calls `listener` with every failure `onError` gets. */
  on(event: "error", listener: ErrorListener): this {
    this.client.on(event, listener);
    return this;
  }

  off(event: "error", listener: ErrorListener): this {
    this.client.off(event, listener);
    return this;
  }

  /** "websocket" or "http" once connected; null before. */
  get connectedVia(): "websocket" | "http" | null {
    return this.client.connectedVia;
  }

  /** Events tracked and not yet answered by the server. */
  get unacked(): number {
    return this.client.unacked;
  }
}
