/**
 * DuckTail: extend these classes in your own Worker (export them under the names your
 * wrangler.toml binds) and override the documented hooks, never `fetch`.
 */

export type { Env } from "./env";
export { BufferCoordinator, type RoutingTable } from "./group/BufferCoordinator";
export { LakeCatalog } from "./lake/catalog/LakeCatalog";
export * from "./protocol/index";
export { createEvent, type EventFields, normalizeEvent } from "./protocol/schema";
export { SessionRecording } from "./recording/SessionRecording";
export { BufferReplica } from "./replica/BufferReplica";
export type { FlushResult } from "./replica/flusher";
export { mergePartials, ViewStore } from "./views/buckets";
export { LogHistogram } from "./views/histogram";
export { HyperLogLog } from "./views/hll";
export {
  type AnyView,
  BUILTIN_VIEWS,
  errors,
  latency,
  pageviews,
  type ViewDefinition,
  type ViewEvent,
} from "./views/views";
export { default as worker } from "./worker";
