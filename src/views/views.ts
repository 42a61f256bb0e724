import { hash32i } from "../hash";
import type { NormalizedEvent, StoredEvent, TransformEvent } from "../protocol/events";
import { LogHistogram } from "./histogram";
import { HyperLogLog } from "./hll";

/** What a view sees of an event: normalized, `data` parsed, and when it was received. */
export type ViewEvent = TransformEvent & { receivedAt: number };

/** A user-defined or built-in materialized view: per-key partial states, mergeable in any order. */
export interface ViewDefinition<P, R> {
  name: string;
  /** Which group an event belongs to (e.g. path), or null to skip the event. */
  key(event: ViewEvent): string | null;
  init(): P;
  /** May mutate and return `partial`. Must not keep `event` itself (it is reused); keeping `event.data` is fine. */
  add(partial: P, event: ViewEvent): P;
  /** Associative, commutative. May mutate and return `a`; must not modify `b` or keep references into it that it would later mutate. */
  merge(a: P, b: P): P;
  finalize(partial: P, key: string): R;
  /** Optional: serialize/deserialize partials when they are not plain JSON. */
  toJSON?(partial: P): unknown;
  fromJSON?(json: unknown): P;
  /** Numeric field of a finalized row that top-N lists sort by, descending. Default: rows in key order. */
  orderBy?: string;
}

/** A view of any partial and row type, as stores and registries hold them. */
// biome-ignore lint/suspicious/noExplicitAny: partial and row types differ per view; each view is type-checked where defined.
export type AnyView = ViewDefinition<any, any>;

/** A blank view event, for code that refills one object for event after event. */
export function blankViewEvent(): ViewEvent {
  return {
    id: "",
    ts: 0,
    receivedAt: 0,
    source: "",
    type: "",
    importance: "normal",
    userId: null,
    anonymousId: null,
    sessionId: null,
    data: {},
  };
}

/** Refills `v` with normalized event `e`, its parsed `data` (anything but an object reads as {}) and its receipt time. */
export function refillViewEvent(v: ViewEvent, e: NormalizedEvent, data: unknown, receivedAt: number): ViewEvent {
  v.id = e.id;
  v.ts = e.ts;
  v.receivedAt = receivedAt;
  v.source = e.source;
  v.type = e.type;
  v.importance = e.importance;
  v.userId = e.userId;
  v.anonymousId = e.anonymousId;
  v.sessionId = e.sessionId;
  v.data = typeof data === "object" && data !== null ? (data as Record<string, unknown>) : {};
  return v;
}

/** A view event from a buffered event, parsing its `data` JSON text once. */
export function toViewEvent(event: StoredEvent): ViewEvent {
  const data: unknown = JSON.parse(event.data);
  return {
    id: event.id,
    ts: event.ts,
    receivedAt: event.receivedAt,
    source: event.source,
    type: event.type,
    importance: event.importance,
    userId: event.userId,
    anonymousId: event.anonymousId,
    sessionId: event.sessionId,
    data: typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : {},
  };
}

// ── pageviews ────────────────────────────────────────────────────────────────

export interface PageviewsPartial {
  count: number;
  /** Distinct `userId ?? anonymousId`; events with neither count as views only. */
  users: HyperLogLog;
}

export interface PageviewsRow {
  path: string;
  views: number;
  uniques: number;
}

/** Views and unique visitors per path (`data.path` or `data.url`'s, without query or fragment), from `pageview` and `page` events. */
export const pageviews: ViewDefinition<PageviewsPartial, PageviewsRow> = {
  name: "pageviews",
  orderBy: "views",
  key: (event) => (event.type === "pageview" || event.type === "page" ? pageviewPath(event.data) : null),
  init: () => ({ count: 0, users: new HyperLogLog() }),
  add(partial, event) {
    countPageview(partial, event.userId, event.anonymousId);
    return partial;
  },
  merge(a, b) {
    a.count += b.count;
    a.users.merge(b.users);
    return a;
  },
  finalize: (partial, path) => ({ path, views: partial.count, uniques: Math.round(partial.users.count()) }),
  toJSON: (partial) => ({ count: partial.count, users: partial.users.toJSON() }),
  fromJSON(json) {
    const j = json as { count: number; users: unknown };
    return { count: j.count, users: HyperLogLog.fromJSON(j.users) };
  },
};

/**
 * The key of a page view: `data.path`, else `data.url`'s path, without query or fragment; else "/".
 * `path` is {@link cleanPath}'s answer when the caller already has it.
 */
export function pageviewPath(data: Record<string, unknown>, path = cleanPath(data)): string {
  if (path !== null) return path;
  const { url } = data;
  if (typeof url === "string") return pathnameOf(url);
  return "/";
}

