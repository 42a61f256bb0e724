/**
 * `ducktail/do`: the Durable Object classes, for a Worker of your own that exports them under the
 * names its wrangler.toml binds (COORDINATOR, REPLICA), extended or as they are.
 *
 * ```ts
 * export { BufferCoordinator, BufferReplica } from "ducktail/do";
 * ```
 */
export { BufferCoordinator, type RoutingTable } from "./group/BufferCoordinator";
export { BufferReplica } from "./replica/BufferReplica";
