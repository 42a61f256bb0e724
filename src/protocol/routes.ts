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
  /** Set by the Worker on an admin socket to a named shard (GET /buffer/ws): not placed by dog. */
  admin: "x-ducktail-admin",
  /** The request's context (src/context.ts) as JSON, stamped on the events it carries. */
  context: "x-ducktail-context",
  /**
   * On a socket upgrade: the Worker placed it from its cached routing table, not through the
   * coordinator's identify, so the replica admits it only if it has room (see `Header.full`).
   */
  edgePlaced: "x-ducktail-edge-placed",
  /**
   * A replica's answer to an edge-placed upgrade it has no room for (at its connection limit, or
   * draining); on the Worker's identify that follows, the shard that refused, so the coordinator
   * places the socket elsewhere.
   */
  full: "x-ducktail-shard-full",
  /**
   * On a socket upgrade and its identify: the client named no `client`, so its id is new and never
   * comes back; nothing keeps where it went (that is for a client that reconnects).
   */
  anonymousClient: "x-ducktail-anonymous-client",
} as const;

/** Internal routes between Worker, coordinator and replicas (never exposed publicly). */
export const InternalRoute = {
  init: "/_/init",
  routing: "/_/routing",
  stats: "/_/stats",
  flush: "/_/flush",
  events: "/_/events",
  ws: "/_/ws",
  /** Replica → coordinator: request/event rates and buffer fill since the last report. */
  report: "/_/report",
  /** Replica → coordinator: its socket count and the clients placed on it at the edge since the last (a ConnectionReport). */
  connections: "/_/connections",
  /** Worker → coordinator: the rate-limit binding said the tenant is over its budget. */
  pressure: "/_/pressure",
  /** Coordinator → replica: leaving the routing table; flush everything and move the sockets. */
  drain: "/_/drain",
  /** Coordinator → replica: routed again after a drain; take sockets the Worker places again. */
  resume: "/_/resume",
  scale: "/_/scale",
  shards: "/_/shards",
  aggregate: "/_/aggregate",
  /** Worker or replica → the tenant's view aggregator: a view merged over every replica, ?name=&window=&by=&limit= */
  mv: "/_/mv",
  /** Replica → the tenant's view aggregator: its changed minute buckets (a ViewPush). */
  viewPush: "/_/views/push",
  /** View aggregator → replica: push your view changes now (it lacks some a load report counted, or lost its state). */
  viewPushNow: "/_/views/push-now",
  /** Buffered (not yet flushed) events matching a GET /events query, newest first. */
  buffered: "/_/buffered",
  /**
   * Worker → replica: DELETE /users/<id> is under way; count the subject's buffered rows and
   * flush everything, so they are in the lake before the lake is rewritten without them.
   */
  erase: "/_/users/erase",
  /** Worker → replica: send these dead letters of the replica to their sinks again. */
  replay: "/_/deadletter/replay",
} as const;

/** What a replica reports to its coordinator (POST /_/report). */
export interface LoadReport {
  /** The shard number. */
  n: number;
  /** Ingest requests (HTTP bodies and socket frames) and events since the previous report. */
  requests: number;
  events: number;
  /** Length of that window. */
  seconds: number;
  bufferedBytes: number;
  bufferedRows: number;
  connections: number;
  /** Epoch ms the report was made. */
  at: number;
  /**
   * The seq of the replica's latest persisted view change (a ViewPush's `through`); absent when it
   * keeps no views. The view aggregator names the replica missing while it has acked less.
   */
  viewSeq?: number;
}

/** A shard's name, `<tenant>-<n>`: the replica column of its rows and the prefix of its objects. */
export function shardName(tenant: string, n: number): string {
  return `${tenant}-${n}`;
}

/**
 * The name of a tenant's view aggregator in the replica namespace (`REPLICA.idFromName`): an
 * object of the replica class, so it merges with the same views (custom ones too), that is never
 * a shard (those are `<tenant>/<n>`) and never routed events.
 */
export function viewAggregatorName(tenant: string): string {
  return `${tenant}/views`;
}

/** The shard number in a name `shardName` made, or null. */
export function shardNumber(name: string): number | null {
  const m = /-(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** One dead-lettered batch, from its key and metadata, as GET /deadletter lists it. */
export interface DeadLetter {
  key: string;
  sink: string;
  replica: string;
  seq: number;
  rows: number;
  attempts: number;
  error: string;
  size: number;
  uploaded: string;
}
