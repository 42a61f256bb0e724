import { eventFromQuery, PIXEL } from "../browser";
import type { Env } from "../env";
import { authorize, type Principal, requestKey } from "../protocol/auth";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import type { EventInput, Rejection } from "../protocol/events";
import { limitsFrom } from "../protocol/limits";
import {
  analyticsEvents,
  isAnalyticsFormat,
  KeyRateLimit,
  SEGMENT_MAX_BATCH,
  SEGMENT_MAX_BATCH_BYTES,
  SEGMENT_TYPES,
  type SegmentType,
  segmentEvents,
  segmentWriteKey,
} from "../segment";
import { checkPressure, contextHeaders, keysOf, need, type Placed, place } from "./tenancy";

/**
 * HTTP ingest at the edge: POST /e (DuckTail events or the original's Analytics format), GET /e,
 * the pixel, and Segment's API. Each request's context goes to the shard with its events.
 */

/** What an ingest answer says, plus the original DuckTail's `_shards` (where the batch went). */
interface IngestAnswer {
  received: number;
  stored: number;
  duplicates?: number;
  rejected: Rejection[];
  storageMode?: string;
  _shards: { shardId: string; tier: number; received: number; stored: number }[];
}

/**
 * Stores events mapped from another format (Segment, the original's Analytics format): on one
 * shard picked by the first id, so a retried batch meets its own ids and drops them (`dedup`).
 * Rejections point into the request's messages (`mapped.indexes`), its own refusals included.
 */
async function storeMapped(
  req: Request,
  env: Env,
  tenant: string,
  mapped: { events: EventInput[]; indexes: number[]; rejected: Rejection[] },
  received: number,
  storageMode: string | null,
): Promise<IngestAnswer> {
  const answer: IngestAnswer = { received, stored: 0, duplicates: 0, rejected: [...mapped.rejected], _shards: [] };
  if (mapped.events.length > 0) {
    const placed = await place(env, tenant, mapped.events[0]?.id ?? crypto.randomUUID());
    // A refusal is thrown whole: a durable_pending answer's `pending` range says which rows wait for R2.
    const { answer: r } = await placed.replica.events(JSON.stringify(mapped.events), {
      dedup: true,
      storageMode,
      headers: contextHeaders(req, env),
    });
    answer.stored = r.stored ?? 0;
    answer.duplicates = r.duplicates ?? 0;
    if (r.storageMode) answer.storageMode = r.storageMode;
    for (const x of r.rejected ?? []) answer.rejected.push({ ...x, index: mapped.indexes[x.index] as number });
    answer._shards.push(shardSummary(placed, mapped.events.length, answer.stored));
  }
  answer.rejected.sort((a, b) => a.index - b.index);
  return answer;
}

function shardSummary(placed: Placed, received: number, stored: number): IngestAnswer["_shards"][number] {
  return { shardId: placed.shard.name, tier: placed.tier, received, stored };
}

/** Per-isolate Segment rate limiters, by configured rate. */
const segmentLimits = new Map<number, KeyRateLimit>();

/** Segment's HTTP Tracking API (src/segment.ts): /v1/<call> and /v1/batch, /v1/ping. */
export async function segment(req: Request, env: Env, url: URL): Promise<Response> {
  const call = url.pathname.slice("/v1/".length);
  if (call === "ping") return Response.json({ ok: true, service: "ducktail" });
  if (call !== "batch" && !SEGMENT_TYPES.includes(call as SegmentType)) {
    throw new DuckTailError(ErrorCode.notFound, `no route ${url.pathname}`);
  }
  if (req.method !== "POST") throw new DuckTailError(ErrorCode.methodNotAllowed, `POST to ${url.pathname}`);
  const max = call === "batch" ? SEGMENT_MAX_BATCH_BYTES : limitsFrom(env).maxEventBytes;
  const text = await bodyText(req, max);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new DuckTailError(ErrorCode.badJson, "body is not valid JSON");
  }
  const writeKey = segmentWriteKey(req, body);
  const principal = authorize(keysOf(env), writeKey, "write");
  const rate = Number(env.SEGMENT_RATE_LIMIT_RPS ?? 200);
  let limiter = segmentLimits.get(rate);
  if (!limiter) {
    limiter = new KeyRateLimit(rate);
    segmentLimits.set(rate, limiter);
  }
  const wait = limiter.take(writeKey ?? principal.tenant);
  if (wait > 0) {
    return Response.json(
      { success: false, error: { code: "rate_limited", message: "too many requests for this write key" } },
      { status: 429, headers: { "retry-after": String(wait) } },
    );
  }
  const batch = (body as { batch?: unknown[] } | null)?.batch;
  if (call === "batch" && (!Array.isArray(batch) || batch.length > SEGMENT_MAX_BATCH)) {
    throw new DuckTailError(ErrorCode.batchTooLarge, `batch must be an array of at most ${SEGMENT_MAX_BATCH} messages`);
  }
  const mapped = segmentEvents(body, call as SegmentType | "batch", Date.now());
  const received = call === "batch" ? (batch?.length ?? 0) : 1;
  const answer = await storeMapped(req, env, principal.tenant, mapped, received, null);
  const { stored, duplicates = 0, rejected, _shards } = answer;
  const ok = stored + duplicates > 0 || rejected.length === 0;
  return Response.json({ success: ok, received, stored, duplicates, rejected, _shards }, { status: ok ? 200 : 400 });
}

