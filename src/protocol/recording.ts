import { DuckTailError, ErrorCode } from "./errors";

/**
 * Session recordings on the wire: the chunks duck-record.js sends (over duck.js's socket as a
 * `recording` frame, or POST /recording), their acks, and what GET /recording/sessions answers.
 * See docs/ARCHITECTURE.md, "Session recording".
 */

/** A session id: what duck.js makes (a UUID), or any id of 1..64 letters, digits, `-` and `_`. */
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Longest userId or anonymousId a chunk may carry, in characters. */
const MAX_CHUNK_ID_LENGTH = 1024;
/** Most chunks one session may have (a chunk every few seconds: days of recording). */
export const MAX_CHUNK_SEQ = 100_000;

/** One chunk of rrweb events of one session, numbered from 0 by its recorder. */
export interface RecordingChunk {
  session: string;
  /** The chunk's number in its session; a chunk sent again has the same one and is stored once. */
  seq: number;
  /** rrweb events (`{type, timestamp, data}`), in order. */
  events: RrwebEvent[];
  /** The user duck.js identified, if any. */
  userId?: string;
  /** duck.js's anonymous id of the page (its events' `anonymousId`), if any. */
  anonymousId?: string;
}

export interface RrwebEvent {
  type: number;
  timestamp: number;
  data?: unknown;
  [field: string]: unknown;
}

/** The server's answer to a chunk: a `recorded` frame, or the body of POST /recording. */
export interface RecordedAnswer {
  session: string;
  seq: number;
  /** True when this seq was stored before (a chunk re-sent after a lost ack). */
  duplicate: boolean;
}

/** What GET /recording/sessions lists of one session (its index). */
export interface SessionSummary {
  session: string;
  /** Epoch ms of its first and last event. */
  start: number;
  end: number;
  /** The pages (URLs) it visited, in order, each once. */
  pages: string[];
  /** The last userId its chunks carried. */
  userId: string | null;
  /** The last anonymousId its chunks carried (null for sessions recorded before chunks had one). */
  anonymousId: string | null;
  /**
   * The other userIds its chunks carried (a shared device: one user logged out, another in), when
   * there were: GET /recording/sessions?userId= and DELETE /users/<id> match them too.
   */
  otherUserIds?: string[];
  /** The same for anonymousIds. */
  otherAnonymousIds?: string[];
  /** Errors recorded in it (rrweb custom events tagged "error"). */
  errors: number;
  chunks: number;
  /** Stored (gzipped) bytes. */
  bytes: number;
}

export function isSessionId(value: unknown): value is string {
  return typeof value === "string" && SESSION_ID.test(value);
}

/** Validates a chunk as sent; throws `bad_frame` (or `bad_request` for HTTP, by `code`) saying what is wrong. */
export function parseChunk(raw: unknown, code: ErrorCode = ErrorCode.badFrame): RecordingChunk {
  const bad = (why: string) => new DuckTailError(code, `recording chunk: ${why}`);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad("must be an object");
  const o = raw as Record<string, unknown>;
  if (!isSessionId(o.session)) throw bad("session must be 1..64 letters, digits, - or _");
  if (!Number.isInteger(o.seq) || (o.seq as number) < 0 || (o.seq as number) >= MAX_CHUNK_SEQ) {
    throw bad(`seq must be a whole number 0..${MAX_CHUNK_SEQ - 1}`);
  }
  if (!Array.isArray(o.events) || o.events.length === 0) throw bad("events must be a non-empty array");
  for (const e of o.events) {
    const event = e as Record<string, unknown> | null;
    if (
      typeof event !== "object" ||
      event === null ||
      !Number.isInteger(event.type) ||
      !Number.isFinite(event.timestamp)
    ) {
      throw bad("each event must be an rrweb event {type, timestamp, data}");
    }
  }
  const chunk: RecordingChunk = { session: o.session, seq: o.seq as number, events: o.events as RrwebEvent[] };
  for (const field of ["userId", "anonymousId"] as const) {
    const id = o[field];
    if (id !== undefined && id !== null && (typeof id !== "string" || id.length > MAX_CHUNK_ID_LENGTH)) {
      throw bad(`${field} must be a string of at most ${MAX_CHUNK_ID_LENGTH} characters`);
    }
    if (typeof id === "string" && id !== "") chunk[field] = id;
  }
  return chunk;
}
