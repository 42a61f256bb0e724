import type { Env } from "../env";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import { utf8Length } from "../protocol/frames";
import type { ErasureSubject } from "../protocol/lake";
import { limitsFrom } from "../protocol/limits";
import { isSessionId, type RecordedAnswer } from "../protocol/recording";
import { recordChunk, sessionRecording } from "../recording/client";
import { chunkKeys, streamSession } from "../recording/objects";
import {
  eraseUserRecordings,
  listSessions,
  recordingTenants,
  retainRecordings,
  type SessionQuery,
} from "../recording/sessions";
import { recordingSettings } from "../recording/settings";
import { catalogOf } from "./lake";
import { need, storage } from "./tenancy";

/**
 * Session recording's routes (see README, "Session recording"):
 *   POST   /recording              write: chunks (duck-record.js's fallback and page-hide beacon)
 *   GET    /recording/sessions     read: the tenant's sessions, filtered
 *   GET    /recording/<session>    read: the session's events, streamed
 *   DELETE /recording/<session>    admin: the session's recording, gone
 *   GET    /duck-record.js         the recorder, from the static assets
 */

const SESSION_ROUTE = /^\/recording\/([^/]+)$/;
const DAY_MS = 86_400_000;
/** Widest range one listing may cover. */
const MAX_RANGE_DAYS = 92;
const MAX_LIMIT = 1000;
/** Most chunks in one POST (a beacon carries what is left on page hide). */
const MAX_POST_CHUNKS = 100;

export function isRecordingRoute(pathname: string): boolean {
  return pathname === "/duck-record.js" || pathname === "/recording" || SESSION_ROUTE.test(pathname);
}

export async function recordingRoute(req: Request, env: Env, url: URL): Promise<Response> {
  if (url.pathname === "/duck-record.js") return recorderScript(req, env);
  if (url.pathname === "/recording") {
    if (req.method !== "POST") throw new DuckTailError(ErrorCode.methodNotAllowed, "POST /recording");
    return Response.json({ recorded: await postChunks(req, env, need(env, req, url, "write").tenant) });
  }
  const id = sessionOf(url.pathname);
  if (id === "sessions") {
    if (req.method !== "GET") throw new DuckTailError(ErrorCode.methodNotAllowed, "GET /recording/sessions");
    const tenant = need(env, req, url, "read").tenant;
    return Response.json({ sessions: await listSessions(storage(env), tenant, sessionQuery(url, Date.now())) });
  }
  if (!isSessionId(id)) throw new DuckTailError(ErrorCode.badRequest, "a session id is 1..64 letters, digits, - or _");
  if (req.method === "DELETE") {
    const tenant = need(env, req, url, "admin").tenant;
    const deleted = await session(env, tenant, id).erase();
    if (deleted === 0) throw new DuckTailError(ErrorCode.notFound, `no recording of session ${id}`);
    return Response.json({ session: id, deleted });
  }
  if (req.method !== "GET") throw new DuckTailError(ErrorCode.methodNotAllowed, `GET or DELETE ${url.pathname}`);
  const tenant = need(env, req, url, "read").tenant;
  const state = await session(env, tenant, id).state();
  if (!state) throw new DuckTailError(ErrorCode.notFound, `no recording of session ${id}`);
  const bucket = storage(env);
  const keys = await chunkKeys(bucket, tenant, state.day, id);
  return new Response(streamSession(bucket, keys, state.summary), {
    headers: { "content-type": "application/json", "cache-control": "no-store" },
  });
}

function sessionOf(pathname: string): string {
  try {
    return decodeURIComponent(SESSION_ROUTE.exec(pathname)?.[1] ?? "");
  } catch {
    throw new DuckTailError(ErrorCode.badRequest, "the session id is not valid percent-encoding");
  }
}

function session(env: Env, tenant: string, id: string) {
  if (!env.RECORDINGS) throw new DuckTailError(ErrorCode.notFound, "session recording is not configured");
  return sessionRecording(env.RECORDINGS, tenant, id);
}

/** The recorder script, built into the static assets (sdk/recorder): never inlined in the Worker. */
async function recorderScript(req: Request, env: Env): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") throw new DuckTailError(ErrorCode.methodNotAllowed, "GET");
  if (!env.ASSETS)
    throw new DuckTailError(ErrorCode.notFound, "no static assets (ASSETS) to serve duck-record.js from");
  const res = await env.ASSETS.fetch(new URL("/duck-record.js", req.url), { method: req.method });
  if (!res.ok) throw new DuckTailError(ErrorCode.notFound, "duck-record.js is not built (npm run build)");
  const headers = new Headers(res.headers);
  headers.set("content-type", "application/javascript; charset=utf-8");
  headers.set("cache-control", "public, max-age=3600");
  return new Response(res.body, { status: 200, headers });
}

