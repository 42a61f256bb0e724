import { ErrorCode } from "./errors";
import type { Limits } from "./limits";

export const IMPORTANCE = ["low", "normal", "high", "critical"] as const;
export type Importance = (typeof IMPORTANCE)[number];

/** What clients send. */
export interface EventInput {
  /** Client message id (dedup key); generated if absent. */
  id?: string;
  /** Client time: epoch ms or ISO-8601. Defaults to the time received. */
  timestamp?: number | string;
  /** e.g. "web-app", "api", "worker:checkout". Default "unknown". */
  source?: string;
  /** e.g. "pageview", "error", "request". Required. */
  type: string;
  /** Default "normal". */
  importance?: Importance;
  userId?: string;
  anonymousId?: string;
  sessionId?: string;
  /** Free-form JSON object. */
  data?: Record<string, unknown>;
}

/** An event after validation, before the replica stamps it. `data` is kept as JSON text. */
export interface NormalizedEvent {
  id: string;
  ts: number;
  source: string;
  type: string;
  importance: Importance;
  userId: string | null;
  anonymousId: string | null;
  sessionId: string | null;
  data: string;
}

/** A buffered event: normalized plus where and when it was received. */
export interface StoredEvent extends NormalizedEvent {
  tenant: string;
  receivedAt: number;
  replica: string;
  seq: number;
}

export interface Rejection {
  index: number;
  code: ErrorCode;
  message: string;
}

const ALLOWED_FIELDS = new Set([
  "id",
  "timestamp",
  "source",
  "type",
  "importance",
  "userId",
  "anonymousId",
  "sessionId",
  "data",
]);
const MAX_STRING = 512;
// Epoch ms between 1970 and 9999-12-31, the range Parquet TIMESTAMP(ms) readers agree on.
const MAX_TS = 253402300799999;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

export function importanceRank(i: Importance): number {
  return IMPORTANCE.indexOf(i);
}

class Invalid extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function optionalString(raw: Record<string, unknown>, field: string): string | null {
  const v = raw[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") throw new Invalid(ErrorCode.invalidField, `${field} must be a string`);
  if (v.length > MAX_STRING) throw new Invalid(ErrorCode.invalidField, `${field} is longer than ${MAX_STRING}`);
  return v;
}

function parseTimestamp(v: unknown, now: number): number {
  if (v === undefined || v === null) return now;
  if (typeof v === "number") {
    if (!Number.isFinite(v) || v < 0 || v > MAX_TS) {
      throw new Invalid(ErrorCode.invalidTimestamp, "timestamp must be epoch milliseconds between 1970 and 9999");
    }
    return Math.trunc(v);
  }
  if (typeof v === "string" && ISO_8601.test(v)) {
    const ms = Date.parse(v);
    if (Number.isFinite(ms) && ms >= 0 && ms <= MAX_TS) return ms;
  }
  throw new Invalid(ErrorCode.invalidTimestamp, "timestamp must be epoch milliseconds or an ISO-8601 string");
}

function normalize(raw: unknown, now: number, limits: Limits): NormalizedEvent {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Invalid(ErrorCode.invalidEvent, "event must be a JSON object");
  }
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!ALLOWED_FIELDS.has(key)) {
      throw new Invalid(ErrorCode.invalidField, `unknown field "${key}" (put custom fields under data)`);
    }
  }
  const type = optionalString(o, "type");
  if (!type) throw new Invalid(ErrorCode.invalidField, "type is required");
  const importance = o.importance ?? "normal";
  if (!IMPORTANCE.includes(importance as Importance)) {
    throw new Invalid(ErrorCode.invalidField, `importance must be one of ${IMPORTANCE.join(", ")}`);
  }
  let data = "{}";
  if (o.data !== undefined && o.data !== null) {
    if (typeof o.data !== "object" || Array.isArray(o.data)) {
      throw new Invalid(ErrorCode.invalidField, "data must be a JSON object");
    }
    data = JSON.stringify(o.data);
  }
  const event: NormalizedEvent = {
    id: optionalString(o, "id") || crypto.randomUUID(),
    ts: parseTimestamp(o.timestamp, now),
    source: optionalString(o, "source") || "unknown",
    type,
    importance: importance as Importance,
    userId: optionalString(o, "userId"),
    anonymousId: optionalString(o, "anonymousId"),
    sessionId: optionalString(o, "sessionId"),
    data,
  };
  if (eventBytes(event) > limits.maxEventBytes) {
    throw new Invalid(ErrorCode.eventTooLarge, `event is larger than ${limits.maxEventBytes} bytes`);
  }
  return event;
}

/** Approximate stored size: the JSON text of data plus the other fields (UTF-16 length, close enough for limits). */
export function eventBytes(e: NormalizedEvent): number {
  return (
    e.data.length +
    e.id.length +
    e.source.length +
    e.type.length +
    (e.userId?.length ?? 0) +
    (e.anonymousId?.length ?? 0) +
    (e.sessionId?.length ?? 0) +
    48
  );
}

export interface ValidatedBatch {
  events: NormalizedEvent[];
  /** Index in the input of each accepted event, parallel to `events`. */
  indexes: number[];
  rejected: Rejection[];
}

/**
 * Validates a batch event by event: the valid ones are kept, each invalid one is rejected
 * with its index, a code and a message (partial success).
 */
export function validateBatch(raw: unknown[], now: number, limits: Limits): ValidatedBatch {
  const out: ValidatedBatch = { events: [], indexes: [], rejected: [] };
  for (let i = 0; i < raw.length; i++) {
    try {
      out.events.push(normalize(raw[i], now, limits));
      out.indexes.push(i);
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      out.rejected.push({ index: i, code: err.code, message: err.message });
    }
  }
  return out;
}
