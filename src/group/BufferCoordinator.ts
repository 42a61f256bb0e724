import { Group } from "../dog";
import type { Env } from "../env";
import { type ConnectionReport, ReplicaCalls, type RoutingTable, type TenantListing } from "../protocol/calls";
import { DuckTailError, ErrorCode, errorResponse } from "../protocol/errors";
import { DogHeader, DogRoute, Header, InternalRoute, type LoadReport, shardName } from "../protocol/routes";
import { connectionLimit } from "../replica/connections";
import { flushAnswerMs, retryPolicyFrom } from "../replica/retry-policy";
import { withTimeout } from "../sinks/timeout";
import { Registry, type Shard } from "./registry";
import { nextTier, shardsFor, TIER_COUNT, type TierDecision, type TierPolicy, tierPolicyFrom } from "./tiers";

export type { RoutingTable } from "../protocol/calls";

const DEFAULT_ROUTING_TTL_MS = 10_000;
const DEFAULT_REPORT_INTERVAL_MS = 10_000;

interface FailedShard {
  shard: number;
  error: string;
  /** A shard's `flush_failed` details: the sinks that failed or wait out their backoff. */
  sinks?: { sink: string; error: string }[];
}

/** Counters a replica reports in its stats that /buffer/stats/aggregate sums over shards. */
const AGGREGATED = [
  "requests",
  "received",
  "stored",
  "rejected",
  "dropped",
  "flushed",
  "files",
  "flushFailures",
  "bufferedRows",
  "bufferedBytes",
  "committedRows",
  "connections",
] as const;

/**
 * One per tenant (`COORDINATOR.idFromName(tenant)`): a dog Group that sizes the tenant's set of
 * replica shards by load tier, places sockets on them by connection limit, and hands the Worker
 * the routing table it caches. It is never on the path of an ingest request.
 *
 * - Tier (src/group/tiers.ts): replicas report their rates (`/_/report`); the sum picks the
 *   tier, up at once and down only after a quiet period. An alarm keeps re-deciding while the
 *   tier is above 1, so a tenant whose traffic stops still comes back down. An optional
 *   rate-limit binding in the Worker raises a tier early (`/_/pressure`).
 * - Scaling up opens (and introduces) the new shards before the routing table names them;
 *   scaling down drains the leaving ones: they flush and send their sockets back to identify.
 * - dog's own identify/close bookkeeping lives in private memory; this class answers the same
 *   routes with the same headers from a registry persisted in SQLite instead, with the tier.
 */
