/**
 * `ducktail/schema`: the event schema as functions, under the original DuckTail's names.
 * `createEvent` builds an event to send; `normalizeEvent` validates one the way the server does
 * and answers what it would store (or throws the server's error code).
 *
 * ```ts
 * import { createEvent, normalizeEvent } from "ducktail/schema";
 * const event = createEvent("signup", { plan: "pro" }, { userId: "u1", importance: "high" });
 * normalizeEvent(event); // → { id, ts, source: "unknown", type: "signup", importance: "high", ... }
 * ```
 */
import { DuckTailError } from "./errors";
import type { EventInput, NormalizedEvent } from "./events";
import { validateBatch } from "./events";
import { DEFAULT_LIMITS, type Limits } from "./limits";

export { type EventInput, IMPORTANCE, type Importance, type NormalizedEvent } from "./events";

/** The fields of an event besides its type and data. */
export type EventFields = Omit<EventInput, "type" | "data">;

/**
 * An event ready to send: `type` and `data` as given, a fresh `id` and the current time as
 * `timestamp` unless `fields` name them. Throws a TypeError for a type or data of the wrong kind.
 */
export function createEvent(type: string, data: Record<string, unknown> = {}, fields: EventFields = {}): EventInput {
  if (typeof type !== "string" || type.length === 0) {
    throw new TypeError(`createEvent(type, data): type must be a non-empty string, got ${describe(type)}`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new TypeError(`createEvent(type, data): data must be a plain object, got ${describe(data)}`);
  }
  return { id: crypto.randomUUID(), timestamp: Date.now(), ...fields, type, data };
}

/**
 * What the server would store of `input` (defaults filled, `data` as JSON text), or a thrown
 * `DuckTailError` with the code and message the server would reject it with.
 */
export function normalizeEvent(input: unknown, options: { now?: number; limits?: Limits } = {}): NormalizedEvent {
  const batch = validateBatch([input], options.now ?? Date.now(), options.limits ?? DEFAULT_LIMITS);
  const [rejection] = batch.rejected;
  if (rejection) throw new DuckTailError(rejection.code, rejection.message);
  return batch.events[0] as NormalizedEvent;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `${typeof v} ${JSON.stringify(v)}`;
}
