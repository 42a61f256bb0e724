import superjson from "superjson";
import type { SerializedPartials } from "../views/buckets";
import type { Subscription, TailBatch } from "./tail";

/** Version of the replica-to-replica message format; a replica ignores versions it does not know. */
export const GOSSIP_VERSION = 1;

/**
 * Replica → replica messages, carried by dog's gossip route: to every neighbor (`gossip()`), or to
 * one replica (the tail batches, to the subscriber's replica). Most are `{v, body}` with the body
 * superjson-encoded (view partials hold types JSON has not); the live tail's, on the hot path,
 * are plain JSON (`{v, plain}`): its events are JSON text already.
 */
export type GossipMessage =
  | { type: "ping"; from: string; sentAt: number }
  /** Live-tail subscriptions to add (idempotent) and to remove, cluster-wide. */
  | { type: "subscribe"; subs: Subscription[] }
  | { type: "unsubscribe"; ids: string[] }
  /** Matched events for subscriptions this replica owns. */
  | { type: "tail"; batch: TailBatch }
  /** A materialized view's partials over [from, to) (epoch ms). */
  | { type: "mv"; name: string; from: number; to: number };

export type GossipReply =
  | { type: "pong"; from: string; receivedAt: number }
  | { type: "ok"; from: string }
  /** Subscriptions the owner no longer has: the sender drops them from its filter table. */
  | { type: "tail-gone"; from: string; ids: string[] }
  | { type: "mv"; from: string; partials: SerializedPartials }
  | { type: "unknown"; from: string };

export type GossipEnvelope = { v: number; body: string } | { v: number; plain: GossipMessage | GossipReply };

/** The live tail's messages: JSON as they are. */
const PLAIN = new Set(["tail", "tail-gone", "subscribe", "unsubscribe", "ok"]);

export function encodeGossip(msg: GossipMessage | GossipReply): GossipEnvelope {
  if (PLAIN.has(msg.type)) return { v: GOSSIP_VERSION, plain: msg };
  return { v: GOSSIP_VERSION, body: superjson.stringify(msg) };
}

export function decodeGossip<T extends GossipMessage | GossipReply>(envelope: unknown): T | null {
  const e = envelope as { v?: unknown; body?: unknown; plain?: unknown } | null;
  if (!e || e.v !== GOSSIP_VERSION) return null;
  if (typeof e.plain === "object" && e.plain !== null) return e.plain as T;
  if (typeof e.body !== "string") return null;
  return superjson.parse<T>(e.body);
}