/** Per-isolate counts of pixel requests that stored nothing, by reason: GET /health shows them. */
const pixelRefusals = { badKey: 0, badEvent: 0, failed: 0 };

/** How many pixel requests this isolate answered without storing anything, by reason. */
export function pixelRefusalCounts(): Readonly<typeof pixelRefusals> {
  return { ...pixelRefusals };
}
let pixelWarnedAt = 0;

/**
 * GET /p.gif (and GET /e asking for an image): always the 1x1 GIF, so a page's `<img>` never
 * breaks. A bad key or event is counted (the tenant's stats count rejected events; /health
 * counts the rest) and logged, at most once a minute per isolate.
 */
export async function pixel(req: Request, env: Env, url: URL, ctx: ExecutionContext): Promise<Response> {
  let refusal: keyof typeof pixelRefusals | null = null;
  let reason = "";
  try {
    const principal = need(env, req, url, "write");
    await checkPressure(env, principal.tenant, ctx);
    const event = eventFromQuery(url, req.headers.get("referer"));
    const placed = await place(env, principal.tenant);
    const { status, answer } = await placed.replica.events(JSON.stringify(event), {
      storageMode: url.searchParams.get("storageMode"),
      headers: contextHeaders(req, env),
    });
    if (status !== 200) {
      refusal = "badEvent";
      reason = JSON.stringify(answer.rejected);
    }
  } catch (err) {
    const e = err instanceof DuckTailError ? err : null;
    if (e?.code === ErrorCode.unauthorized || e?.code === ErrorCode.forbidden) refusal = "badKey";
    else refusal = e && e.status < 500 ? "badEvent" : "failed";
    reason = err instanceof Error ? err.message : String(err);
  }
  if (refusal) {
    pixelRefusals[refusal]++;
    const now = Date.now();
    if (now - pixelWarnedAt >= 60_000) {
      pixelWarnedAt = now;
      console.warn(`ducktail: a pixel stored nothing (${refusal}: ${reason}); counts so far`, pixelRefusals);
    }
  }
  return new Response(PIXEL, { headers: { "content-type": "image/gif", "cache-control": "no-store" } });
}

/** GET /e: one event from the query string; 204 when stored. */
export async function ingestQuery(req: Request, env: Env, url: URL, principal: Principal): Promise<Response> {
  const event = eventFromQuery(url);
  const placed = await place(env, principal.tenant);
  const { status, answer } = await placed.replica.events(JSON.stringify(event), {
    storageMode: url.searchParams.get("storageMode"),
    headers: contextHeaders(req, env),
  });
  return status === 200 ? new Response(null, { status: 204 }) : Response.json(answer, { status });
}

/**
 * POST /e (and /buffer/events): DuckTail events (one, an array, or `{events, storageMode}`), or the
 * original DuckTail's Analytics format, whose write key may ride in the body. The answer carries
 * where the batch went (`_shards`) beside the replica's own fields.
 */
export async function ingestBody(req: Request, env: Env, url: URL, ctx: ExecutionContext): Promise<Response> {
  const max = limitsFrom(env).maxFrameBytes;
  if (Number(req.headers.get("content-length") ?? 0) > max) {
    throw new DuckTailError(ErrorCode.frameTooLarge, `body is larger than ${max} bytes`);
  }
  const text = await bodyText(req, max);
  // Only a body that names an "event" can be in the Analytics format: others are not parsed here.
  let analytics: ReturnType<typeof analyticsEvents> | null = null;
  if (text.includes('"event"')) {
    const body = parseOrUndefined(text);
    if (isAnalyticsFormat(body)) analytics = analyticsEvents(body, Date.now());
  }
  const key = requestKey(req, url) ?? analytics?.writeKey ?? null;
  const principal = authorize(keysOf(env), key, "write");
  await checkPressure(env, principal.tenant, ctx);
  if (analytics) {
    const received = analytics.events.length + analytics.rejected.length;
    const storageMode = url.searchParams.get("storageMode");
    const answer = await storeMapped(req, env, principal.tenant, analytics, received, storageMode);
    const status = answer.stored + (answer.duplicates ?? 0) === 0 && answer.rejected.length > 0 ? 400 : 200;
    return Response.json(answer, { status });
  }
  const placed = await place(env, principal.tenant);
  const { status, answer } = await placed.replica.events(text, {
    storageMode: url.searchParams.get("storageMode"),
    headers: contextHeaders(req, env),
  });
  const _shards = [shardSummary(placed, answer.received, answer.stored)];
  return Response.json({ ...answer, _shards } satisfies IngestAnswer, { status });
}

/**
 * A request body as text, refused whole when it is not UTF-8 (`req.text()` would put U+FFFD in
 * place of the bad bytes, and the stored event would not be the one sent) or larger than `max` bytes.
 */
async function bodyText(req: Request, max: number): Promise<string> {
  const bytes = await req.arrayBuffer();
  if (bytes.byteLength > max) throw new DuckTailError(ErrorCode.frameTooLarge, `body is larger than ${max} bytes`);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new DuckTailError(ErrorCode.invalidEncoding, "body is not valid UTF-8");
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
