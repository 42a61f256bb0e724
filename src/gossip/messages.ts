import superjson from "superjson";
import type { Subscription, TailBatch } from "./tail";

/** Version of the replica-to-replica message format; a replica ignores versions it does not know. */
export const GOSSIP_VERSION = 1;

/**
 * Replica → replica messages, carried by dog's gossip route: to every neighbor (`gossip()`), or to
 * one replica (the tail batches, to the subscriber's replica). They are plain JSON (`{v, plain}`):
 * since views merge in an aggregator, no gossip message holds a type JSON lacks, and the live
 * tail's, on the hot path, carry events that are JSON text already. Replicas of the previous
 * release sent `{v, body}` with the body superjson-encoded; those are still read.
 */
export type GossipMessage =
  | { type: "ping"; from: string; sentAt: number }
  /** Live-tail subscriptions to add (idempotent) and to remove, cluster-wide. */
  | { type: "subscribe"; subs: Subscription[] }
  | { type: "unsubscribe"; ids: string[] }
  /** Matched events for subscriptions this replica owns. */
  | { type: "tail"; batch: TailBatch };

export type GossipReply =
  | { type: "pong"; from: string; receivedAt: number }
  | { type: "ok"; from: string }
  /** Subscriptions the owner no longer has: the sender drops them from its filter table. */
  | { type: "tail-gone"; from: string; ids: string[] }
  | { type: "unknown"; from: string };

export type GossipEnvelope = { v: number; body: string } | { v: number; plain: GossipMessage | GossipReply };

export function encodeGossip(msg: GossipMessage | GossipReply): GossipEnvelope {
  return { v: GOSSIP_VERSION, plain: msg };
}

export function decodeGossip<T extends GossipMessage | GossipReply>(envelope: unknown): T | null {
  const e = envelope as { v?: unknown; body?: unknown; plain?: unknown } | null;
  if (!e || e.v !== GOSSIP_VERSION) return null;
  if (typeof e.plain === "object" && e.plain !== null) return e.plain as T;
  if (typeof e.body !== "string") return null;
  return superjson.parse<T>(e.body);
}
