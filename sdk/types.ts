import type { EventInput, Importance, Rejection } from "../src/protocol/events";
import type { IngestResult, StorageMode } from "../src/protocol/frames";
import type { TailEvent, TailFilter } from "../src/protocol/tail";
import type { DuckTailClientError } from "./errors";

export type { EventInput, Importance, IngestResult, Rejection, StorageMode, TailEvent, TailFilter };

/** The smallest WebSocket surface the client needs: the browser's, Node 22's global, or `ws`. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "message" | "close" | "error", listener: (event: SocketEvent) => void): void;
}
export interface SocketEvent {
  data?: unknown;
  code?: number;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** How events travel: a socket with HTTP fallback, only a socket, or only HTTP. */
export type Transport = "auto" | "websocket" | "http";

export interface ClientOptions {
  /**
   * The Worker's URL: `http(s)://host` or `ws(s)://host`, with or without a trailing `/ws` and
   * slashes, with a path prefix when the Worker runs on a route (`https://example.com/ducktail`).
   * The socket is `ws(s)://host[/prefix]/ws`, HTTP ingest `http(s)://host[/prefix]/e`. Anything
   * else throws a TypeError at construction. Required.
   */
  url: string;
  /**
   * A DuckTail key: `write` to send events, `read` to subscribe. Default: the URL's `?key=` if it
   * has one, else none (an open, keyless Worker).
   */
  key?: string;
  /** Most time an event waits before its batch is sent, in ms. Default 1000. */
  batchInterval?: number;
  /** Events per `events` frame (or HTTP body); a full batch is sent at once. Default 100. */
  maxBatchSize?: number;
  /** When the server acks, and so when `track()` resolves. Default "buffered". */
  storageMode?: StorageMode;
  /** `source` of events that name none (e.g. "web-app"). Default: none, the server says "unknown". */
  source?: string;
  /** Most events held waiting for an ack (queued offline or in flight); past it `track()` rejects with "queue_full". Default 10,000. */
  maxQueue?: number;
  /**
   * Called with every failure: each rejected event, queue overflow, tail drops and gaps, stray
   * server errors, `unreachable` once per outage, and a permanent failure (401, 403, 404, …) once
   * before the events it rejects. Default: none.
   */
  onError?: (error: DuckTailClientError) => void;
  /**
   * One `console.warn` when an outage starts (the Worker unreachable; again only after it was
   * back) and one when a permanent failure stops the client. Default true; false silences them.
   */
  warnings?: boolean;
  /** Default "auto": WebSocket, falling back to HTTP when there is none or the upgrade keeps failing. */
  transport?: Transport;
  /** Consecutive failed upgrades before "auto" switches to HTTP for good. Default 3. */
  httpFallbackAfter?: number;
  /**
   * Whether a waiting batch or a retry keeps a Node process running. Default true; false unrefs
   * those timers, so a script that ends is not held open by events it could not deliver.
   */
  holdProcess?: boolean;
  /** A WebSocket implementation. Default: the global one, else the `ws` package (Node 20). */
  WebSocket?: WebSocketConstructor;
}

export interface TrackOptions {
  /** Default "normal". */
  importance?: Importance;
  /** Default: the user of the last `identify()`. */
  userId?: string;
  anonymousId?: string;
  sessionId?: string;
  /** Client time: epoch ms, ISO-8601 or a Date. Default: the time the server receives it. */
  timestamp?: number | string | Date;
  /** Overrides the client's `source`. */
  source?: string;
  /** The event id (dedup key). Default: a fresh UUID, kept across re-sends. */
  id?: string;
}

/**
 * What `flush()` resolves with, counting the events the client held when it was called:
 * `acked + failed + pending` is that number.
 */
export interface FlushReport {
  /** Acked by the server. */
  acked: number;
  /** Refused, by the server or the client (e.g. a permanent failure). */
  failed: number;
  /** Still queued or in flight when the timeout passed; they stay queued and are retried. */
  pending: number;
}

/** What a `track()` resolves with once the server acked the event in the client's storage mode. */
export interface TrackResult {
  id: string;
}

export interface SubscribeOptions {
  /** Share of matching events to deliver, in (0, 1]. Default 1. */
  sample?: number;
}
