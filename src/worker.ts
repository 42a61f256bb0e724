import { duckScript, preflight, snippet, withCors } from "./browser";
import { contextHeader, ipPolicy, requestContext } from "./context";
import { identify } from "./dog";
import { dashboard, isDashboardPath } from "./edge/dashboard";
import { listDeadLetters, replay, replayTargets } from "./edge/dead-letters";
import { ingestBody, ingestQuery, pixel, pixelRefusalCounts, segment } from "./edge/ingest";
import { compactNow, LAKE_ROUTES, lakeCron, lakeEvents, lakeRoute } from "./edge/lake";
import { isRecordingRoute, recordingCron, recordingRoute } from "./edge/recording";
import {
  checkPressure,
  coordinator,
  forgetRoutes,
  keysOf,
  loadedKeys,
  need,
  place,
  placeSocket,
  replica,
  routingTable,
  socketRefused,
  tenantShards,
  viewAggregator,
} from "./edge/tenancy";
import { isUserRoute, userRoute } from "./edge/users";
import type { Env } from "./env";
import { parseEventQuery } from "./lake/query";
import { allows, authorize, OPEN_TENANT, type Principal, requestKey } from "./protocol/auth";
import { ReplicaCalls } from "./protocol/calls";
import { DuckTailError, ErrorCode, errorResponse } from "./protocol/errors";
import { limitsFrom } from "./protocol/limits";
import { DogHeader, Header, InternalRoute } from "./protocol/routes";
import { traceEvents } from "./tail-logs";

export { BufferCoordinator } from "./group/BufferCoordinator";
export { LakeCatalog } from "./lake/catalog/LakeCatalog";
export { SessionRecording } from "./recording/SessionRecording";
export { BufferReplica } from "./replica/BufferReplica";

import { VERSION } from "./protocol/version";

/**
 * GET /ws. The Worker places the socket itself, on one of the routed shards of its cached routing
 * table, and the replica takes it if it has room (the coordinator learns of it from the replica's
 * next connection report). A shard at its connection limit or draining refuses, and the socket
 * goes through dog's identify, which the coordinator answers with a shard that has room (opening
 * one if none has). So the coordinator is asked once per overflow, not once per socket.
 */
async function socket(req: Request, env: Env, url: URL, principal: Principal): Promise<Response> {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new DuckTailError(ErrorCode.badFrame, "expected a WebSocket upgrade (Upgrade: websocket)");
  }
  const tenant = principal.tenant;
  const ns = env.COORDINATOR;
  const group = ns.idFromName(tenant);
  const named = url.searchParams.get("client");
  const client = named ?? crypto.randomUUID();
  // The context is stamped on the events a socket sends: a read key's socket sends none.
  const headers: Record<string, string> = allows(principal.scope, "write")
    ? { [Header.scope]: principal.scope, [Header.context]: contextHeader(requestContext(req, ipPolicy(env.IP_POLICY))) }
    : { [Header.scope]: principal.scope };
  const placed = await placeSocket(env, tenant, named);
  let refused: number | null = null;
  if (placed) {
    const res = await placed.replica.socket(url.search, {
      ...headers,
      ...(named === null && { [Header.anonymousClient]: "1" }),
      [DogHeader.client]: client,
      [DogHeader.group]: group.toString(),
      [Header.edgePlaced]: "1",
    });
    if (res.headers.get(Header.full) === null) return res;
    refused = placed.shard.n;
    socketRefused(tenant, refused);
  }
  // dog's identify names no tenant; wrap the group stub so the coordinator learns it (and which shard refused).
  const parent = {
    get: (id: DurableObjectId) => {
      const stub = ns.get(id);
      return {
        fetch: (input: Request) => {
          input.headers.set(Header.tenant, tenant);
          if (refused !== null) input.headers.set(Header.full, String(refused));
          if (named === null) input.headers.set(Header.anonymousClient, "1");
          return stub.fetch(input);
        },
      } as unknown as DurableObjectStub;
    },
  };
  const stub = await identify(group, client, { parent, child: env.REPLICA });
  return new ReplicaCalls(stub, tenant, null).socket(url.search, headers);
}