/** `data.path` without query or fragment, or null when it is not a string: the first choice of both page view and latency keys. */
export function cleanPath(data: Record<string, unknown>): string | null {
  const { path } = data;
  return typeof path === "string" ? withoutQuery(path) : null;
}

/** Counts one view by `userId ?? anonymousId` (neither: a view, no visitor). */
export function countPageview(partial: PageviewsPartial, userId: string | null, anonymousId: string | null): void {
  partial.count++;
  const visitor = userId ?? anonymousId;
  if (visitor !== null) partial.users.add(visitor);
}

/**
 * A path without its query string or fragment: "/docs?ref=hn" counts as "/docs", as a URL's
 * pathname would. Query strings (utm tags, ids) would otherwise make every view a key of its own.
 */
function withoutQuery(path: string): string {
  // A loop over the (short) path beats two indexOf builtin calls, twice per event.
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) return path.slice(0, i);
  }
  return path;
}

function pathnameOf(url: string): string {
  try {
    // The base makes relative URLs ("/a?b") parse too.
    return new URL(url, "http://localhost").pathname;
  } catch {
    return "/";
  }
}

// ── errors ───────────────────────────────────────────────────────────────────

/** Plain JSON. An empty partial (count 0, as `init` makes) takes everything from the first event or merge. */
export interface ErrorsPartial {
  count: number;
  firstSeen: number;
  lastSeen: number;
  name: string;
  message: string;
  /** `data` of the event with the smallest (ts, id): the same sample whatever the merge order. */
  sample: Record<string, unknown>;
  sampleId: string;
  /** The sample's session (absent in partials saved before it was kept). */
  sampleSession?: string | null;
}

export interface ErrorsRow {
  fingerprint: string;
  name: string;
  message: string;
  count: number;
  firstSeen: number;
  lastSeen: number;
  sample: Record<string, unknown>;
  /** The sample event's `sessionId` (for its session replay), or null. */
  sessionId: string | null;
}

/** Error groups from `error` events, keyed by {@link errorFingerprint}. */
export const errors: ViewDefinition<ErrorsPartial, ErrorsRow> = {
  name: "errors",
  orderBy: "count",
  key: (event) => (event.type === "error" ? errorFingerprint(event.data) : null),
  init: () => ({
    count: 0,
    firstSeen: 0,
    lastSeen: 0,
    name: "",
    message: "",
    sample: {},
    sampleId: "",
    sampleSession: null,
  }),
  add(partial, event) {
    if (
      partial.count === 0 ||
      event.ts < partial.firstSeen ||
      (event.ts === partial.firstSeen && event.id < partial.sampleId)
    ) {
      partial.firstSeen = event.ts;
      partial.name = errorName(event.data);
      partial.message = errorMessage(event.data);
      partial.sample = event.data;
      partial.sampleId = event.id;
      partial.sampleSession = event.sessionId;
    }
    if (partial.count === 0 || event.ts > partial.lastSeen) partial.lastSeen = event.ts;
    partial.count++;
    return partial;
  },
  merge(a, b) {
    if (b.count === 0) return a;
    if (a.count === 0 || b.firstSeen < a.firstSeen || (b.firstSeen === a.firstSeen && b.sampleId < a.sampleId)) {
      a.firstSeen = b.firstSeen;
      a.name = b.name;
      a.message = b.message;
      a.sample = b.sample;
      a.sampleId = b.sampleId;
      a.sampleSession = b.sampleSession ?? null;
    }
    if (a.count === 0 || b.lastSeen > a.lastSeen) a.lastSeen = b.lastSeen;
    a.count += b.count;
    return a;
  },
  finalize: (p, fingerprint) => ({
    fingerprint,
    name: p.name,
    message: p.message,
    count: p.count,
    firstSeen: p.firstSeen,
    lastSeen: p.lastSeen,
    sample: p.sample,
    sessionId: p.sampleSession ?? null,
  }),
};

// Firefox and Safari: "fn@https://host/file.js:12:34" (fn may be empty).
const FIREFOX_FRAME = /^[^\s@]*@\S+:\d+(?::\d+)?$/;

/**
 * Stable 16-hex-digit fingerprint of an error: its name (`data.name`, else `data.type`, else
 * "Error"), its message, and the first stack frame ("at …", or Firefox/Safari's "fn@file:line:col"),
 * trimmed. The frame keeps its line number: the same message thrown from two places is two errors.
 * Other `data` fields do not count.
 */
