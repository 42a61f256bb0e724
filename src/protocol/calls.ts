import { DuckTailError, ErrorCode } from "./errors";
import type { StoredEvent } from "./events";
import type { IngestResult } from "./frames";
import type { ErasureSubject } from "./lake";
import { Header, InternalRoute, type LoadReport } from "./routes";

/**
 * Typed calls between the Worker, a tenant's coordinator and its replicas. Each internal route is
 * asked in one place: its path, method and naming headers are set here, and its answer is decoded
 * as the route's own type. A failed answer throws the callee's error (code, message, details) as a
 * DuckTailError, so a caller never reads a status or casts JSON itself.
 */

/** What a Durable Object stub offers for these calls. */
export interface Stub {
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
}

/** What the Worker caches per tenant to route HTTP ingest without asking the coordinator. */
export interface RoutingTable {
  tenant: string;
  tier: number;
  shards: { n: number; id: string; name: string }[];
  ttlMs: number;
}

/** A shard as the coordinator's registry lists it (GET /shards has more fields). */
export interface ShardRef {
  n: number;
  id: string;
}

/** What replaying one dead letter did: the objects its sink wrote, or why not. */
export interface ReplayOutcome {
  key: string;
  sink: string | null;
  rows: number;
  files?: string[];
  error?: string;
}

/** What a replica answers to a flush: the objects written and the rows they hold. */
export interface FlushAnswer {
  files: string[];
  rows: number;
}

/** A shard as GET /shards and GET /stats list it. */
export interface ShardListing extends ShardRef {
  /** The shard's Durable Object name. */
  name: string;
  /** Routed to, draining, or only holding sockets placed before a scale-down. */
  state: "routed" | "draining" | "sockets-only";
  connections: number;
  /** "ok" (reported lately), "idle" or "draining". */
  health: string;
  lastReport: LoadReport | null;
}

/** A tenant's shards as GET /shards lists them. */
export interface TenantListing {
  tenant: string;
  tier: number;
  pinned: number | null;
  /** How many shards are routed to. */
  routed: number;
  rps: number;
  shards: ShardListing[];
}

/** A shard with its latest load report, as the coordinator's registry lists it (GET /shards). */
export interface ShardReport extends ShardRef {
  lastReport: LoadReport | null;
}

/**
 * One minute bucket of one view as a replica pushes it: `json` is the bucket's partials as the
 * replica persists them (SerializedPartials text, src/views/buckets.ts), carried as they are.
 */
export interface PushedBucket {
  view: string;
  bucketStart: number;
  json: string;
}

/**
 * A replica's changed minute buckets, pushed to its tenant's view aggregator (POST /_/views/push).
 * Each bucket is the replica's whole partial of that minute, replacing what it pushed before.
 * Every persisted change has a seq; a push carries every bucket changed after `from` up to `through`.
 */
export interface ViewPush {
  /** The replica's Durable Object id. */
  replica: string;
  /** Names the replica's view storage: its seqs count within one epoch. */
  epoch: string;
  /** The seq the aggregator acked last, as the replica knows it (0: everything it has). */
  from: number;
  /** The buckets changed up to this seq are in this push. */
  through: number;
  /** Changes after `through` are left for the next push (the size cap): the replica is catching up. */
  more: boolean;
  buckets: PushedBucket[];
}

/** The aggregator has everything up to `acked`, or lost what came before `from` and asks for all of it again. */
export type ViewPushAnswer = { acked: number } | { resync: true };

/** A replica whose latest view changes are not in an answer, and why. */
export interface MissingReplica {
  replica: string;
  reason: string;
}

/** A view merged over every replica of the tenant (GET /buffer/mv/<name>, the socket's `mv` frame). */
export interface ViewAnswer {
  view: string;
  /** The window, epoch ms [from, to), widened to whole minutes when merged. */
  from: number;
  to: number;
  /** The tenant's replicas, and those whose latest changes the answer may lack. */
  replicas: { asked: number; answered: number; missing: MissingReplica[] };
  rows: unknown[];
  /** With `?step=`: the step (ms), the window's total row and its buckets (src/views/series.ts). */
  step?: number;
  total?: unknown;
  buckets?: { start: number; total: unknown; rows: unknown[] }[];
}