/** GET /events: the tenant's Parquet objects in the range plus what its replicas still buffer. */
async function events(env: Env, url: URL, principal: Principal): Promise<Response> {
  const q = parseEventQuery(url);
  const shards = await tenantShards(env, principal.tenant);
  const query = new URLSearchParams(url.searchParams);
  query.delete("key");
  const buffered = await Promise.all(shards.map((s) => replica(env, principal.tenant, s).buffered(query)));
  return lakeEvents(env, principal.tenant, q, buffered.flat());
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
    return replica(env, tenant, shard).replay(group);
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
  return replica(env, principal.tenant, shard).socket(url.search, {
    [Header.scope]: principal.scope,
    [Header.admin]: "1",
  });
}

/**
 * GET /health: liveness, and whether keys are configured. With a key (any scope), or on an open
 * Worker, also the key's tenant and scope, and the tenant's tier and shard count from its routing
 * table (cached per isolate).
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
    pixels: { refused: pixelRefusalCounts() },
  };
  const key = requestKey(req, url);
  if (open || key) {
    try {
      const { tenant, scope } = authorize(keysOf(env), key, "write", true);
      const table = await routingTable(env, tenant);
      Object.assign(body, { tenant, scope, tier: table.tier, shards: table.shards.length });
    } catch (err) {
      body.keyError = err instanceof DuckTailError ? err.message : "the tenant's routing table is unavailable";
    }
  }
  return Response.json(body);
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
        return await coordinator(env, need(env, req, url, "admin").tenant).send(InternalRoute.flush, "POST");
      case "/stats":
      case "/buffer/stats":
        return await coordinator(env, need(env, req, url, "read").tenant).send(InternalRoute.stats);
      case "/buffer/stats/aggregate":
        return await coordinator(env, need(env, req, url, "read").tenant).send(InternalRoute.aggregate);
      case "/shards":
        return await coordinator(env, need(env, req, url, "read").tenant).send(InternalRoute.shards);
      case "/buffer/scale": {
        if (req.method !== "POST") break;
        const tenant = need(env, req, url, "admin").tenant;
        const res = await coordinator(env, tenant).send(InternalRoute.scale, "POST", await req.text());
        if (res.ok) forgetRoutes(tenant); // this isolate routes by the new tier at once
        return res;
      }
      case "/compact": {
        // Admin: compact the tenant's closed hours now instead of waiting for the cron.
        if (req.method !== "POST") break;
        const tenant = need(env, req, url, "admin").tenant;
        return Response.json({ hours: await compactNow(env, tenant) });
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
        if (isDashboardPath(url.pathname)) return await dashboard(req, env, url, env.BASE_PATH);
        if (LAKE_ROUTES.includes(url.pathname)) return await lakeRoute(req, env, url);
        if (isUserRoute(url.pathname)) return await userRoute(req, env, url);
        if (isRecordingRoute(url.pathname)) return await recordingRoute(req, env, url);
        // GET /buffer/mv/<view>?window=&by=&limit= : asked of the tenant's view aggregator, merged over every replica.
        const mv = /^\/buffer\/mv\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
        if (!mv) throw new DuckTailError(ErrorCode.notFound, `no route ${url.pathname}`);
        if (req.method !== "GET") break;
        const query = new URLSearchParams(url.searchParams);
        query.delete("key");
        query.set("name", mv[1] as string);
        return await viewAggregator(env, need(env, req, url, "read").tenant).mv(query);
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
      try {
        const { status, answer } = await (await place(env, tenant)).replica.events(
          JSON.stringify(events.slice(i, i + max)),
        );
        if (status !== 200) console.error("ducktail: tail events rejected", answer.rejected);
      } catch (err) {
        console.error("ducktail: tail events failed", err);
      }
    }
  },

  /**
   * The cron (wrangler.toml [triggers]): merges each tenant's small Parquet files of closed hours
   * into one sorted, deduplicated object per hour, with its hourly rollup (a table of the lake), rolls
   * up closed days and months, applies retention, then cleans each lake (expired snapshots, the
   * files only they listed, orphans).
   */
  async scheduled(_controller: ScheduledController, env: Env): Promise<void> {
    await lakeCron(env);
    await recordingCron(env);
  },
} satisfies ExportedHandler<Env>;
