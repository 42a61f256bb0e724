import { Group } from "../dog";
import type { Env } from "../env";
import { DuckTailError, ErrorCode, errorResponse } from "../protocol/errors";
import { DogHeader, DogRoute, Header, InternalRoute } from "../protocol/routes";
import { Registry, type Shard } from "./registry";

/** What the Worker caches per tenant to route HTTP ingest without asking the coordinator. */
export interface RoutingTable {
  tenant: string;
  tier: number;
  shards: { n: number; id: string; name: string }[];
  ttlMs: number;
}

const DEFAULT_CONNECTION_LIMIT = 1000;
const DEFAULT_ROUTING_TTL_MS = 10_000;

/**
 * One per tenant (`COORDINATOR.idFromName(tenant)`): a dog Group that places sockets on
 * replica shards by connection limit and hands the Worker its routing table.
 *
 * dog's own identify/close bookkeeping lives in private memory; this class answers the same
 * routes with the same headers from a registry persisted in SQLite instead.
 */
export class BufferCoordinator extends Group {
  protected readonly ctx: DurableObjectState;
  protected readonly env: Env;
  /** dog: connections per replica before another shard opens. Var REPLICA_CONNECTION_LIMIT. */
  readonly limit: number;
  private readonly registry: Registry;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env as never);
    this.ctx = ctx;
    this.env = env;
    this.limit = Number(env.REPLICA_CONNECTION_LIMIT ?? DEFAULT_CONNECTION_LIMIT);
    this.registry = new Registry(ctx.storage.sql);
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
      if (pathname === DogRoute.close) return this.close(req);
      return await this.route(req, pathname);
    } catch (err) {
      return errorResponse(err);
    }
  }

  private async route(req: Request, pathname: string): Promise<Response> {
    switch (pathname) {
      case InternalRoute.routing:
        return Response.json(await this.routingTable());
      case InternalRoute.stats:
        return Response.json(await this.stats());
      case InternalRoute.flush:
        if (req.method !== "POST") throw new DuckTailError(ErrorCode.methodNotAllowed, "POST to flush");
        return Response.json(await this.flushAll());
      default:
        throw new DuckTailError(ErrorCode.notFound, `no route ${pathname}`);
    }
  }

  // ---- dog protocol -------------------------------------------------------------------------

  /** dog's `/~$~/identify`: the replica for this client, answered as its id in plain text. */
  private async identify(req: Request): Promise<Response> {
    const client = req.headers.get(DogHeader.client);
    if (!client) throw new DuckTailError(ErrorCode.badFrame, "Missing: Request ID");
    const shard =
      this.placement(client) ??
      // Opening a shard awaits other objects; block other requests so two cannot open the same n.
      (await this.ctx.blockConcurrencyWhile(
        async () => this.placement(client) ?? this.openShard(this.registry.shards().length),
      ));
    this.registry.setConnections(shard.n, shard.connections + 1);
    this.registry.mapClient(client, shard.n);
    return new Response(shard.id);
  }

  /** The client's previous shard if it has room, else the least-loaded shard with room. */
  private placement(client: string): Shard | undefined {
    const shards = this.registry.shards();
    const mapped = this.registry.clientShard(client);
    const sticky = shards.find((s) => s.n === mapped && s.connections < this.limit);
    if (sticky) return sticky;
    return shards
      .filter((s) => s.connections < this.limit)
      .sort((a, b) => a.connections - b.connections || a.n - b.n)[0];
  }

  /** dog's `/~$~/close`: a replica reports a socket gone. */
  private close(req: Request): Response {
    const replica = req.headers.get(DogHeader.replica);
    const client = req.headers.get(DogHeader.client);
    const shard = replica ? this.registry.shardById(replica) : null;
    if (!shard) throw new DuckTailError(ErrorCode.badFrame, "Unknown: Replica ID");
    this.registry.setConnections(shard.n, shard.connections - 1);
    if (client && req.headers.get(DogHeader.empty) === "1") this.registry.forgetClient(client);
    return new Response("OK");
  }

  // ---- shards -------------------------------------------------------------------------------

  /** Creates shard `n`, names it, and introduces it to every existing shard (both ways, as dog does). */
  private async openShard(n: number): Promise<Shard> {
    const id = this.clusterize(n).toString();
    const existing = this.registry.shards();
    await this.replica({ n, id }, InternalRoute.init);
    await Promise.all(existing.flatMap((s) => [this.introduce(id, s.id), this.introduce(s.id, id)]));
    return this.registry.addShard(n, id);
  }

  private introduce(stranger: string, target: string): Promise<Response> {
    const stub = this.env.REPLICA.get(this.env.REPLICA.idFromString(target));
    return stub.fetch(`http://dog${DogRoute.neighbor}`, {
      headers: { [DogHeader.replica]: target, [DogHeader.neighbor]: stranger, [DogHeader.group]: this.uid },
    });
  }

  /** Calls an internal route of one shard, naming it (tenant, shard) so it knows itself. */
  private replica(shard: Pick<Shard, "n" | "id">, route: string, method = "GET"): Promise<Response> {
    const stub = this.env.REPLICA.get(this.env.REPLICA.idFromString(shard.id));
    return stub.fetch(`http://replica${route}`, {
      method,
      headers: { [Header.tenant]: this.tenant(), [Header.shard]: String(shard.n) },
    });
  }

  /** The shards HTTP ingest is spread over: tier 1 is shard 0 (load tiers grow it; issue #4). */
  private async routingTable(): Promise<RoutingTable> {
    let shards = this.registry.shards();
    if (shards.length === 0) {
      shards = await this.ctx.blockConcurrencyWhile(async () => {
        const again = this.registry.shards();
        return again.length > 0 ? again : [await this.openShard(0)];
      });
    }
    const tier = Number(this.registry.meta("tier") ?? 1);
    const ttlMs = Number(this.env.ROUTING_TTL_MS ?? DEFAULT_ROUTING_TTL_MS);
    const tenant = this.tenant();
    const first = shards.slice(0, 1);
    return { tenant, tier, shards: first.map((s) => ({ n: s.n, id: s.id, name: `${tenant}-${s.n}` })), ttlMs };
  }

  private async stats(): Promise<Record<string, unknown>> {
    const shards = this.registry.shards();
    const replicas = await Promise.all(
      shards.map(async (s) => {
        const res = await this.replica(s, InternalRoute.stats);
        return {
          n: s.n,
          id: s.id,
          connections: s.connections,
          stats: res.ok ? await res.json() : { error: res.status },
        };
      }),
    );
    return {
      tenant: this.tenant(),
      tier: Number(this.registry.meta("tier") ?? 1),
      connectionLimit: this.limit,
      shards: replicas,
    };
  }

  /** Flushes every shard; answers the objects written, and which shards failed. */
  private async flushAll(): Promise<{ files: string[]; rows: number; failed: { shard: number; error: string }[] }> {
    const out = { files: [] as string[], rows: 0, failed: [] as { shard: number; error: string }[] };
    await Promise.all(
      this.registry.shards().map(async (s) => {
        const res = await this.replica(s, InternalRoute.flush, "POST");
        const body = (await res.json()) as { files?: string[]; rows?: number; error?: { message: string } };
        if (!res.ok) out.failed.push({ shard: s.n, error: body.error?.message ?? `status ${res.status}` });
        else {
          out.files.push(...(body.files ?? []));
          out.rows += body.rows ?? 0;
        }
      }),
    );
    out.files.sort();
    return out;
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
