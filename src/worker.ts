import { duckScript, eventFromQuery, PIXEL, preflight, snippet, withCors } from "./browser";
import { contextHeader, ipPolicy, requestContext } from "./context";
import { listDeadLetters, replay, replayTargets } from "./dead-letter-routes";
import { identify } from "./dog";
import type { Env } from "./env";
import type { RoutingTable } from "./group/BufferCoordinator";
import { hash32 } from "./hash";
import { compactAll, compactTenant } from "./lake/compaction";
import { eventsResponse, parseEventQuery, queryEvents } from "./lake/query";
import {
  authorize,
  type KeyTable,
  type LoadedKeys,
  OPEN_TENANT,
  type Principal,
  parseKeys,
  requestKey,
  type Scope,
} from "./protocol/auth";
import { DuckTailError, ErrorCode, errorResponse } from "./protocol/errors";
import type { EventInput, Rejection, StoredEvent } from "./protocol/events";
import { limitsFrom } from "./protocol/limits";
import { Header, InternalRoute } from "./protocol/routes";
import type { ReplayOutcome } from "./replica/dead-letters";
import { retryPolicyFrom } from "./replica/retry-policy";
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
} from "./segment";
import { timedBucket } from "./sinks/timeout";
import { traceEvents } from "./tail-logs";

export { BufferCoordinator } from "./group/BufferCoordinator";
export { BufferReplica } from "./replica/BufferReplica";

import { VERSION } from "./version";

/** Per-isolate caches: parsed keys (by secret text) and routing tables (by tenant, short TTL). */
let keyCache: { secret: string | undefined; keys: LoadedKeys } | null = null;
const routes = new Map<string, { table: RoutingTable; expires: number }>();
let roundRobin = 0;
/** When this isolate last told a tenant's coordinator about rate-limit pressure (at most once a second). */
const pressureSent = new Map<string, number>();
const PRESSURE_EVERY_MS = 1_000;

/** The keys of `DUCKTAIL_KEYS`, loaded once per secret; entries that cannot be used are logged once. */
function loadedKeys(env: Env): LoadedKeys {
  if (!keyCache || keyCache.secret !== env.DUCKTAIL_KEYS) {
    const keys = parseKeys(env.DUCKTAIL_KEYS);
    for (const error of keys.errors) console.error(`ducktail: ${error}`);
    keyCache = { secret: env.DUCKTAIL_KEYS, keys };
  }
  return keyCache.keys;
}

function keysOf(env: Env): KeyTable | null {
  return loadedKeys(env).table;
}

function coordinator(env: Env, tenant: string): DurableObjectStub {
  return env.COORDINATOR.get(env.COORDINATOR.idFromName(tenant));
}

function tenantHeaders(tenant: string, extra: Record<string, string> = {}): Record<string, string> {
  return { [Header.tenant]: tenant, ...extra };
}

/** The tenant's routing table, from the per-isolate cache or (on miss/expiry) its coordinator. */
async function routingTable(env: Env, tenant: string): Promise<RoutingTable> {
  const hit = routes.get(tenant);
  if (hit && hit.expires > Date.now()) return hit.table;
  const res = await coordinator(env, tenant).fetch(`http://coordinator${InternalRoute.routing}`, {
    headers: tenantHeaders(tenant),
  });
  if (!res.ok) throw new DuckTailError(ErrorCode.internal, `coordinator answered ${res.status}`);
  return cacheRoutes((await res.json()) as RoutingTable);
}

function cacheRoutes(table: RoutingTable): RoutingTable {
  routes.set(table.tenant, { table, expires: Date.now() + table.ttlMs });
  return table;
}

/**
 * The optional rate-limit binding, keyed by tenant, is an early warning: past its limit the
 * coordinator scales the tenant up a tier at once (and this isolate takes the new routing table)
 * instead of waiting for the replicas' next reports. Requests are never refused because of it.
 */
