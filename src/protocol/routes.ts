/** dog's internal protocol (headers and routes), as dog 1.1.3 defines them; dog does not export them. */
export const DogHeader = {
  group: "x-dog-group-identifier",
  client: "x-dog-client-identifier",
  replica: "x-dog-replica-identifier",
  neighbor: "x-dog-neighbor-identifier",
  target: "x-dog-target-identifier",
  empty: "x-dog-client-empty",
} as const;

export const DogRoute = {
  close: "/~$~/close",
  neighbor: "/~$~/jello",
  broadcast: "/~$~/message",
  whisper: "/~$~/whisper",
  gossip: "/~$~/gossip",
  identify: "/~$~/identify",
} as const;

export function isDogRoute(pathname: string): boolean {
  return pathname.startsWith("/~$~/");
}

/** Headers the Worker and coordinator set on requests to a replica. */
export const Header = {
  tenant: "x-ducktail-tenant",
  shard: "x-ducktail-shard",
  scope: "x-ducktail-scope",
} as const;

/** Internal routes between Worker, coordinator and replicas (never exposed publicly). */
export const InternalRoute = {
  init: "/_/init",
  routing: "/_/routing",
  stats: "/_/stats",
  flush: "/_/flush",
  events: "/_/events",
  ws: "/_/ws",
} as const;