export function errorFingerprint(data: Record<string, unknown>): string {
  const name = errorName(data);
  const message = errorMessage(data);
  const frame = firstFrame(data.stack);
  // Two chained 32-bit hashes with different seeds: 64 bits, so distinct errors practically never share a key.
  const hi = hash32i(frame, hash32i(message, hash32i(name, 0x9747b28c | 0)));
  const lo = hash32i(frame, hash32i(message, hash32i(name, 0x2f6b1d3a)));
  return hex32(hi) + hex32(lo);
}

const HEX_DIGITS = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));

/** 8 lowercase hex digits of h's 32 bits (signed or not); several times faster than toString(16).padStart(8, "0"). */
function hex32(h: number): string {
  const d = HEX_DIGITS;
  return String.fromCharCode(
    d[h >>> 28]!,
    d[(h >>> 24) & 15]!,
    d[(h >>> 20) & 15]!,
    d[(h >>> 16) & 15]!,
    d[(h >>> 12) & 15]!,
    d[(h >>> 8) & 15]!,
    d[(h >>> 4) & 15]!,
    d[h & 15]!,
  );
}

function errorName(data: Record<string, unknown>): string {
  if (typeof data.name === "string") return data.name;
  if (typeof data.type === "string") return data.type;
  return "Error";
}

function errorMessage(data: Record<string, unknown>): string {
  return typeof data.message === "string" ? data.message : "";
}

function firstFrame(stack: unknown): string {
  if (typeof stack !== "string") return "";
  let start = 0;
  while (start < stack.length) {
    let end = stack.indexOf("\n", start);
    if (end === -1) end = stack.length;
    // Skip the indentation by hand: slicing and trimming every line of a long stack costs more.
    while (start < end && (stack.charCodeAt(start) === 32 || stack.charCodeAt(start) === 9)) start++;
    if (stack.startsWith("at ", start)) return stack.slice(start, end).trimEnd();
    const at = stack.indexOf("@", start);
    if (at !== -1 && at < end) {
      const line = stack.slice(start, end).trimEnd();
      if (FIREFOX_FRAME.test(line)) return line;
    }
    start = end + 1;
  }
  return "";
}

// ── latency ──────────────────────────────────────────────────────────────────

export interface LatencyRow {
  route: string;
  count: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

/** An event's latency in ms (see {@link latencyOf}), or null; duck.js's `pageleave` has none: its `duration` is time on the page. */
export function eventLatency(type: string, data: Record<string, unknown>): number | null {
  return type === "pageleave" ? null : latencyOf(data);
}

/**
 * Latency percentiles per route (`data.route`, else `data.path` without query, else source and
 * type), from events whose `data.duration`, `data.ms` or `data.latency` is a finite number (ms),
 * but `pageleave` (see {@link eventLatency}).
 */
export const latency: ViewDefinition<LogHistogram, LatencyRow> = {
  name: "latency",
  orderBy: "count",
  key: (event) =>
    eventLatency(event.type, event.data) === null ? null : latencyRoute(event.data, event.source, event.type),
  init: () => new LogHistogram(),
  add(partial, event) {
    partial.add(eventLatency(event.type, event.data)!);
    return partial;
  },
  merge: (a, b) => a.merge(b),
  // Finalized partials are never empty (a key exists because an event had a latency), hence the `!`.
  finalize: (h, route) => ({
    route,
    count: h.count,
    p50: h.quantile(0.5)!,
    p90: h.quantile(0.9)!,
    p95: h.quantile(0.95)!,
    p99: h.quantile(0.99)!,
    min: h.min!,
    max: h.max!,
    mean: h.mean!,
  }),
  toJSON: (h) => h.toJSON(),
  fromJSON: (json) => LogHistogram.fromJSON(json),
};

/**
 * The key of a latency: `data.route`, else `data.path` without query, else source and type.
 * `path` is {@link cleanPath}'s answer when the caller already has it.
 */
export function latencyRoute(
  data: Record<string, unknown>,
  source: string,
  type: string,
  path?: string | null,
): string {
  const { route } = data;
  if (typeof route === "string") return route;
  const clean = path === undefined ? cleanPath(data) : path;
  if (clean !== null) return clean;
  return `${source} ${type}`;
}

/** `data.duration`, else `data.ms`, else `data.latency`: the first that is a finite number, or null. */
export function latencyOf(data: Record<string, unknown>): number | null {
  const { duration, ms, latency } = data;
  if (typeof duration === "number" && Number.isFinite(duration)) return duration;
  if (typeof ms === "number" && Number.isFinite(ms)) return ms;
  if (typeof latency === "number" && Number.isFinite(latency)) return latency;
  return null;
}

/** The views every replica maintains. */
export const BUILTIN_VIEWS: readonly AnyView[] = [pageviews, errors, latency];