/** What a drained replica answers: what it flushed and how many sockets it asked to move. */
export interface DrainAnswer {
  rows: number;
  files: string[];
  sockets: number;
}

/** The body of a failed answer, as `errorResponse` writes it. */
type ErrorBody = { error?: { code?: ErrorCode; message?: string } & Record<string, unknown> };

/** The callee's error as thrown there; a body that is not one becomes an internal error naming the status. */
function errorOf(body: ErrorBody | null, status: number, who: string): DuckTailError {
  const error = body?.error;
  if (!error?.code) return new DuckTailError(ErrorCode.internal, `${who} answered ${status}`);
  const { code, message, ...details } = error;
  return new DuckTailError(code, message ?? `${who} answered ${status}`, details);
}

async function answerError(res: Response, who: string): Promise<DuckTailError> {
  return errorOf((await res.json().catch(() => null)) as ErrorBody | null, res.status, who);
}

async function decode<T>(res: Response, who: string): Promise<T> {
  if (!res.ok) throw await answerError(res, who);
  return (await res.json()) as T;
}

/**
 * The internal routes of one replica, naming it (tenant, shard) on every call so it knows itself.
 * `shard` is null for a replica dog placed a socket on: the coordinator named it when it opened it.
 */
export class ReplicaCalls {
  readonly who: string;

  constructor(
    private readonly stub: Stub,
    private readonly tenant: string,
    private readonly shard: number | null,
  ) {
    this.who = shard === null ? "replica" : `shard ${shard}`;
  }

  /** The answer as it comes, for routes whose response the caller passes on or reads itself. */
  send(route: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    this.name(headers);
    return this.stub.fetch(`http://replica${route}`, { ...init, headers });
  }

  private name(headers: Headers): void {
    headers.set(Header.tenant, this.tenant);
    if (this.shard !== null) headers.set(Header.shard, String(this.shard));
  }

  /**
   * Stores a batch (a JSON body: one event, an array, or `{events, storageMode}`). The answer's
   * status is 200, or 400 when every event was rejected; any other refusal (buffer_full,
   * durable_pending with its pending range, ...) is thrown.
   */
  async events(
    body: string,
    options: { storageMode?: string | null; dedup?: boolean; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; answer: IngestResult }> {
    const query = new URLSearchParams();
    if (options.dedup) query.set("dedup", "1");
    if (options.storageMode) query.set("storageMode", options.storageMode);
    const search = query.toString();
    const route = `${InternalRoute.events}${search && `?${search}`}`;
    const res = await this.send(route, { method: "POST", body, headers: options.headers });
    const answer = (await res.json().catch(() => null)) as (IngestResult & ErrorBody) | null;
    if (answer === null || answer.error || res.status >= 500) throw errorOf(answer, res.status, this.who);
    return { status: res.status, answer };
  }

  /** Names the replica (the coordinator's first call to a new shard). */
  async init(): Promise<void> {
    await decode<unknown>(await this.send(InternalRoute.init), this.who);
  }

  /**
   * The socket upgrade, passed on with who the caller is (scope, request context, admin). Only
   * that goes: the Worker read what the replica needs of the client's request into `headers`, so
   * the request is not copied header by header for every socket.
   */
  socket(search: string, headers: Record<string, string>): Promise<Response> {
    const upstream = new Headers(headers);
    upstream.set("upgrade", "websocket");
    this.name(upstream);
    return this.stub.fetch(`http://replica${InternalRoute.ws}${search}`, { headers: upstream });
  }

  /** Buffered (not yet flushed) events matching a GET /events query, newest first. */
  async buffered(query: URLSearchParams): Promise<StoredEvent[]> {
    return decode(await this.send(`${InternalRoute.buffered}?${query}`), this.who);
  }

  async stats(): Promise<Record<string, unknown>> {
    return decode(await this.send(InternalRoute.stats), this.who);
  }

  /** Flushes everything buffered; throws the replica's `flush_failed` (with its `sinks`) when a sink failed. */
  async flush(): Promise<FlushAnswer> {
    return decode(await this.send(InternalRoute.flush, { method: "POST" }), this.who);
  }

  async drain(): Promise<DrainAnswer> {
    return decode(await this.send(InternalRoute.drain, { method: "POST" }), this.who);
  }

  async resume(): Promise<{ resumed: boolean }> {
    return decode(await this.send(InternalRoute.resume, { method: "POST" }), this.who);
  }

  async replay(keys: string[]): Promise<ReplayOutcome[]> {
    const init = { method: "POST", body: JSON.stringify({ keys }) };
    return decode(await this.send(InternalRoute.replay, init), this.who);
  }

  /**
   * The first step of DELETE /users/<id>: the replica counts the subject's buffered rows and
   * flushes everything it buffers (into the lake, where the rewrite finds them); throws the
   * replica's `flush_failed` when the flush did not complete.
   */
  async erase(subject: ErasureSubject): Promise<{ bufferedRows: number }> {
    const init = { method: "POST", body: JSON.stringify(subject) };
    return decode(await this.send(InternalRoute.erase, init), this.who);
  }

  /** Asks the replica to push its view changes to the aggregator now (answered before the push is done). */
  async pushViews(): Promise<void> {
    await decode<unknown>(await this.send(InternalRoute.viewPushNow, { method: "POST" }), this.who);
  }
}

/**
 * The routes of a tenant's view aggregator (an object of the replica class, `viewAggregatorName`):
 * replicas push their changed minute buckets to it, and views are asked of it.
 */
export class AggregatorCalls {
  constructor(
    private readonly stub: Stub,
    private readonly tenant: string,
  ) {}

