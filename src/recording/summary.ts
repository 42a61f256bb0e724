import type { RecordingChunk, RrwebEvent, SessionSummary } from "../protocol/recording";

/**
 * A session's index, kept up to date chunk by chunk: pure functions of the chunks' events, so
 * the SessionRecording object only stores what they answer.
 */

/** rrweb's event types this reads (rrweb's EventType enum). */
const RRWEB_META = 4;
const RRWEB_CUSTOM = 5;
/** The custom event tag duck-record.js gives a page's uncaught errors. */
export const ERROR_TAG = "error";

/** What one chunk adds to its session's index. */
export interface ChunkSummary {
  start: number;
  end: number;
  pages: string[];
  errors: number;
}

export function summarizeChunk(events: RrwebEvent[]): ChunkSummary {
  let start = Number.POSITIVE_INFINITY;
  let end = Number.NEGATIVE_INFINITY;
  const pages: string[] = [];
  let errors = 0;
  for (const e of events) {
    start = Math.min(start, e.timestamp);
    end = Math.max(end, e.timestamp);
    const data = e.data as { href?: unknown; tag?: unknown } | undefined;
    if (e.type === RRWEB_META && typeof data?.href === "string" && !pages.includes(data.href)) pages.push(data.href);
    if (e.type === RRWEB_CUSTOM && data?.tag === ERROR_TAG) errors++;
  }
  return { start, end, pages, errors };
}

/** The index after one more chunk (`bytes`: its stored size; `ids`: the ids the chunk carried). */
export function addChunk(
  index: SessionSummary | null,
  session: string,
  chunk: ChunkSummary,
  bytes: number,
  ids: Pick<RecordingChunk, "userId" | "anonymousId">,
): SessionSummary {
  const base: SessionSummary = index ?? {
    session,
    start: chunk.start,
    end: chunk.end,
    pages: [],
    userId: null,
    anonymousId: null,
    errors: 0,
    chunks: 0,
    bytes: 0,
  };
  const userId = ids.userId ?? base.userId;
  const anonymousId = ids.anonymousId ?? base.anonymousId ?? null;
  const otherUserIds = others(base.otherUserIds, base.userId, userId);
  const otherAnonymousIds = others(base.otherAnonymousIds, base.anonymousId ?? null, anonymousId);
  return {
    session,
    start: Math.min(base.start, chunk.start),
    end: Math.max(base.end, chunk.end),
    pages: [...base.pages, ...chunk.pages.filter((p) => !base.pages.includes(p))],
    userId,
    anonymousId,
    ...(otherUserIds && { otherUserIds }),
    ...(otherAnonymousIds && { otherAnonymousIds }),
    errors: base.errors + chunk.errors,
    chunks: base.chunks + 1,
    bytes: base.bytes + bytes,
  };
}

/** The ids a session carried besides `now`, after one went from `before` to `now`; undefined when none. */
function others(list: string[] | undefined, before: string | null, now: string | null): string[] | undefined {
  const kept = (list ?? []).filter((id) => id !== now);
  if (before !== null && before !== now && !kept.includes(before)) kept.push(before);
  return kept.length > 0 ? kept : undefined;
}

/** R2 allows 2,048 bytes of custom metadata per object; the index's stays under this. */
const METADATA_BUDGET = 1900;
const MAX_PAGE_CHARS = 300;
/**
 * Longest id (UTF-8 bytes) kept in the metadata: both ids at this size and every other field
 * leave room for pages. A longer one is left out and `longIds` says so: the index object has it.
 */
const MAX_METADATA_ID_BYTES = 512;
const ID_FIELDS = ["userId", "anonymousId"] as const;
const LONG_IDS = "longIds";
/** The metadata key of the other ids, as JSON `{u: otherUserIds, a: otherAnonymousIds}` (within the id budget). */
const OTHER_IDS = "otherIds";

const utf8Bytes = (text: string) => new TextEncoder().encode(text).byteLength;

/**
 * The index as R2 custom metadata (strings), so a listing answers sessions without reading each
 * index: every field, and as many of the first pages as fit (the index object has them all).
 */
export function toMetadata(s: SessionSummary): Record<string, string> {
  const meta: Record<string, string> = {
    start: String(s.start),
    end: String(s.end),
    errors: String(s.errors),
    chunks: String(s.chunks),
    bytes: String(s.bytes),
    pageCount: String(s.pages.length),
    pages: "[]",
  };
  for (const field of ID_FIELDS) {
    const id = s[field];
    if (id === null) continue;
    if (utf8Bytes(id) <= MAX_METADATA_ID_BYTES) meta[field] = id;
    else meta[LONG_IDS] = "1";
  }
  if (s.otherUserIds || s.otherAnonymousIds) {
    const other = JSON.stringify({ u: s.otherUserIds ?? [], a: s.otherAnonymousIds ?? [] });
    if (utf8Bytes(other) <= MAX_METADATA_ID_BYTES) meta[OTHER_IDS] = other;
    else meta[LONG_IDS] = "1";
  }
  const size = () => utf8Bytes(Object.entries(meta).flat().join(""));
  const pages: string[] = [];
  for (const page of s.pages) {
    pages.push(page.slice(0, MAX_PAGE_CHARS));
    meta.pages = JSON.stringify(pages);
    if (size() > METADATA_BUDGET) {
      pages.pop();
      meta.pages = JSON.stringify(pages);
      break;
    }
  }
  return meta;
}

/** The index from its metadata; null when an id was too long for it (read the index object instead). */
export function fromMetadata(session: string, meta: Record<string, string>): SessionSummary | null {
  if (meta[LONG_IDS]) return null;
  let pages: string[] = [];
  try {
    pages = JSON.parse(meta.pages ?? "[]");
  } catch {
    // an index written by hand: no pages
  }
  let other: { u: string[]; a: string[] } = { u: [], a: [] };
  try {
    other = JSON.parse(meta[OTHER_IDS] ?? '{"u":[],"a":[]}');
  } catch {
    // an index written by hand: none
  }
  return {
    session,
    start: Number(meta.start),
    end: Number(meta.end),
    pages,
    userId: meta.userId ?? null,
    anonymousId: meta.anonymousId ?? null,
    ...(other.u.length > 0 && { otherUserIds: other.u }),
    ...(other.a.length > 0 && { otherAnonymousIds: other.a }),
    errors: Number(meta.errors ?? 0),
    chunks: Number(meta.chunks ?? 0),
    bytes: Number(meta.bytes ?? 0),
  };
}

/** The index object's body (the whole summary); one written before chunks had an anonymousId has none. */
export function fromIndexBody(text: string): SessionSummary {
  const s = JSON.parse(text) as SessionSummary;
  return { ...s, anonymousId: s.anonymousId ?? null };
}
