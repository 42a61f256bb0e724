import { ErrorCode } from "./protocol/errors";
import type { EventInput, Rejection } from "./protocol/events";

/**
 * Segment's HTTP Tracking API, so Segment's libraries (analytics-node, analytics.js, the mobile
 * SDKs) can point at DuckTail unchanged: /v1/track, /v1/page, /v1/screen, /v1/identify,
 * /v1/group, /v1/alias, /v1/batch and /v1/ping. Messages become DuckTail events:
 *
 * - `id` = `messageId` (a retried message is dropped by the replica within a dedup window);
 * - `type` = the track event name, `pageview` for page calls, else the call type;
 * - `data` = properties (or traits), plus `name`, `context`, `groupId`, `previousId` when given;
 *   a page call's `data.path` falls back to `context.page.path` for the pageviews view;
 * - `timestamp` is corrected for the client's clock skew: when the request says when it was
 *   sent (`sentAt`), the event time moves by (received − sentAt), as Segment does.
 */

export const SEGMENT_TYPES = ["track", "page", "screen", "identify", "group", "alias"] as const;
export type SegmentType = (typeof SEGMENT_TYPES)[number];

/** Segment's own limits for /v1/batch. */
export const SEGMENT_MAX_BATCH = 1000;
export const SEGMENT_MAX_BATCH_BYTES = 500 * 1024;

interface SegmentMessage {
  type?: unknown;
  messageId?: unknown;
  timestamp?: unknown;
  originalTimestamp?: unknown;
  sentAt?: unknown;
  userId?: unknown;
  anonymousId?: unknown;
  event?: unknown;
  name?: unknown;
  properties?: unknown;
  traits?: unknown;
  context?: unknown;
  groupId?: unknown;
  previousId?: unknown;
}

/** The write key of a Segment request: HTTP Basic user (`writeKey:`) or `writeKey` in the body. */
export function segmentWriteKey(req: Request, body: unknown): string | null {
  const auth = req.headers.get("authorization");
  if (auth?.toLowerCase().startsWith("basic ")) {
    try {
      const user = atob(auth.slice(6).trim()).split(":")[0];
      if (user) return user;
    } catch {
      // not base64: fall through to the body
    }
  }
  const key = (body as { writeKey?: unknown } | null)?.writeKey;
  return typeof key === "string" && key.length > 0 ? key : null;
}

function object(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v.length > 0 ? v : typeof v === "number" ? String(v) : undefined;
}

function ms(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v !== "string") return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

class Rejected extends Error {}

function toEvent(
  m: SegmentMessage,
  fallbackType: SegmentType | null,
  receivedAt: number,
  batchSentAt?: number,
): EventInput {
  const type = (str(m.type) ?? fallbackType) as SegmentType | undefined;
  if (!type || !SEGMENT_TYPES.includes(type)) throw new Rejected(`type must be one of ${SEGMENT_TYPES.join(", ")}`);
  const userId = str(m.userId);
  const anonymousId = str(m.anonymousId);
  if (!userId && !anonymousId) throw new Rejected("userId or anonymousId is required");
  const context = object(m.context);
  let name: string;
  if (type === "track") {
    const event = str(m.event);
    if (!event) throw new Rejected("track needs an event name");
    name = event;
  } else name = type === "page" ? "pageview" : type;

  const data: Record<string, unknown> = { ...(object(type === "identify" ? m.traits : m.properties) ?? {}) };
  if (type === "group" && object(m.traits)) data.traits = m.traits;
  if (str(m.name)) data.name = m.name;
  if (str(m.groupId)) data.groupId = m.groupId;
  if (str(m.previousId)) data.previousId = m.previousId;
  if (type === "page" && typeof data.path !== "string") {
    const path = object(context?.page)?.path;
    if (typeof path === "string") data.path = path;
  }
  if (context) data.context = context;

  const sentAt = ms(m.sentAt) ?? batchSentAt;
  const original = ms(m.originalTimestamp) ?? ms(m.timestamp);
  const timestamp =
    original === undefined ? receivedAt : sentAt === undefined ? original : original + (receivedAt - sentAt);
  const library = str(object(context?.library)?.name);
  return {
    id: str(m.messageId),
    type: name,
    source: `segment:${library ?? "http"}`,
    timestamp: Math.max(0, Math.round(timestamp)),
    ...(userId && { userId }),
    ...(anonymousId && { anonymousId }),
    data,
  };
}

/**
 * The DuckTail events of a Segment request body: one message (`/v1/<type>`) or `{batch: [...]}`.
 * A message that cannot be one is rejected on its own (index, code, message); the rest go on.
 */
export function segmentEvents(
  body: unknown,
  call: SegmentType | "batch",
  receivedAt: number,
): { events: EventInput[]; indexes: number[]; rejected: Rejection[] } {
  const b = object(body) ?? {};
  const messages: unknown[] = call === "batch" ? (Array.isArray(b.batch) ? b.batch : []) : [b];
  const batchSentAt = ms(b.sentAt);
  const out = { events: [] as EventInput[], indexes: [] as number[], rejected: [] as Rejection[] };
  messages.forEach((m, index) => {
    try {
      const message = object(m);
      if (!message) throw new Rejected("message must be a JSON object");
      out.events.push(toEvent(message, call === "batch" ? null : call, receivedAt, batchSentAt));
      out.indexes.push(index);
    } catch (err) {
      if (!(err instanceof Rejected)) throw err;
      out.rejected.push({ index, code: ErrorCode.invalidEvent, message: err.message });
    }
  });
  return out;
}

/**
 * A token bucket per write key, per isolate: `rate` requests a second with bursts of twice that.
 * Returns 0 when the request may go, else the seconds to wait (for Retry-After).
 */
export class KeyRateLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly rate: number) {}

  take(key: string, now = Date.now()): number {
    const cap = this.rate * 2;
    const b = this.buckets.get(key) ?? { tokens: cap, at: now };
    b.tokens = Math.min(cap, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    this.buckets.set(key, b);
    if (this.buckets.size > 10_000) this.buckets.delete(this.buckets.keys().next().value as string);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.rate));
  }
}

/**
 * The original DuckTail's "Analytics format" for POST /e: `{event, writeKey, timestamp,
 * anonymousId, userId, properties}`, one message or an array of them (a DuckTail event has a
 * `type` instead of an `event`).
 */
export function isAnalyticsFormat(body: unknown): boolean {
  const first = Array.isArray(body) ? body[0] : body;
  const m = object(first);
  return m !== undefined && typeof m.event === "string" && m.type === undefined;
}

/** Analytics-format messages mapped as /v1/track maps a track call, and the write key they carry. */
export function analyticsEvents(
  body: unknown,
  receivedAt: number,
): ReturnType<typeof segmentEvents> & { writeKey: string | null } {
  const messages = Array.isArray(body) ? body : [body];
  const batch = messages.map((m) => (object(m) ? { ...(m as object), type: "track" } : m));
  const key = messages.map((m) => object(m)?.writeKey).find((k) => typeof k === "string" && k.length > 0);
  return { ...segmentEvents({ batch }, "batch", receivedAt), writeKey: (key as string | undefined) ?? null };
}