async function checkPressure(env: Env, tenant: string, ctx: ExecutionContext): Promise<void> {
  if (!env.RATE_LIMITER) return;
  const { success } = await env.RATE_LIMITER.limit({ key: tenant });
  const now = Date.now();
  if (success || now - (pressureSent.get(tenant) ?? 0) < PRESSURE_EVERY_MS) return;
  pressureSent.set(tenant, now);
  ctx.waitUntil(
    coordinator(env, tenant)
      .fetch(`http://coordinator${InternalRoute.pressure}`, { method: "POST", headers: tenantHeaders(tenant) })
      .then(async (res) => {
        if (res.ok) cacheRoutes((await res.json()) as RoutingTable);
      })
      .catch((err) => console.error("ducktail: pressure signal failed", err)),
  );
}

/** The bucket with every call bounded by STORAGE_TIMEOUT_MS, as the replicas' sinks have it. */
function storage(env: Env): R2Bucket {
  return timedBucket(env.EVENTS, retryPolicyFrom(env).storageTimeoutMs);
}

/** The internal header that gives a replica the context of the request (src/context.ts). */
function contextHeaders(req: Request, env: Env): Record<string, string> {
  return { [Header.context]: contextHeader(requestContext(req, ipPolicy(env.IP_POLICY))) };
}

/** Where an ingest request went: the shard and the tier it belongs to (the answers' `_shards`). */
interface Placed {
  res: Response;
  shard: RoutingTable["shards"][number];
  tier: number;
}

/**
 * Sends an internal request to one of the tenant's shards, spread round-robin, or chosen by
 * `shardKey` (the same key always lands on the same shard of a tier).
 */
async function toShard(env: Env, tenant: string, route: string, init: RequestInit, shardKey?: string): Promise<Placed> {
  const table = await routingTable(env, tenant);
  const pick = shardKey === undefined ? roundRobin++ : hash32(shardKey);
  const shard = table.shards[pick % table.shards.length];
  if (!shard) throw new DuckTailError(ErrorCode.internal, "tenant has no shards");
  const stub = env.REPLICA.get(env.REPLICA.idFromString(shard.id));
  const headers = new Headers(init.headers);
  headers.set(Header.tenant, tenant);
  headers.set(Header.shard, String(shard.n));
  const res = await stub.fetch(`http://replica${route}`, { ...init, headers });
  return { res, shard, tier: table.tier };
}

async function toReplica(
  env: Env,
  tenant: string,
  route: string,
  init: RequestInit,
  shardKey?: string,
): Promise<Response> {
  return (await toShard(env, tenant, route, init, shardKey)).res;
}

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
    const query = storageMode ? `&storageMode=${encodeURIComponent(storageMode)}` : "";
    const placed = await toShard(
      env,
      tenant,
      `${InternalRoute.events}?dedup=1${query}`,
      { method: "POST", body: JSON.stringify(mapped.events), headers: contextHeaders(req, env) },
      mapped.events[0]?.id ?? crypto.randomUUID(),
    );
    const r = (await placed.res.json()) as Partial<IngestAnswer> & {
      error?: { code: ErrorCode; message: string } & Record<string, unknown>;
    };
    if (r.error) {
      // Passed on whole: a durable_pending answer's `pending` range says which rows wait for R2.
      const { code, message, ...details } = r.error;
      throw new DuckTailError(code, message, details);
    }
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
async function segment(req: Request, env: Env, url: URL): Promise<Response> {
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
  const { stored, duplicates = 0, rejected } = await storeMapped(req, env, principal.tenant, mapped, received, null);
  const ok = stored + duplicates > 0 || rejected.length === 0;
  return Response.json({ success: ok, received, stored, duplicates, rejected }, { status: ok ? 200 : 400 });
}

/** Per-isolate counts of pixel requests that stored nothing, by reason: GET /health shows them. */
const pixelRefusals = { badKey: 0, badEvent: 0, failed: 0 };
let pixelWarnedAt = 0;

