import superjson from "superjson";

/** Version of the replica-to-replica message format; a replica ignores versions it does not know. */
export const GOSSIP_VERSION = 1;

/** Replica → replica messages, carried by dog's gossip() as `{v, body}` with body superjson-encoded. */
export type GossipMessage = { type: "ping"; from: string; sentAt: number };

export type GossipReply = { type: "pong"; from: string; receivedAt: number } | { type: "unknown"; from: string };

export interface GossipEnvelope {
  v: number;
  body: string;
}

export function encodeGossip(msg: GossipMessage | GossipReply): GossipEnvelope {
  return { v: GOSSIP_VERSION, body: superjson.stringify(msg) };
}

export function decodeGossip<T extends GossipMessage | GossipReply>(envelope: unknown): T | null {
  const e = envelope as Partial<GossipEnvelope> | null;
  if (!e || e.v !== GOSSIP_VERSION || typeof e.body !== "string") return null;
  return superjson.parse<T>(e.body);
}
