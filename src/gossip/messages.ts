import superjson from "superjson";
import type { Subscription, TailBatch } from "./tail";

/** Version of the replica-to-replica message format; a replica ignores versions it does not know. */
export const GOSSIP_VERSION = 1;

/**
 * Replica → replica messages, carried by dog's gossip route as `{v, body}` with body superjson-encoded:
 * to every neighbor (`gossip()`), or to one replica (the tail batches, to the subscriber's replica).
 */
export type GossipMessage =
  | { type: "ping"; from: string; sentAt: number }
  /** Live-tail subscriptions to add (idempotent) and to remove, cluster-wide. */
  | { type: "subscribe"; subs: Subscription[] }
  | { type: "unsubscribe"; ids: string[] }
  /** Matched events for subscriptions this replica owns. */
  | { type: "tail"; batches: TailBatch[] };

export type GossipReply =
  | { type: "pong"; from: string; receivedAt: number }
  | { type: "ok"; from: string }
  /** Subscriptions the owner no longer has: the sender drops them from its filter table. */
  | { type: "tail-gone"; from: string; ids: string[] }
  | { type: "unknown"; from: string };

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