  private send(route: string, init: RequestInit = {}): Promise<Response> {
    return this.stub.fetch(`http://views${route}`, { ...init, headers: { [Header.tenant]: this.tenant } });
  }

  async push(push: ViewPush): Promise<ViewPushAnswer> {
    return decode(
      await this.send(InternalRoute.viewPush, { method: "POST", body: JSON.stringify(push) }),
      "aggregator",
    );
  }

  /** A view merged over every replica (`?name=&window=&by=&limit=`), the answer as it comes (the Worker passes it on). */
  mv(query: URLSearchParams): Promise<Response> {
    return this.send(`${InternalRoute.mv}?${query}`);
  }

  async query(query: URLSearchParams): Promise<ViewAnswer> {
    return decode(await this.mv(query), "aggregator");
  }
}

/** The internal routes of a tenant's coordinator. */
export class CoordinatorCalls {
  constructor(
    private readonly stub: Stub,
    private readonly tenant: string,
  ) {}

  /** The answer as it comes, for routes the Worker passes on to the client (stats, flush, scale...). */
  send(route: string, method = "GET", body?: BodyInit): Promise<Response> {
    return this.stub.fetch(`http://coordinator${route}`, { method, headers: { [Header.tenant]: this.tenant }, body });
  }

  async routing(): Promise<RoutingTable> {
    return decode(await this.send(InternalRoute.routing), "coordinator");
  }

  /** The rate-limit binding says the tenant is over its budget: scale up now; the new routing table. */
  async pressure(): Promise<RoutingTable> {
    return decode(await this.send(InternalRoute.pressure, "POST"), "coordinator");
  }

  /** Every shard, routed or not. */
  async shards(): Promise<ShardRef[]> {
    return (await decode<{ shards: ShardRef[] }>(await this.send(InternalRoute.shards), "coordinator")).shards;
  }

  /** Every shard with its latest load report. */
  async shardReports(): Promise<ShardReport[]> {
    return (await decode<{ shards: ShardReport[] }>(await this.send(InternalRoute.shards), "coordinator")).shards;
  }

  async report(report: LoadReport): Promise<void> {
    const res = await this.send(InternalRoute.report, "POST", JSON.stringify(report));
    if (!res.ok) throw await answerError(res, "coordinator");
  }

  async connections(report: ConnectionReport): Promise<void> {
    const res = await this.send(InternalRoute.connections, "POST", JSON.stringify(report));
    if (!res.ok) throw await answerError(res, "coordinator");
  }
}

/**
 * A replica's sockets as it counts them, sent to its coordinator after sockets placed at the edge
 * came or any left: the count replaces the coordinator's (which identify and close only move by
 * one), and the clients are mapped to the shard as identify maps them.
 */
export interface ConnectionReport {
  /** The replica's Durable Object id. */
  replica: string;
  /** Sockets open on it now, admin sockets aside. */
  connections: number;
  /** Clients placed on it at the edge since its last report. */
  clients: string[];
  /** Clients whose socket on it closed since its last report (the coordinator forgets where they were). */
  gone?: string[];
}
