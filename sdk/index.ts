/**
 * `ducktail/client`: send events to a DuckTail Worker and tail them live, from Node ≥ 20 or a
 * browser. See sdk/README.md.
 *
 * ```ts
 * const client = new DuckTailClient({ url: "https://ducktail.example.workers.dev", key, storageMode: "confirmed" });
 * await client.track("signup", { plan: "pro" }, { userId: "u1" });
 * for await (const event of client.subscribe({ type: "error" })) console.log(event);
 * ```
 *
 * `DuckTailWSClient` is the original package's call shape over the same client.
 */
export { DEFAULT_FLUSH_TIMEOUT_MS, DuckTailClient } from "./client";
export { ClientErrorCode, DuckTailClientError } from "./errors";
export type { ErrorListener } from "./reporter";
export { TailSubscription } from "./subscription";
export type {
  ClientOptions,
  EventInput,
  FlushReport,
  Importance,
  IngestResult,
  Rejection,
  StorageMode,
  SubscribeOptions,
  TailEvent,
  TailFilter,
  TrackOptions,
  TrackResult,
  Transport,
  WebSocketConstructor,
  WebSocketLike,
} from "./types";
export { type Endpoints, endpoints } from "./url";
export { DuckTailWSClient, type WSClientOptions, type WSTrackEvent } from "./ws-client";
