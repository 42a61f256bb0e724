/**
 * `ducktail/do`: the Durable Object classes, for a Worker of your own that exports them under the
 * names its wrangler.toml binds (COORDINATOR, REPLICA, CATALOG, RECORDINGS), extended or as they are.
 *
 * ```ts
 * export { BufferCoordinator, BufferReplica, LakeCatalog } from "ducktail/do";
 * ```
 */
export { BufferCoordinator, type RoutingTable } from "./group/BufferCoordinator";
export { LakeCatalog } from "./lake/catalog/LakeCatalog";
export { SessionRecording } from "./recording/SessionRecording";
export { BufferReplica } from "./replica/BufferReplica";