/** A chunk, or an array of them, as text/plain JSON (a simple request: no CORS preflight). */
async function postChunks(req: Request, env: Env, tenant: string): Promise<RecordedAnswer[]> {
  const text = await req.text();
  const max = limitsFrom(env).maxFrameBytes;
  if (utf8Length(text, max) > max) {
    throw new DuckTailError(ErrorCode.frameTooLarge, `body is larger than ${max} bytes (MAX_FRAME_BYTES)`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new DuckTailError(ErrorCode.badJson, "body is not valid JSON");
  }
  const chunks = Array.isArray(body) ? body : [body];
  if (chunks.length === 0 || chunks.length > MAX_POST_CHUNKS) {
    throw new DuckTailError(ErrorCode.badRequest, `1..${MAX_POST_CHUNKS} chunks per request`);
  }
  const answers: RecordedAnswer[] = [];
  for (const chunk of chunks) answers.push(await recordChunk(env, tenant, chunk, ErrorCode.badRequest));
  return answers;
}

/** GET /recording/sessions's query: from, to (epoch ms or ISO; default the last day), userId, anonymousId, hasErrors, limit. */
export function sessionQuery(url: URL, now: number): SessionQuery {
  const p = url.searchParams;
  const to = time(p.get("to"), "to") ?? now;
  const from = time(p.get("from"), "from") ?? to - DAY_MS;
  if (from > to) throw new DuckTailError(ErrorCode.badRequest, "from must not be after to");
  if (to - from > MAX_RANGE_DAYS * DAY_MS) {
    throw new DuckTailError(ErrorCode.badRequest, `at most ${MAX_RANGE_DAYS} days per listing`);
  }
  const q: SessionQuery = { from, to, limit: 100 };
  for (const field of ["userId", "anonymousId"] as const) {
    const id = p.get(field);
    if (id !== null && id !== "") q[field] = id;
  }
  const hasErrors = p.get("hasErrors");
  if (hasErrors !== null && hasErrors !== "") {
    if (hasErrors !== "true" && hasErrors !== "false") {
      throw new DuckTailError(ErrorCode.badRequest, "hasErrors must be true or false");
    }
    q.hasErrors = hasErrors === "true";
  }
  const limit = p.get("limit");
  if (limit !== null) {
    q.limit = Number(limit);
    if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_LIMIT) {
      throw new DuckTailError(ErrorCode.badRequest, `limit must be 1..${MAX_LIMIT}`);
    }
  }
  return q;
}

function time(value: string | null, name: string): number | undefined {
  if (value === null || value === "") return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new DuckTailError(ErrorCode.badRequest, `${name} must be epoch ms or ISO-8601`);
  return ms;
}

/**
 * The cron's recording retention: per tenant with recordings, RECORDING_RETENTION_DAYS, else the
 * tenant's lake retention (its override, else RETENTION_DAYS); none → recordings are kept.
 */
export async function recordingCron(env: Env, now = Date.now()): Promise<void> {
  if (!env.RECORDINGS) return;
  const bucket = storage(env);
  const own = recordingSettings(env).retentionMs;
  for (const tenant of await recordingTenants(bucket)) {
    try {
      const days = own === null ? (await catalogOf(env, tenant).retention()).days : null;
      const retentionMs = own ?? (days === null ? null : days * DAY_MS);
      if (retentionMs === null) continue;
      const erased = await retainRecordings(bucket, env.RECORDINGS, tenant, retentionMs, now);
      if (erased > 0) console.log(`ducktail: recordings of ${tenant}: ${erased} sessions past retention erased`);
    } catch (err) {
      console.error(`ducktail: recording retention of ${tenant} failed`, err);
    }
  }
}

/** DELETE /users/<id>: their recorded sessions, by the userId and anonymousId duck.js gave the chunks. */
export async function eraseUserSessions(env: Env, tenant: string, subject: ErasureSubject): Promise<number> {
  if (!env.RECORDINGS) return 0;
  return eraseUserRecordings(storage(env), env.RECORDINGS, tenant, subject);
}
