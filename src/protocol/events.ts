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

/** What `BufferReplica.transform` sees and returns: a normalized event with `data` parsed. */
export type TransformEvent = Omit<NormalizedEvent, "data"> & { data: Record<string, unknown> };

/**
 * Where and on what an event was sent from, as the server saw the request that carried it (never
 * taken from the client's event): geography from Cloudflare's `request.cf`, the parsed
 * User-Agent, and the IP as the `IP_POLICY` var allows. Every field may be null (unknown).
 */
export interface EventContext {
  /** ISO 3166-1 alpha-2, e.g. "DE". */
  country: string | null;
  region: string | null;
  city: string | null;
  /** IANA, e.g. "Europe/Berlin". */
  timezone: string | null;
  browser: string | null;
  browserVersion: string | null;
  os: string | null;
  osVersion: string | null;
  /** "desktop", "mobile", "tablet", "smarttv", "console", "wearable", "embedded". */
  deviceType: string | null;
  /** The User-Agent is a known crawler, monitor or script. */
  bot: boolean | null;
  /** By `IP_POLICY`: kept, truncated to /24 (IPv4) or /48 (IPv6), or null (dropped). */
  ip: string | null;
}

/** The context's string fields and their Parquet column names, in column order (`bot` is `is_bot`, a boolean). */
export const CONTEXT_COLUMNS = [
  ["country", "country"],
  ["region", "region"],
  ["city", "city"],
  ["timezone", "timezone"],
  ["browser", "browser"],
  ["browserVersion", "browser_version"],
  ["os", "os"],
  ["osVersion", "os_version"],
  ["deviceType", "device_type"],
  ["ip", "ip"],
] as const satisfies readonly (readonly [Exclude<keyof EventContext, "bot">, string])[];

/** A buffered event: normalized plus where and when it was received, and from what (when known). */
export interface StoredEvent extends NormalizedEvent {
  tenant: string;
  receivedAt: number;
  replica: string;
  seq: number;
  /** Absent when the event came without a request to see (tail consumer, files written before it existed). */
  context?: EventContext;
}

export interface Rejection {
  index: number;
  code: ErrorCode;
  message: string;
}

const MAX_STRING = 512;
// Epoch ms between 1970 and 9999-12-31, the range Parquet TIMESTAMP(ms) readers agree on.
const MAX_TS = 253402300799999;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * The rank of an importance (its index in {@link IMPORTANCE}), or -1 for anything else. A switch,
 * not `indexOf`: it runs for every event, and a builtin call per event shows on the ingest path.
 */
export function importanceRank(i: unknown): number {
  switch (i) {
    case "low":
      return 0;
    case "normal":
      return 1;
    case "high":
      return 2;
    case "critical":
      return 3;
    default:
      return -1;
  }
}

class Invalid extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
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

// A lone surrogate (JSON's "\ud800") has no UTF-8: stored, it would come back as U+FFFD, not the
// value acked. String.prototype.isWellFormed where the runtime has it (workerd, Node 20+).
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const wellFormed: (s: string) => boolean =
  typeof String.prototype.isWellFormed === "function" ? (s) => s.isWellFormed() : (s) => !LONE_SURROGATE.test(s);

function str(v: unknown, field: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") throw new Invalid(ErrorCode.invalidField, `${field} must be a string`);
  if (v.length > MAX_STRING) throw new Invalid(ErrorCode.invalidField, `${field} is longer than ${MAX_STRING}`);
  if (!wellFormed(v)) throw new Invalid(ErrorCode.invalidField, `${field} holds a lone UTF-16 surrogate (not text)`);
  return v;
}

function normalize(raw: unknown, now: number, limits: Limits): NormalizedEvent {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Invalid(ErrorCode.invalidEvent, "event must be a JSON object");
  }
  // One pass over the keys (the hot path of ingest): a switch on JSON.parse's internalized key
  // strings compiles to pointer compares, cheaper than Object.keys plus a Set lookup per key.
  let id: unknown;
  let timestamp: unknown;
  let source: unknown;
  let type: unknown;
  let importance: unknown;
  let userId: unknown;
  let anonymousId: unknown;
  let sessionId: unknown;
  let data: unknown;
  const o = raw as Record<string, unknown>;
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case "id":
        id = v;
        break;
      case "timestamp":
        timestamp = v;
        break;
      case "source":
        source = v;
        break;
      case "type":
        type = v;
        break;
      case "importance":
        importance = v;
        break;
      case "userId":
        userId = v;
        break;
      case "anonymousId":
        anonymousId = v;
        break;
      case "sessionId":
        sessionId = v;
        break;
      case "data":
        data = v;
        break;
      default:
        throw new Invalid(ErrorCode.invalidField, `unknown field "${key}" (put custom fields under data)`);
    }
  }
  const typeName = str(type, "type");
  if (!typeName) throw new Invalid(ErrorCode.invalidField, "type is required");
  if (importance === undefined || importance === null) importance = "normal";
  else if (importanceRank(importance) < 0) {
    throw new Invalid(ErrorCode.invalidField, `importance must be one of ${IMPORTANCE.join(", ")}`);
  }
  let json = "{}";
  if (data !== undefined && data !== null) {
    if (typeof data !== "object" || Array.isArray(data)) {
      throw new Invalid(ErrorCode.invalidField, "data must be a JSON object");
    }
    json = JSON.stringify(data);
  }
  const event: NormalizedEvent = {
    id: str(id, "id") || crypto.randomUUID(),
    ts: parseTimestamp(timestamp, now),
    source: str(source, "source") || "unknown",
    type: typeName,
    importance: importance as Importance,
    userId: str(userId, "userId"),
    anonymousId: str(anonymousId, "anonymousId"),
    sessionId: str(sessionId, "sessionId"),
    data: json,
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