export class BufferCoordinator extends Group {
  protected readonly ctx: DurableObjectState;
  protected readonly env: Env;
  /** dog: connections per replica before another shard opens. Var REPLICA_CONNECTION_LIMIT. */
  readonly limit: number;
  private readonly registry: Registry;
  private readonly policy: TierPolicy;
  private readonly reportIntervalMs: number;
  /** Routing-table requests answered since this object started (to show the Worker's cache works). */
  private routingRequests = 0;
  /** dog identify requests answered since this object started (sockets the Worker could not place itself). */
  private identifyRequests = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env as never);
    this.ctx = ctx;
    this.env = env;
    this.limit = connectionLimit(env);
    this.registry = new Registry(ctx.storage.sql, () => ctx.storage.sync());
    this.policy = tierPolicyFrom(env);
    this.reportIntervalMs = Number(env.REPORT_INTERVAL_MS ?? DEFAULT_REPORT_INTERVAL_MS);
  }

  /** dog: which namespaces hold the replicas and the groups. */
  link(env: Env) {
    return { child: env.REPLICA, self: env.COORDINATOR };
  }

  /** dog: the id of shard `n` is derived from the tenant, so it is the same after any restart. */
  clusterize(n: number): DurableObjectId {
    return this.env.REPLICA.idFromName(`${this.tenant()}/${n}`);
  }

  override async fetch(input: RequestInfo, init?: RequestInit): Promise<Response> {
    const req = new Request(input, init);
    const { pathname } = new URL(req.url);
    try {
      this.adoptTenant(req);
      if (pathname === DogRoute.identify) return await this.identify(req);
      if (pathname === DogRoute.close) return await this.close(req);
      return await this.route(req, pathname);
    } catch (err) {
      return errorResponse(err);
    }
  }

  private async route(req: Request, pathname: string): Promise<Response> {
    switch (pathname) {
      case InternalRoute.routing:
        this.routingRequests++;
        return Response.json(await this.routingTable());
      case InternalRoute.stats:
        return Response.json(await this.stats());
      case InternalRoute.shards:
        return Response.json(this.shardList());
      case InternalRoute.aggregate:
        return Response.json(await this.aggregate());
      case InternalRoute.flush:
        this.requirePost(req, "flush");
        return Response.json(await this.flushAll());
      case InternalRoute.report: {
        this.requirePost(req, "report");
        this.registry.saveReport((await req.json()) as LoadReport);
        await this.decide(false);
        return new Response(null, { status: 204 });
      }
      case InternalRoute.connections: {
        this.requirePost(req, "connections");
        const report = (await req.json()) as ConnectionReport;
        const shard = this.registry.shardById(report.replica);
        if (!shard) throw new DuckTailError(ErrorCode.notFound, `no shard ${report.replica}`);
        this.registry.setConnections(shard.n, report.connections);
        for (const client of report.gone ?? []) {
          if (this.registry.clientShard(client) === shard.n) this.registry.forgetClient(client);
        }
        for (const client of report.clients) this.registry.mapClient(client, shard.n);
        await this.registry.committed();
        return new Response(null, { status: 204 });
      }
      case InternalRoute.pressure:
        this.requirePost(req, "pressure");
        await this.decide(true);
        return Response.json(await this.routingTable());
      case InternalRoute.scale: {
        this.requirePost(req, "scale");
        this.registry.setMeta("pinned", String(parseScale(await req.json().catch(() => null))));
        const decision = await this.decide(false);
        return Response.json({ ...decision, routing: await this.routingTable() });
      }
      default:
        throw new DuckTailError(ErrorCode.notFound, `no route ${pathname}`);
    }
  }

  /** Re-decides the tier on the coordinator's alarm (set while above tier 1 or pinned). */
  async alarm(): Promise<void> {
    await this.decide(false);
  }

  private requirePost(req: Request, what: string): void {
    if (req.method !== "POST") throw new DuckTailError(ErrorCode.methodNotAllowed, `POST to ${what}`);
  }

  // ---- dog protocol -------------------------------------------------------------------------

  /** dog's `/~$~/identify`: the replica for this client, answered as its id in plain text. */
  private async identify(req: Request): Promise<Response> {
    const client = req.headers.get(DogHeader.client);
    if (!client) throw new DuckTailError(ErrorCode.badFrame, "Missing: Request ID");
    this.identifyRequests++;
    // A shard that just refused this socket at the edge is full, whatever its last report said.
    const full = Number(req.headers.get(Header.full) ?? Number.NaN);
    const refused = Number.isInteger(full) ? this.registry.shards().find((s) => s.n === full) : undefined;
    if (refused && refused.connections < this.limit) this.registry.setConnections(refused.n, this.limit);
    let shard = this.placement(client);
    if (!shard || shard.draining) {
      // Opening or waking a shard awaits other objects; block other requests so two cannot open the same n.
      shard = await this.ctx.blockConcurrencyWhile(async () => {
        const again = this.placement(client);
        if (again && !again.draining) return again;
        if (again) {
          this.registry.setDraining(again.n, false);
          return again;
        }
        return this.openShard(nextFree(this.registry.shards()));
      });
    }
    this.registry.setConnections(shard.n, shard.connections + 1);
    if (req.headers.get(Header.anonymousClient) !== "1") this.registry.mapClient(client, shard.n);
    await this.registry.committed(); // with the other sockets placed meanwhile (a group commit)
    return new Response(shard.id);
  }

  /**
   * Where a socket goes: its previous shard if that is routed and has room, else the least-loaded
   * routed shard with room, else a shard outside the tier that has room (the connection limit
   * outranks the tier), preferring ones not draining. Undefined: open another.
   */
  private placement(client: string): Shard | undefined {
    const shards = this.registry.shards().filter((s) => s.connections < this.limit);
    const active = shardsFor(this.tier(), this.policy);
    const mapped = this.registry.clientShard(client);
    const rank = (s: Shard) => (s.n < active ? 0 : s.draining ? 2 : 1);
    const sticky = shards.find((s) => s.n === mapped && rank(s) === 0);
    if (sticky) return sticky;
    return shards.sort((a, b) => rank(a) - rank(b) || a.connections - b.connections || a.n - b.n)[0];
  }

  /** dog's `/~$~/close`: a replica reports a socket gone. */
  private async close(req: Request): Promise<Response> {
    const replica = req.headers.get(DogHeader.replica);
    const client = req.headers.get(DogHeader.client);
    const shard = replica ? this.registry.shardById(replica) : null;
    if (!shard) throw new DuckTailError(ErrorCode.badFrame, "Unknown: Replica ID");
    this.registry.setConnections(shard.n, shard.connections - 1);
    if (client && req.headers.get(DogHeader.empty) === "1") this.registry.forgetClient(client);
    await this.registry.committed();
    return new Response("OK");
  }

  // ---- shards -------------------------------------------------------------------------------

  /** Creates shard `n`, names it, and introduces it to every existing shard (both ways, as dog does). */
  private async openShard(n: number): Promise<Shard> {
    const id = this.clusterize(n).toString();
    const existing = this.registry.shards();
    await this.replica({ n, id }).init();
    await Promise.all(existing.flatMap((s) => [this.introduce(id, s.id), this.introduce(s.id, id)]));
    return this.registry.addShard(n, id);
  }

  private introduce(stranger: string, target: string): Promise<Response> {
    const stub = this.env.REPLICA.get(this.env.REPLICA.idFromString(target));
    return stub.fetch(`http://dog${DogRoute.neighbor}`, {
      headers: { [DogHeader.replica]: target, [DogHeader.neighbor]: stranger, [DogHeader.group]: this.uid },
    });
  }

  /** The internal routes of one shard. */
  private replica(shard: Pick<Shard, "n" | "id">): ReplicaCalls {
    return new ReplicaCalls(this.env.REPLICA.get(this.env.REPLICA.idFromString(shard.id)), this.tenant(), shard.n);
  }

  /** The shards HTTP ingest is spread over: the current tier's (opened on first use). */
  private async routingTable(): Promise<RoutingTable> {
    const count = shardsFor(this.tier(), this.policy);
    let shards = this.registry.shards().filter((s) => s.n < count);
    if (shards.length < count) {
      await this.applyTier(this.tier());
      shards = this.registry.shards().filter((s) => s.n < count);
    }
    const ttlMs = Number(this.env.ROUTING_TTL_MS ?? DEFAULT_ROUTING_TTL_MS);
    const tenant = this.tenant();
    return {
      tenant,
      tier: this.tier(),
      shards: shards.map((s) => ({ n: s.n, id: s.id, name: shardName(tenant, s.n) })),
      ttlMs,
    };
  }

  // ---- load tiers ---------------------------------------------------------------------------

  private tier(): number {
    return Number(this.registry.meta("tier") ?? 1);
  }

  private pinned(): number | null {
    const raw = this.registry.meta("pinned");
    return raw && raw !== "auto" ? Number(raw) : null;
  }

  /** The tenant's request rate: the sum of the shards' fresh reports (stale ones count as idle). */
  private rate(now: number): number {
    let rps = 0;
    for (const s of this.registry.shards()) {
      const r = s.report;
      if (r && now - r.at <= 2 * this.reportIntervalMs) rps += r.requests / r.seconds;
    }
    return rps;
  }

  /** Runs the tier policy on the current signals and applies its decision. */
  private async decide(pressure: boolean): Promise<TierDecision> {
    const now = Date.now();
    const quiet = this.registry.meta("quiet_since");
    const state = { tier: this.tier(), quietSince: quiet ? Number(quiet) : null };
    const decision = nextTier(state, { rps: this.rate(now), now, pressure, pinned: this.pinned() }, this.policy);
    this.registry.setMeta("quiet_since", decision.quietSince === null ? "" : String(decision.quietSince));
    if (decision.tier !== state.tier) await this.applyTier(decision.tier);
    // Above tier 1, keep deciding even if every replica goes quiet and stops reporting.
    if (decision.tier > 1 && decision.reason !== "pinned") await this.ctx.storage.setAlarm(now + this.reportIntervalMs);
    return decision;
  }

  /**
   * Moves to `tier`: opens (and introduces) any missing shard of the tier before the routing table
   * names it, then drains the routed shards beyond it. Their sockets reconnect through identify.
   */
  private async applyTier(tier: number): Promise<void> {
    const count = shardsFor(tier, this.policy);
    const moved = await this.ctx.blockConcurrencyWhile(async () => {
      const have = new Set(this.registry.shards().map((s) => s.n));
      for (let n = 0; n < count; n++) if (!have.has(n)) await this.openShard(n);
      const before = shardsFor(this.tier(), this.policy);
      this.registry.setMeta("tier", String(tier));
      const back = this.registry.shards().filter((s) => s.n < count && s.draining);
      for (const s of back) this.registry.setDraining(s.n, false);
      const out = this.registry.shards().filter((s) => s.n >= count && s.n < before && !s.draining);
      for (const s of out) this.registry.setDraining(s.n, true);
      return { out, back };
    });
    // A shard routed again takes the sockets the Worker places there again (it refused them while drained).
    for (const s of moved.back) {
      this.ctx.waitUntil(
        this.replica(s)
          .resume()
          .catch((err) => console.error(`ducktail: resuming shard ${s.n} failed`, err)),
      );
    }
    for (const s of moved.out) {
      this.ctx.waitUntil(
        this.replica(s)
          .drain()
          .catch((err) => console.error(`ducktail: drain of shard ${s.n} failed`, err)),
      );
    }
  }

  /** The registry as the Worker's GET /shards shows it (no calls to the shards). */
  private shardList(): TenantListing {
    const tier = this.tier();
    const active = shardsFor(tier, this.policy);
    const now = Date.now();
    return {
      tenant: this.tenant(),
      tier,
      pinned: this.pinned(),
      routed: active,
      rps: Math.round(this.rate(now) * 10) / 10,
      shards: this.registry.shards().map((s) => ({
        n: s.n,
        id: s.id,
        name: shardName(this.tenant(), s.n),
        state: s.n < active ? "routed" : s.draining ? "draining" : "sockets-only",
        connections: s.connections,
        health: health(s, now, this.reportIntervalMs),
        lastReport: s.report,
      })),
    };
  }

  /** The registry plus each shard's own stats (GET /buffer/stats). */
  private async stats(): Promise<Record<string, unknown>> {
    const list = this.shardList();
    const replicas = await this.allStats();
    return {
      ...list,
      connectionLimit: this.limit,
      routingRequests: this.routingRequests,
      identifyRequests: this.identifyRequests,
      shards: list.shards.map((s) => ({ ...s, stats: replicas.get(s.n) ?? null })),
    };
  }

  /** Counters summed over every shard (GET /buffer/stats/aggregate); shards that fail are named. */
  private async aggregate(): Promise<Record<string, unknown>> {
    const replicas = await this.allStats();
    const totals: Record<string, number> = Object.fromEntries(AGGREGATED.map((k) => [k, 0]));
    const missing: number[] = [];
    for (const [n, stats] of replicas) {
      if ("error" in stats) missing.push(n);
      else for (const k of AGGREGATED) totals[k] = (totals[k] ?? 0) + Number(stats[k] ?? 0);
    }
    return { tenant: this.tenant(), tier: this.tier(), shards: replicas.size, missing, ...totals };
  }

  /** Every shard's stats; a shard that fails maps to `{error}`. */
  private async allStats(): Promise<Map<number, Record<string, unknown>>> {
    const out = new Map<number, Record<string, unknown>>();
    await Promise.all(
      this.registry.shards().map(async (s) => {
        try {
          out.set(s.n, await this.replica(s).stats());
        } catch (err) {
          out.set(s.n, { error: (err as Error).message });
        }
      }),
    );
    return out;
  }

  /**
   * Flushes every shard; answers the objects written. Throws `flush_failed` (502) naming each shard
   * that failed or did not answer in time, and its sinks, with the objects the others wrote.
   */
  private async flushAll(): Promise<{ files: string[]; rows: number; failed: [] }> {
    const shards = this.registry.shards();
    const out = { files: [] as string[], rows: 0, failed: [] as FailedShard[] };
    // A shard answers within its own deadline; this one covers a shard that cannot answer at all.
    const ms = flushAnswerMs(retryPolicyFrom(this.env)) + 5_000;
    await Promise.all(
      shards.map(async (s) => {
        try {
          const body = await withTimeout(this.replica(s).flush(), ms, `shard ${s.n} flush`);
          out.files.push(...body.files);
          out.rows += body.rows;
        } catch (err) {
          const sinks = err instanceof DuckTailError ? (err.details?.sinks as FailedShard["sinks"]) : undefined;
          out.failed.push({ shard: s.n, error: (err as Error).message, ...(sinks && { sinks }) });
        }
      }),
    );
    out.files.sort();
    if (out.failed.length === 0) return { files: out.files, rows: out.rows, failed: [] };
    out.failed.sort((a, b) => a.shard - b.shard);
    const which = out.failed.map((f) => `shard ${f.shard}: ${f.error}`).join("; ");
    throw new DuckTailError(
      ErrorCode.flushFailed,
      `${out.failed.length} of ${shards.length} shards did not flush, their events are kept for retry: ${which}`,
      out,
    );
  }

  // ---- tenant -------------------------------------------------------------------------------

  private tenantName: string | null = null;

  private adoptTenant(req: Request): void {
    const named = req.headers.get(Header.tenant);
    const known = this.tenantName ?? this.registry.meta("tenant");
    if (known && named && named !== known) throw new DuckTailError(ErrorCode.forbidden, "tenant mismatch");
    if (!known && named) this.registry.setMeta("tenant", named);
    this.tenantName = known ?? named;
  }

  private tenant(): string {
    if (!this.tenantName) throw new DuckTailError(ErrorCode.internal, "coordinator has no tenant yet");
    return this.tenantName;
  }
}

/** The first shard number not in use. */
function nextFree(shards: Shard[]): number {
  const used = new Set(shards.map((s) => s.n));
  let n = 0;
  while (used.has(n)) n++;
  return n;
}

/** `{tier: 1..7}` pins the tier; `{tier: "auto"}` releases it. */
function parseScale(body: unknown): number | "auto" {
  const tier = (body as { tier?: unknown } | null)?.tier;
  if (tier === "auto") return "auto";
  if (typeof tier === "number" && Number.isInteger(tier) && tier >= 1 && tier <= TIER_COUNT) return tier;
  throw new DuckTailError(ErrorCode.badRequest, `tier must be an integer 1..${TIER_COUNT} or "auto"`);
}

/** "ok" (reported lately), "idle" (no recent report: no traffic, or unreachable), "draining". */
function health(s: Shard, now: number, intervalMs: number): string {
  if (s.draining) return "draining";
  return s.report && now - s.report.at <= 2 * intervalMs ? "ok" : "idle";
}
