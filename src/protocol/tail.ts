import type { EventContext, Importance, TransformEvent } from "./events";

/** The live tail's part of protocol v1: what a subscriber asks for and what it is sent. */

/**
 * An event as live tail delivers it: the normalized event with `data` parsed, when and where it
 * was stored, and the context of the request that carried it (when there was one).
 */
export type TailEvent = TransformEvent & {
  /** Receipt time, epoch ms. */
  receivedAt: number;
  /** `<tenant>-<shard>`: the replica that stored it. */
  replica: string;
  seq: number;
  context?: EventContext;
};

export const PREDICATE_OPS = ["eq", "ne", "prefix", "gt", "gte", "lt", "lte"] as const;
export type PredicateOp = (typeof PREDICATE_OPS)[number];

/**
 * `{path: "data.status", op: "gte", value: 500}`; `path` is a top-level field, `context.` + a
 * context field (`context.country`, `context.bot`, ...) or `data.` + a dotted path.
 */
export interface Predicate {
  path: string;
  op: PredicateOp;
  value: string | number | boolean | null;
}

/** What a `subscribe` frame asks for; every part is optional and all given parts must match. */
export interface TailFilter {
  /** `*` globs, e.g. "web-*"; a list matches any of them. */
  source?: string | string[];
  type?: string | string[];
  /** low < normal < high < critical. */
  minImportance?: Importance;
  where?: Predicate[];
}

/**
 * What a subscriber's socket is sent besides replies: matching events, to acknowledge with
 * `{type:"tailAck", subscription, seq}`, and how many were dropped for it being slow.
 */
export type TailFrame =
  | { type: "tail"; subscription: string; seq: number; events: TailEvent[] }
  | { type: "dropped"; subscription: string; count: number };
