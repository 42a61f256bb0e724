import type { LimitVars } from "./protocol/limits";

/** Bindings and vars of the DuckTail Worker (see wrangler.toml). */
export interface Env extends LimitVars {
  COORDINATOR: DurableObjectNamespace;
  REPLICA: DurableObjectNamespace;
  EVENTS: R2Bucket;
  /** JSON `{"<key>": {"tenant", "scope"}}`; unset → one open tenant "default". */
  DUCKTAIL_KEYS?: string;
  /** WebSocket connections per replica before the coordinator opens another shard. Default 1,000. */
  REPLICA_CONNECTION_LIMIT?: string;
  /** How long the Worker caches a tenant's routing table. Default 10,000 ms. */
  ROUTING_TTL_MS?: string;
}