/**
 * GET /p.gif (and GET /e asking for an image): always the 1x1 GIF, so a page's `<img>` never
 * breaks. A bad key or event is counted (the tenant's stats count rejected events; /health
 * counts the rest) and logged, at most once a minute per isolate.
 */
async function pixel(req: Request, env: Env, url: URL, ctx: ExecutionContext): Promise<Response> {
  let refusal: keyof typeof pixelRefusals | null = null;
  let reason = "";
  try {
    const principal = need(env, req, url, "write");
    await checkPressure(env, principal.tenant, ctx);
    const event = eventFromQuery(url, req.headers.get("referer"));
    const placed = await toShard(env, principal.tenant, InternalRoute.events + storageModeQuery(url), {
      method: "POST",
      body: JSON.stringify(event),
      headers: contextHeaders(req, env),
    });
    if (!placed.res.ok) {
      refusal = placed.res.status >= 500 ? "failed" : "badEvent";
      reason = await placed.res.text();
    }
  } catch (err) {
    const code = err instanceof DuckTailError ? err.code : ErrorCode.internal;
    refusal = code === ErrorCode.unauthorized || code === ErrorCode.forbidden ? "badKey" : "failed";
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

function storageModeQuery(url: URL): string {
  const storageMode = url.searchParams.get("storageMode");
  return storageMode ? `?storageMode=${encodeURIComponent(storageMode)}` : "";
}

/** GET /e: one event from the query string; 204 when stored. */
async function ingestQuery(req: Request, env: Env, url: URL, principal: Principal): Promise<Response> {
  const event = eventFromQuery(url);
  const res = await toReplica(env, principal.tenant, InternalRoute.events + storageModeQuery(url), {
    method: "POST",
    body: JSON.stringify(event),
    headers: contextHeaders(req, env),
  });
  return res.ok ? new Response(null, { status: 204 }) : res;
}

/**
 * POST /e (and /buffer/events): DuckTail events (one, an array, or `{events, storageMode}`), or the
 * original DuckTail's Analytics format, whose write key may ride in the body. The answer carries
 * where the batch went (`_shards`) beside the replica's own fields.
 */
async function ingestBody(req: Request, env: Env, url: URL, ctx: ExecutionContext): Promise<Response> {
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
  const placed = await toShard(env, principal.tenant, InternalRoute.events + storageModeQuery(url), {
    method: "POST",
    body: text,
    headers: contextHeaders(req, env),
  });
  const answer = (await placed.res.json()) as Partial<IngestAnswer> & { error?: unknown };
  if (!answer.error) answer._shards = [shardSummary(placed, answer.received ?? 0, answer.stored ?? 0)];
  return Response.json(answer, { status: placed.res.status });
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

async function socket(req: Request, env: Env, url: URL, principal: Principal): Promise<Response> {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new DuckTailError(ErrorCode.badFrame, "expected a WebSocket upgrade (Upgrade: websocket)");
  }
  const tenant = principal.tenant;
  const ns = env.COORDINATOR;
  // dog's identify names no tenant; wrap the group stub so the coordinator learns it.
  const parent = {
    get: (id: DurableObjectId) => {
      const stub = ns.get(id);
      return {
        fetch: (input: Request) => {
          input.headers.set(Header.tenant, tenant);
          return stub.fetch(input);
        },
      } as unknown as DurableObjectStub;
    },
  };
  const client = url.searchParams.get("client") ?? crypto.randomUUID();
  const stub = await identify(ns.idFromName(tenant), client, { parent, child: env.REPLICA });
  const upstream = new Request(`http://replica${InternalRoute.ws}${url.search}`, req);
  upstream.headers.set(Header.scope, principal.scope);
  upstream.headers.set(Header.tenant, tenant);
  upstream.headers.set(Header.context, contextHeader(requestContext(req, ipPolicy(env.IP_POLICY))));
  return stub.fetch(upstream);
}

async function adminCall(env: Env, tenant: string, route: string, method: string, body?: BodyInit): Promise<Response> {
  return coordinator(env, tenant).fetch(`http://coordinator${route}`, { method, headers: tenantHeaders(tenant), body });
}

/** Every shard of the tenant, routed or not, from its coordinator's registry. */
async function tenantShards(env: Env, tenant: string): Promise<{ n: number; id: string }[]> {
  const list = (await (await adminCall(env, tenant, InternalRoute.shards, "GET")).json()) as {
    shards: { n: number; id: string }[];
  };
  return list.shards;
}

/** GET /events: the tenant's Parquet objects in the range plus what its replicas still buffer. */
async function events(env: Env, url: URL, principal: Principal): Promise<Response> {
  const q = parseEventQuery(url);
  const shards = await tenantShards(env, principal.tenant);
  const query = new URLSearchParams(url.searchParams);
  query.delete("key");
  const buffered = await Promise.all(
    shards.map(async (s) => {
      const res = await env.REPLICA.get(env.REPLICA.idFromString(s.id)).fetch(
        `http://replica${InternalRoute.buffered}?${query}`,
        { headers: tenantHeaders(principal.tenant, { [Header.shard]: String(s.n) }) },
      );
      if (!res.ok) throw new DuckTailError(ErrorCode.internal, `shard ${s.n} answered ${res.status}`);
      return (await res.json()) as StoredEvent[];
    }),
  );
  return eventsResponse(queryEvents(storage(env), principal.tenant, q, buffered.flat()), q);
}

/** POST /deadletter/replay (admin): `{keys?, sink?}`; 200 when every one was replayed, else 502 with why. */
async function replayRoute(req: Request, env: Env, tenant: string): Promise<Response> {
  const text = await req.text();
  let body: unknown = {};
  if (text.trim() !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      throw new DuckTailError(ErrorCode.badJson, "body is not valid JSON");
    }
  }
  const keys = await replayTargets(env.EVENTS, tenant, body);
  const shards = await tenantShards(env, tenant);
  const report = await replay(keys, async (n, group) => {
    const shard = shards.find((s) => s.n === n);
    if (!shard) throw new Error(`the tenant has no shard ${n}`);
    const res = await env.REPLICA.get(env.REPLICA.idFromString(shard.id)).fetch(
      `http://replica${InternalRoute.replay}`,
      {
        method: "POST",
        headers: tenantHeaders(tenant, { [Header.shard]: String(n) }),
        body: JSON.stringify({ keys: group }),
      },
    );
    if (!res.ok) throw new Error(`shard ${n} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as ReplayOutcome[];
  });
  return Response.json(report, { status: report.failed.length > 0 ? 502 : 200 });
}

/** GET /buffer/ws?shard=n (admin): a socket straight to one shard, for inspection; dog does not place it. */
async function shardSocket(req: Request, env: Env, url: URL, principal: Principal): Promise<Response> {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new DuckTailError(ErrorCode.badFrame, "expected a WebSocket upgrade (Upgrade: websocket)");
  }
  const n = Number(url.searchParams.get("shard"));
  const shard = (await tenantShards(env, principal.tenant)).find((s) => s.n === n);
  if (!shard) throw new DuckTailError(ErrorCode.notFound, `tenant has no shard ${url.searchParams.get("shard")}`);
  const upstream = new Request(`http://replica${InternalRoute.ws}${url.search}`, req);
  upstream.headers.set(Header.scope, principal.scope);
  upstream.headers.set(Header.tenant, principal.tenant);
  upstream.headers.set(Header.shard, String(n));
  upstream.headers.set(Header.admin, "1");
  return env.REPLICA.get(env.REPLICA.idFromString(shard.id)).fetch(upstream);
}

/**
 * GET /health: liveness, and whether keys are configured. With a key (any scope), or on an open
 * Worker, also the tenant's tier and shard count from its routing table (cached per isolate).
 */
async function health(req: Request, env: Env, url: URL): Promise<Response> {
  const { table, errors } = loadedKeys(env);
  const open = table === null;
  const body: Record<string, unknown> = {
    ok: true,
    service: "ducktail",
    version: VERSION,
    auth: open ? "open" : "keys",
    ...(errors.length > 0 && { keyErrors: errors }),
    ...(open && { tenant: OPEN_TENANT, note: "no DUCKTAIL_KEYS configured: one open tenant, every caller is admin" }),
    pixels: { refused: { ...pixelRefusals } },
  };
  const key = requestKey(req, url);
  if (open || key) {
    try {
      const tenant = authorize(keysOf(env), key, "write", true).tenant;
      const table = await routingTable(env, tenant);
      Object.assign(body, { tenant, tier: table.tier, shards: table.shards.length });
    } catch (err) {
      body.keyError = err instanceof DuckTailError ? err.message : "the tenant's routing table is unavailable";
    }
  }
  return Response.json(body);
}

function need(env: Env, req: Request, url: URL, scope: Scope | null): Principal {
  const keys = keysOf(env);
  const key = requestKey(req, url);
  // A socket takes any valid key: the replica checks each frame against the key's scope.
  return authorize(keys, key, scope ?? "write", scope === null);
}

/** Every HTTP route; errors thrown inside become error responses here. */
async function route(req: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = withoutBasePath(new URL(req.url), env.BASE_PATH);
  try {
    switch (url.pathname) {
      case "/health":
        return await health(req, env, url);
      case "/ws": {
        const principal = need(env, req, url, null);
        await checkPressure(env, principal.tenant, ctx);
        return await socket(req, env, url, principal);
      }
      case "/p.gif":
        if (req.method !== "GET") break;
        return await pixel(req, env, url, ctx);
      case "/e":
      case "/buffer/events": {
        if (req.method === "POST") return await ingestBody(req, env, url, ctx);
        if (req.method !== "GET" || url.pathname === "/buffer/events") break;
        if ((req.headers.get("accept") ?? "").includes("image/")) return await pixel(req, env, url, ctx);
        const principal = need(env, req, url, "write");
        await checkPressure(env, principal.tenant, ctx);
        return await ingestQuery(req, env, url, principal);
      }
      case "/duck.js":
        return duckScript();
      case "/snippet":
        return snippet(url, env.BASE_PATH);
      case "/flush":
        if (req.method !== "POST") break;
        return await adminCall(env, need(env, req, url, "admin").tenant, InternalRoute.flush, "POST");
      case "/stats":
      case "/buffer/stats":
        return await adminCall(env, need(env, req, url, "read").tenant, InternalRoute.stats, "GET");
      case "/buffer/stats/aggregate":
        return await adminCall(env, need(env, req, url, "read").tenant, InternalRoute.aggregate, "GET");
      case "/shards":
        return await adminCall(env, need(env, req, url, "read").tenant, InternalRoute.shards, "GET");
      case "/buffer/scale": {
        if (req.method !== "POST") break;
        const tenant = need(env, req, url, "admin").tenant;
        const res = await adminCall(env, tenant, InternalRoute.scale, "POST", await req.text());
        if (res.ok) routes.delete(tenant); // this isolate routes by the new tier at once
        return res;
      }
      case "/compact": {
        // Admin: compact the tenant's closed hours now instead of waiting for the cron.
        if (req.method !== "POST") break;
        const tenant = need(env, req, url, "admin").tenant;
        return Response.json({ hours: await compactTenant(storage(env), tenant, Date.now()) });
      }
      case "/events": {
        if (req.method !== "GET") break;
        return await events(env, url, need(env, req, url, "read"));
      }
      case "/deadletter":
        if (req.method !== "GET") break;
        return Response.json({
          deadLetters: await listDeadLetters(
            env.EVENTS,
            need(env, req, url, "admin").tenant,
            url.searchParams.get("sink") ?? undefined,
          ),
        });
      case "/deadletter/replay":
        if (req.method !== "POST") break;
        return await replayRoute(req, env, need(env, req, url, "admin").tenant);
      case "/buffer/ws":
        return await shardSocket(req, env, url, need(env, req, url, "admin"));
      default: {
        if (url.pathname.startsWith("/v1/")) return await segment(req, env, url);
        // GET /buffer/mv/<view>?window=&by=&limit= : asked of one replica, merged over all of them.
        const mv = /^\/buffer\/mv\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
        if (!mv) throw new DuckTailError(ErrorCode.notFound, `no route ${url.pathname}`);
        if (req.method !== "GET") break;
        const query = new URLSearchParams(url.searchParams);
        query.delete("key");
        query.set("name", mv[1] as string);
        return await toReplica(env, need(env, req, url, "read").tenant, `${InternalRoute.mv}?${query}`, {});
      }
    }
    throw new DuckTailError(ErrorCode.methodNotAllowed, `${req.method} is not allowed on ${url.pathname}`);
  } catch (err) {
    return errorResponse(err);
  }
}

/**
 * A Worker on a route under a path (`example.com/ducktail/*`, `BASE_PATH = "/ducktail"`) serves
 * its routes below it; the routes without the prefix still answer.
 */
function withoutBasePath(url: URL, base: string | undefined): URL {
  const prefix = base?.replace(/\/+$/, "");
  if (prefix && (url.pathname === prefix || url.pathname.startsWith(`${prefix}/`))) {
    url.pathname = url.pathname.slice(prefix.length) || "/";
  }
  return url;
}

/**
 * The request without the headers DuckTail and dog use between their own objects: a client that
 * sends them must not pass for the Worker, the coordinator or a replica.
 */
function withoutInternalHeaders(req: Request): Request {
  const internal: string[] = [];
  for (const name of req.headers.keys()) {
    if (name.startsWith("x-ducktail-") || name.startsWith("x-dog-")) internal.push(name);
  }
  if (internal.length === 0) return req;
  const clean = new Request(req);
  for (const name of internal) clean.headers.delete(name);
  return clean;
}

export default {
  async fetch(req: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    if (req.method === "OPTIONS") return preflight();
    return withCors(req, await route(withoutInternalHeaders(req), env, ctx));
  },

  /**
   * Tail consumer: other Workers list DuckTail under `tail_consumers`; their invocations, logs
   * and exceptions become events (src/tail-logs.ts) of the tenant TAIL_TENANT (default: the open
   * tenant), buffered like any other ingest.
   */
  async tail(items: TraceItem[], env: Env): Promise<void> {
    const events = traceEvents(items);
    const tenant = env.TAIL_TENANT ?? OPEN_TENANT;
    const max = limitsFrom(env).maxBatchEvents;
    for (let i = 0; i < events.length; i += max) {
      const res = await toReplica(env, tenant, InternalRoute.events, {
        method: "POST",
        body: JSON.stringify(events.slice(i, i + max)),
      });
      if (!res.ok) console.error(`ducktail: tail events answered ${res.status}: ${await res.text()}`);
    }
  },

  /**
   * The cron (wrangler.toml [triggers]): merges each tenant's small Parquet files of closed hours
   * into one sorted, deduplicated object per hour, with an hourly rollup beside the lake.
   */
  async scheduled(_controller: ScheduledController, env: Env): Promise<void> {
    const run = await compactAll(storage(env), Date.now());
    const skipped = run.summaries.filter((s) => s.skipped);
    console.log(
      `ducktail: compacted ${run.summaries.length - skipped.length} hours, skipped ${skipped.length}, ${run.remaining.length} left for the next run`,
    );
  },
} satisfies ExportedHandler<Env>;
