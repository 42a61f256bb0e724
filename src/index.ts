/**
 * DuckTail: extend these classes in your own Worker (export them under the names your
 * wrangler.toml binds) and override the documented hooks, never `fetch`.
 */

export type { Env } from "./env";
export { BufferCoordinator, type RoutingTable } from "./group/BufferCoordinator";
export * from "./protocol/index";
export { BufferReplica, type IngestResult } from "./replica/BufferReplica";
export type { FlushResult } from "./replica/flusher";
export { default as worker } from "./worker";
