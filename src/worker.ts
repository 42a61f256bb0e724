import { identify } from "./dog";
import type { Env } from "./env";
import type { RoutingTable } from "./group/BufferCoordinator";
import {
  authorize,
  type KeyTable,
  OPEN_TENANT,
  type Principal,
  parseKeys,
  requestKey,
  type Scope,
} from "./protocol/auth";
import { DuckTailError, ErrorCode, errorResponse } from "./protocol/errors";
import { limitsFrom } from "./protocol/limits";
import { Header, InternalRoute } from "./protocol/routes";

export { BufferCoordinator } from "./group/BufferCoordinator";
export { BufferReplica } from "./replica/BufferReplica";

import { VERSION } from "./version";

// A 1x1 transparent GIF for GET /e from <img> tags.
const PIXEL = Uint8Array.from(atob("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"), (c) => c.charCodeAt(0));
const EVENT_FIELDS = new Set(["id", "timestamp", "source", "type", "importance", "userId", "anonymousId", "sessionId"]);
const CONTROL_PARAMS = new Set(["key", "storageMode", "data"]);

/** Per-isolate caches: parsed keys (by secret text) and routing tables (by tenant, short TTL). */
let keyCache: { secret: string | undefined; table: KeyTable | null } | null = null;
const routes = new Map<string, { table: RoutingTable; expires: number }>();
let roundRobin = 0;

function keysOf(env: Env): KeyTable | null {
  if (!keyCache || keyCache.secret !== env.DUCKTAIL_KEYS) {
    keyCache = { secret: env.DUCKTAIL_KEYS, table: parseKeys(env.DUCKTAIL_KEYS) };
  }
  return keyCache.table;
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
  const table = (await res.json()) as RoutingTable;
  routes.set(tenant, { table, expires: Date.now() + table.ttlMs });
  return table;
}

/** Sends an internal request to one of the tenant's shards, spread round-robin. */
async function toReplica(env: Env, tenant: string, route: string, init: RequestInit): Promise<Response> {
  const table = await routingTable(env, tenant);
  const shard = table.shards[roundRobin++ % table.shards.length];
  if (!shard) throw new DuckTailError(ErrorCode.internal, "tenant has no shards");
  const stub = env.REPLICA.get(env.REPLICA.idFromString(shard.id));
  const headers = new Headers(init.headers);
  headers.set(Header.tenant, tenant);
  headers.set(Header.shard, String(shard.n));
  return stub.fetch(`http://replica${route}`, { ...init, headers });
}

/** GET /e?type=…&source=…&data={…}&anything=else: one event from a query string (pixels, links). */
function eventFromQuery(url: URL): Record<string, unknown> {
  const event: Record<string, unknown> = {};
  let data: Record<string, unknown> = {};
  const raw = url.searchParams.get("data");
  if (raw) {
    try {
      data = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      throw new DuckTailError(ErrorCode.badJson, "data must be a JSON object");
    }
  }
  for (const [k, v] of url.searchParams) {
    if (EVENT_FIELDS.has(k)) event[k] = k === "timestamp" && /^\d+$/.test(v) ? Number(v) : v;
    else if (!CONTROL_PARAMS.has(k)) data[k] = v;
  }
  event.data = data;
  return event;
}

async function ingest(req: Request, env: Env, url: URL, principal: Principal): Promise<Response> {
  const limits = limitsFrom(env);
  const storageMode = url.searchParams.get("storageMode");
  const query = storageMode ? `?storageMode=${encodeURIComponent(storageMode)}` : "";
  if (req.method === "GET") {
    const res = await toReplica(env, principal.tenant, InternalRoute.events + query, {
      method: "POST",
      body: JSON.stringify(eventFromQuery(url)),
    });
    if (!res.ok || !(req.headers.get("accept") ?? "").includes("image/")) {
      return res.ok ? new Response(null, { status: 204 }) : res;
    }
    return new Response(PIXEL, { headers: { "content-type": "image/gif", "cache-control": "no-store" } });
  }
  const length = Number(req.headers.get("content-length") ?? 0);
  if (length > limits.maxFrameBytes) {
    throw new DuckTailError(ErrorCode.frameTooLarge, `body is larger than ${limits.maxFrameBytes} bytes`);
  }
  return toReplica(env, principal.tenant, InternalRoute.events + query, { method: "POST", body: req.body });
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
  return stub.fetch(upstream);
}

async function adminCall(env: Env, tenant: string, route: string, method: string): Promise<Response> {
  return coordinator(env, tenant).fetch(`http://coordinator${route}`, { method, headers: tenantHeaders(tenant) });
}

function need(env: Env, req: Request, url: URL, scope: Scope | null): Principal {
  const keys = keysOf(env);
  const key = requestKey(req, url);
  // A socket takes any valid key: the replica checks each frame against the key's scope.
  return authorize(keys, key, scope ?? "write", scope === null);
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url);
    try {
      switch (url.pathname) {
        case "/health": {
          const open = keysOf(env) === null;
          return Response.json({
            ok: true,
            service: "ducktail",
            version: VERSION,
            auth: open ? "open" : "keys",
            ...(open && {
              tenant: OPEN_TENANT,
              note: "no DUCKTAIL_KEYS configured: one open tenant, every caller is admin",
            }),
          });
        }
        case "/ws":
          return await socket(req, env, url, need(env, req, url, null));
        case "/e":
          if (req.method !== "POST" && req.method !== "GET") break;
          return await ingest(req, env, url, need(env, req, url, "write"));
        case "/flush":
          if (req.method !== "POST") break;
          return await adminCall(env, need(env, req, url, "admin").tenant, InternalRoute.flush, "POST");
        case "/buffer/stats":
          return await adminCall(env, need(env, req, url, "read").tenant, InternalRoute.stats, "GET");
        default:
          throw new DuckTailError(ErrorCode.notFound, `no route ${url.pathname}`);
      }
      throw new DuckTailError(ErrorCode.methodNotAllowed, `${req.method} is not allowed on ${url.pathname}`);
    } catch (err) {
      return errorResponse(err);
    }
  },
} satisfies ExportedHandler<Env>;
