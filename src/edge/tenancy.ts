import { contextHeader, ipPolicy, requestContext } from "../context";
import type { Env } from "../env";
import { hash32 } from "../hash";
import {
  authorize,
  type KeyTable,
  type LoadedKeys,
  type Principal,
  parseKeys,
  requestKey,
  type Scope,
} from "../protocol/auth";
import { AggregatorCalls, CoordinatorCalls, ReplicaCalls, type RoutingTable, type ShardRef } from "../protocol/calls";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import { Header, viewAggregatorName } from "../protocol/routes";
import { retryPolicyFrom } from "../replica/retry-policy";
import { timedBucket } from "../sinks/timeout";

/**
 * What every route of the Worker needs to reach a tenant: its keys, its coordinator, its routing
 * table (cached per isolate, so the coordinator is not on the path of every request), its shards.
 */

/** Per-isolate caches: parsed keys (by secret text) and routing tables (by tenant, short TTL). */
let keyCache: { secret: string | undefined; keys: LoadedKeys } | null = null;
const routes = new Map<string, { table: RoutingTable; expires: number }>();
let roundRobin = 0;
/** When this isolate last told a tenant's coordinator about rate-limit pressure (at most once a second). */
const pressureSent = new Map<string, number>();
const PRESSURE_EVERY_MS = 1_000;

/** The keys of `DUCKTAIL_KEYS`, loaded once per secret; entries that cannot be used are logged once. */
export function loadedKeys(env: Env): LoadedKeys {
  if (!keyCache || keyCache.secret !== env.DUCKTAIL_KEYS) {
    const keys = parseKeys(env.DUCKTAIL_KEYS);
    for (const error of keys.errors) console.error(`ducktail: ${error}`);
    keyCache = { secret: env.DUCKTAIL_KEYS, keys };
  }
  return keyCache.keys;
}

export function keysOf(env: Env): KeyTable | null {
  return loadedKeys(env).table;
}

export function coordinator(env: Env, tenant: string): CoordinatorCalls {
  return new CoordinatorCalls(env.COORDINATOR.get(env.COORDINATOR.idFromName(tenant)), tenant);
}

/** The internal routes of one of the tenant's shards. */
export function replica(env: Env, tenant: string, shard: ShardRef): ReplicaCalls {
  return new ReplicaCalls(env.REPLICA.get(env.REPLICA.idFromString(shard.id)), tenant, shard.n);
}

/** The tenant's view aggregator: materialized views merged over every replica. */
export function viewAggregator(env: Env, tenant: string): AggregatorCalls {
  return new AggregatorCalls(env.REPLICA.get(env.REPLICA.idFromName(viewAggregatorName(tenant))), tenant);
}

/** The tenant's routing table, from the per-isolate cache or (on miss/expiry) its coordinator. */
export async function routingTable(env: Env, tenant: string): Promise<RoutingTable> {
  const hit = routes.get(tenant);
  if (hit && hit.expires > Date.now()) return hit.table;
  return cacheRoutes(await coordinator(env, tenant).routing());
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
export async function checkPressure(env: Env, tenant: string, ctx: ExecutionContext): Promise<void> {
  if (!env.RATE_LIMITER) return;
  const { success } = await env.RATE_LIMITER.limit({ key: tenant });
  const now = Date.now();
  if (success || now - (pressureSent.get(tenant) ?? 0) < PRESSURE_EVERY_MS) return;
  pressureSent.set(tenant, now);
  ctx.waitUntil(
    coordinator(env, tenant)
      .pressure()
      .then(cacheRoutes)
      .catch((err) => console.error("ducktail: pressure signal failed", err)),
  );
}

/** The bucket with every call bounded by STORAGE_TIMEOUT_MS, as the replicas' sinks have it. */
export function storage(env: Env): R2Bucket {
  return timedBucket(env.EVENTS, retryPolicyFrom(env).storageTimeoutMs);
}

/** The internal header that gives a replica the context of the request (src/context.ts). */
export function contextHeaders(req: Request, env: Env): Record<string, string> {
  return { [Header.context]: contextHeader(requestContext(req, ipPolicy(env.IP_POLICY))) };
}

/** Where an ingest request goes: the shard, its calls, and the tier it belongs to (the answers' `_shards`). */
export interface Placed {
  replica: ReplicaCalls;
  shard: RoutingTable["shards"][number];
  tier: number;
}

/**
 * One of the tenant's routed shards for an ingest request, spread round-robin, or chosen by
 * `shardKey` (the same key always lands on the same shard of a tier).
 */
export function place(env: Env, tenant: string, shardKey?: string): Promise<Placed> {
  return placeAt(env, tenant, shardKey === undefined ? roundRobin++ : hash32(shardKey));
}

/** The routed shard number `pick` lands on (modulo the tier's shards). */
async function placeAt(env: Env, tenant: string, pick: number): Promise<Placed> {
  const table = await routingTable(env, tenant);
  const shard = table.shards[pick % table.shards.length];
  if (!shard) throw new DuckTailError(ErrorCode.internal, "tenant has no shards");
  return { replica: replica(env, tenant, shard), shard, tier: table.tier };
}

/** Shards that refused a socket placed at the edge (full or draining), by tenant/n, until when. */
const refusedUntil = new Map<string, number>();
/** How long this isolate sends sockets through identify instead of to a shard that refused one. */
const REFUSED_MS = 1_000;

let socketRoundRobin = 0;

/**
 * The shard a socket goes to without asking the coordinator: one of the routed shards of the
 * cached table, in turn, or by the hash of the `client` it names (a client that reconnects lands
 * where it was while the tier holds). Null when that shard refused a socket in the last second:
 * ask identify.
 */
export async function placeSocket(env: Env, tenant: string, client: string | null): Promise<Placed | null> {
  const placed = await placeAt(env, tenant, client === null ? socketRoundRobin++ : hash32(client));
  return (refusedUntil.get(`${tenant}/${placed.shard.n}`) ?? 0) > Date.now() ? null : placed;
}

/** A shard answered an edge-placed socket `Header.full`. */
export function socketRefused(tenant: string, n: number): void {
  refusedUntil.set(`${tenant}/${n}`, Date.now() + REFUSED_MS);
}

/** Every shard of the tenant, routed or not, from its coordinator's registry. */
export async function tenantShards(env: Env, tenant: string): Promise<ShardRef[]> {
  return coordinator(env, tenant).shards();
}

export function need(env: Env, req: Request, url: URL, scope: Scope | null): Principal {
  const keys = keysOf(env);
  const key = requestKey(req, url);
  // A socket takes any valid key: the replica checks each frame against the key's scope.
  return authorize(keys, key, scope ?? "write", scope === null);
}

/** Drops this isolate's cached routing table of a tenant (it scaled): the next request asks again. */
export function forgetRoutes(tenant: string): void {
  routes.delete(tenant);
}
