import "../columns/wasm";
import type { Env } from "../env";
import { decodeGossip, encodeGossip, type GossipMessage, type GossipReply } from "../gossip/messages";
import { flushCommits } from "../lake/catalog/client";
import { matchesQuery, newestFirst, parseEventQuery } from "../lake/query";
import type { Scope } from "../protocol/auth";
import { AggregatorCalls, CoordinatorCalls, type DrainAnswer, ReplicaCalls } from "../protocol/calls";
import { DuckTailError, ErrorCode, errorResponse } from "../protocol/errors";
import type { NormalizedEvent, TransformEvent } from "../protocol/events";
import { type IngestResult, parseStorageMode, type StorageMode } from "../protocol/frames";
import { isSubject } from "../protocol/lake";
import { type FlushPolicy, flushPolicyFrom, type Limits, limitsFrom } from "../protocol/limits";
import { DogHeader, Header, shardName, viewAggregatorName } from "../protocol/routes";
import { recordChunk } from "../recording/client";
import { R2ParquetSink } from "../sinks/r2-parquet";
import type { Sink } from "../sinks/sink";
import { type AnyView, BUILTIN_VIEWS } from "../views/views";
import { EventBuffer } from "./buffer";
import { ConnectionCount, connectionLimit } from "./connections";
import { replayDeadLetters } from "./dead-letters";
import { Flusher, type FlushReport, type FlushResult } from "./flusher";
import { GroupCommit } from "./group-commit";
import { HibernatingReplica } from "./hibernating";
import { DEFAULT_DEDUP_WINDOW_MS, Ingest } from "./ingest";
import { answerInternal, type RouteHost } from "./internal-routes";
import { LiveTail, tailBufferLimit } from "./live-tail";
import { LiveViews } from "./live-views";
import { LoadReporter } from "./load-report";
import { retryPolicyFrom } from "./retry-policy";
import { SocketFrames } from "./socket-frames";
import { type SocketState, socketState } from "./sockets";
import { type ReplicaIdentity, ReplicaStore } from "./store";
import { ViewAggregator } from "./view-aggregator";

const DEFAULT_SINK_MAX_ATTEMPTS = 8;

/**
 * A buffer shard of one tenant: a dog Replica (over hibernating sockets, see HibernatingReplica)
 * that takes events over WebSockets and HTTP, holds them with the durability each batch asked
 * for, and flushes them to sinks.
 *
 * Subclasses override the hooks (`sinks`), never `fetch` or the socket handlers.
 */
export class BufferReplica extends HibernatingReplica<Env> {
  protected readonly limits: Limits;
  protected readonly policy: FlushPolicy;
  private readonly store: ReplicaStore;
  private readonly buffer = new EventBuffer(() => this.identity());
  private readonly flusher: Flusher;
  private readonly commits: GroupCommit;
  private readonly tail: LiveTail;
  private viewsCache: LiveViews | null = null;
  /** Set only in the tenant's view aggregator (an object of this class that is never a shard). */
  private aggregatorCache: ViewAggregator | null = null;
  private readonly pipeline: Ingest;
  private readonly frames: SocketFrames;
  private readonly load: LoadReporter;
  private readonly connections: ConnectionCount;
  /** Set once the coordinator drained this shard out of the routing table (until it is routed again); stored. */
  private draining: boolean;
  private alarmAt: number | null = null;
  private sinkList: Sink[] | null = null;
  private cachedIdentity: ReplicaIdentity | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.limits = limitsFrom(env);
    this.policy = flushPolicyFrom(env);
    this.store = new ReplicaStore(ctx.storage.sql);
    this.draining = this.store.meta("draining") === "1";
    this.commits = new GroupCommit(0);
    // Committed (confirmed/durable) events survive a restart: back into the buffer.
    for (const blob of this.store.committedBatches()) this.buffer.appendEncoded(blob);
    this.flusher = new Flusher(
      this.store,
      this.buffer,
      () => this.sinkSet(),
      () => this.identity(),
      {
        retryBaseMs: this.policy.flushRetryBaseMs,
        ...retryPolicyFrom(env),
        maxAttempts: Number(env.SINK_MAX_ATTEMPTS ?? DEFAULT_SINK_MAX_ATTEMPTS),
        bucket: env.EVENTS,
        scheduleRetry: (at) => this.scheduleAlarm(at),
        onflush: (report) => {
          try {
            this.onflush(report);
          } catch (err) {
            console.error("ducktail: onflush hook failed", err);
          }
        },
      },
    );
    this.tail = new LiveTail({
      uid: this.uid,
      store: this.store,
      sockets: () => this.ctx.getWebSockets(),
      gossipAll: (msg) => this.gossipAll(msg),
      gossipTo: (replica, msg) => this.gossipTo(replica, msg),
      waitUntil: (p) => this.ctx.waitUntil(p),
      sync: () => this.ctx.storage.sync(),
      maxBufferedBytes: tailBufferLimit(env),
    });
    this.pipeline = new Ingest(
      {
        limits: this.limits,
        policy: this.policy,
        store: this.store,
        buffer: this.buffer,
        commits: this.commits,
        flusher: this.flusher,
        tail: this.tail,
        identity: () => this.identity(),
        liveViews: () => this.liveViews(),
        transforms: () => this.transform !== BufferReplica.prototype.transform,
        transform: (event) => this.transform(event),
        alarmBy: (at) => this.alarmBy(at),
        flushInBackground: () => this.flushInBackground(),
        counted: (events, now) => this.load.count(events, now),
      },
      Number(env.SEGMENT_DEDUP_WINDOW_MS ?? DEFAULT_DEDUP_WINDOW_MS),
    );
    /** The tenant's coordinator, which load and connection reports go to. */
    const coordinatorOf = (tenant: string) => env.COORDINATOR.get(env.COORDINATOR.idFromName(tenant));
    this.load = new LoadReporter(
      {
        identity: () => this.cachedIdentity,
        coordinator: coordinatorOf,
        buffered: () => ({ rows: this.buffer.rows, bytes: this.buffer.bytes }),
        connections: () => this.ctx.getWebSockets().length,
        viewSeq: () => (this.viewsCache && this.viewsCache.size > 0 ? this.viewsCache.seq : undefined),
        waitUntil: (p) => this.ctx.waitUntil(p),
      },
      env,
    );
    this.connections = new ConnectionCount(
      {
        uid: this.uid,
        sockets: () => this.ctx.getWebSockets(),
        uncounted: (ws) => socketState(ws)?.admin === true,
        client: (ws) => socketState(ws)?.client ?? null,
        send: async (report) => {
          const id = this.cachedIdentity ?? this.store.identity();
          if (!id) return; // never named by a coordinator: it places nothing here
          await new CoordinatorCalls(coordinatorOf(id.tenant), id.tenant).connections(report);
        },
      },
      connectionLimit(env),
    );
    this.frames = new SocketFrames({
      limits: this.limits,
      pipeline: this.pipeline,
      tail: this.tail,
      liveViews: () => this.liveViews(),
      stats: () => this.stats(),
      flush: () => this.flush(),
      sockets: () => this.ctx.getWebSockets(),
      record: (chunk) => recordChunk(env, this.identity().tenant, chunk),
    });
  }

  /** dog: which namespaces hold the group and the replicas. */
  link(env: Env) {
    return { parent: env.COORDINATOR, self: env.REPLICA };
  }

  // ---- hooks ------------------------------------------------------------------------------

  /**
   * Where flushed batches go. Default: ZSTD Parquet in the EVENTS bucket, each flush committed to
   * the tenant's lake catalog (CATALOG). Override for custom sinks.
   */
  sinks(env: Env): Sink[] {
    return [new R2ParquetSink(env.EVENTS, "events", flushCommits(env.CATALOG))];
  }

  /**
   * Enriches, redacts or drops each accepted event before it is buffered (and before live tail
   * and views see it). `data` is the parsed object; return the event (changed or not), or null
   * to drop it (counted in stats as `filtered`, not rejected). Runs on the ingest path: keep it cheap.
   */
  transform(event: TransformEvent): TransformEvent | null {
    return event;
  }

  /** Called after every flush that all sinks have (delivered or dead-lettered). Errors are logged. */
  onflush(_report: FlushReport): void {}

  /**
   * Materialized views this replica keeps (GET /buffer/mv/<name>). Default: the built-ins named
   * by the VIEWS var (all of pageviews, errors, latency when unset; "none" for none — the three
   * cost up to ~6 % of a replica's ingest rate). Add your own by returning
   * `[...super.views(), myView]`; see README. Called once, on first use, so it may read `this.env`.
   */
  views(): AnyView[] {
    const names = this.env.VIEWS;
    if (names === undefined || names === "") return [...BUILTIN_VIEWS];
    const wanted = new Set(names.split(",").map((n) => n.trim()));
    return BUILTIN_VIEWS.filter((v) => wanted.has(v.name));
  }

  /** dog: answers another replica's gossip (see src/gossip). */
  async ongossip(envelope: unknown): Promise<unknown> {
    const msg = decodeGossip<GossipMessage>(envelope);
    const from = this.cachedIdentity?.name ?? this.uid;
    if (msg?.type === "ping") return encodeGossip({ type: "pong", from, receivedAt: Date.now() });
    const reply = msg ? this.tail.ongossip(msg) : null;
    return encodeGossip(reply ?? { type: "unknown", from });
  }

  /** Sends a message to one replica of the tenant through dog's gossip route (its `ongossip` answers). */
  async gossipTo(replica: string, msg: GossipMessage): Promise<GossipReply | null> {
    const reply = await this.gossipOne(replica, encodeGossip(msg));
    return reply === undefined ? null : decodeGossip<GossipReply>(reply);
  }

  /** Sends a message to every neighbor replica through dog and decodes their replies. */
  async gossipAll(msg: GossipMessage): Promise<GossipReply[]> {
    const replies = await this.gossip(encodeGossip(msg) as unknown as Record<string, unknown>);
    return replies.map((r) => decodeGossip<GossipReply>(r)).filter((r): r is GossipReply => r !== null);
  }

  // ---- entry points -----------------------------------------------------------------------

  /** The group introduced a neighbor: the newcomer learns the subscriptions held here. */
  protected override onneighbor(): void {
    this.tail.announce();
  }

  protected override async onsocketclose(ws: WebSocket): Promise<void> {
    await this.tail.closed(ws).catch((err) => console.error("ducktail: unsubscribe on close failed", err));
  }

  /** The coordinator learns of closed sockets from the connection reports (one per burst, not one per socket). */
  protected override reportClose(ws: WebSocket): Promise<void> {
    return this.connections.closed(ws);
  }

  /** Every request but dog's own (see HibernatingReplica). */
  protected override async onrequest(req: Request, url: URL): Promise<Response> {
    try {
      this.adoptIdentity(req);
      return await answerInternal(this.routeHost(), req, url);
    } catch (err) {
      return errorResponse(err);
    }
  }

  webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void | Promise<void> {
    return this.frames.message(ws, message);
  }

  async alarm(): Promise<void> {
    this.alarmAt = null;
    if (this.load.pending) this.ctx.waitUntil(this.load.report());
    // Old rows flush, failing sinks retry, each when due: a sink in backoff waits whatever is buffered.
    const soonest = this.policy.highFlushIntervalMs;
    await this.flusher.onAlarm(this.dueAt(), soonest);
    // View changes saved but not acked by the aggregator (an eviction or a crash came first) go now.
    const viewsAt = await this.liveViews().onalarm();
    const flushAt = this.flusher.nextRunAt(this.dueAt(), soonest);
    const next = flushAt === null ? viewsAt : viewsAt === null ? flushAt : Math.min(flushAt, viewsAt);
    // Never for a time already past: the alarm would run again at once, in a loop.
    if (next !== null) await this.scheduleAlarm(Math.max(next, Date.now() + this.policy.flushRetryBaseMs), true);
  }

  // ---- routes -----------------------------------------------------------------------------

  /** What the internal routes (./internal-routes) call here. */
  private routeHost(): RouteHost {
    return {
      limits: this.limits,
      identity: () => this.identity(),
      accept: (req, url) => this.accept(req, url),
      ingest: (raw, mode, dedup, context) => this.ingest(raw, mode, dedup, context),
      flush: () => this.flush(),
      stats: () => this.stats(),
      aggregator: () => this.viewAggregator(),
      pushViews: () => this.liveViews().pushNow(),
      buffered: (url) => {
        const q = parseEventQuery(url);
        const rows = this.buffer.through(Number.POSITIVE_INFINITY).events();
        return rows
          .filter((e) => matchesQuery(e, q))
          .sort(newestFirst)
          .slice(0, q.limit);
      },
      drain: () => this.drain(),
      resume: () => this.resume(),
      erase: async (subject) => {
        // Their rows leave the buffer the one way rows leave it, by a flush: then the lake's
        // rewrite removes them with the rest. Cutting them out here would also mean rewriting
        // the SQLite copies of confirmed batches and racing a flush already under way.
        const bufferedRows = this.buffer
          .through(Number.POSITIVE_INFINITY)
          .events()
          .filter((e) => isSubject(subject, e)).length;
        await this.flush();
        return { bufferedRows };
      },
      replay: (keys) => {
        const timeoutMs = retryPolicyFrom(this.env).storageTimeoutMs;
        return replayDeadLetters(this.env.EVENTS, this.sinkSet(), this.identity(), keys, timeoutMs);
      },
    };
  }

  /** The sinks of the `sinks()` hook, built once. */
  private sinkSet(): Sink[] {
    this.sinkList ??= this.sinks(this.env);
    return this.sinkList;
  }

  private async accept(req: Request, url: URL): Promise<Response> {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      throw new DuckTailError(ErrorCode.badFrame, "expected a WebSocket upgrade");
    }
    const admin = req.headers.get(Header.admin) === "1";
    const client = admin ? `admin-${crypto.randomUUID()}` : req.headers.get(DogHeader.client);
    const group = admin ? "" : req.headers.get(DogHeader.group);
    if (!client || group === null) throw new DuckTailError(ErrorCode.badFrame, "missing dog client or group header");
    // Placed by the Worker from its routing table, not by identify: taken only if there is room.
    const edgePlaced = !admin && req.headers.get(Header.edgePlaced) === "1";
    if (edgePlaced && (this.draining || !this.connections.hasRoom())) {
      return new Response(null, { status: 409, headers: { [Header.full]: "1" } });
    }
    const scope = (req.headers.get(Header.scope) ?? "write") as Scope;
    const context = req.headers.get(Header.context);
    const storageMode = parseStorageMode(url.searchParams.get("storageMode") ?? undefined);
    let counted: Promise<void> = Promise.resolve();
    const res = this.acceptSocket<SocketState>(
      {
        client,
        group,
        scope,
        storageMode,
        connectedAt: Date.now(),
        ...(admin && { admin }),
        ...(context !== null && { context }),
      },
      (ws) => {
        const mapped = edgePlaced && req.headers.get(Header.anonymousClient) !== "1";
        counted = this.connections.opened(ws, mapped ? client : undefined);
      },
    );
    // identify placed it here: whatever the tier, this shard takes sockets again.
    if (!admin) this.setDraining(false);
    await counted;
    return res;
  }

  // ---- ingest -----------------------------------------------------------------------------

  /**
   * Validates, stamps and buffers a batch with the given durability, resolving when the ack
   * may be sent (at once for buffered and fire-and-forget).
   */
  async ingest(raw: unknown[], mode: StorageMode, dedup = false, context: string | null = null): Promise<IngestResult> {
    return this.pipeline.take(raw, mode, dedup, context);
  }

  /** Stamps and buffers events as given, past every check (tests fill the buffer with it); returns the last seq. */
  private append(events: NormalizedEvent[], receivedAt: number, committed: boolean, context: string | null): number {
    return this.pipeline.append(events, receivedAt, committed, context);
  }

  /** When the oldest buffered event is due for an age flush. */
  private dueAt(): number | null {
    return this.buffer.dueAt(this.policy.highFlushIntervalMs, this.policy.flushIntervalMs);
  }

  // ---- flush ------------------------------------------------------------------------------

  /**
   * Flushes everything buffered now to every sink, trying a sink in backoff once (see
   * `Flusher.flushNow`; its schedule is kept). Throws a `flush_failed` error naming the sinks
   * that failed or still wait (`sinks`); their batches are kept and retried.
   */
  async flush(): Promise<FlushResult> {
    const result = await this.flusher.flushNow();
    if (result.failed.length > 0) {
      const which = result.failed.map((f) => `${f.sink}: ${f.error}`).join("; ");
      throw new DuckTailError(ErrorCode.flushFailed, `flush failed, events kept for retry: ${which}`, {
        sinks: result.failed,
      });
    }
    return result;
  }

  private flushInBackground(): void {
    if (this.flusher.running) return;
    this.ctx.waitUntil(this.flusher.flush().catch((err) => console.error("ducktail: flush failed", err)));
  }

  /**
   * {@link scheduleAlarm} from the ingest path: a promise (that never rejects) only when the alarm
   * actually moves, since nearly every batch finds an earlier alarm already set.
   */
  private alarmBy(at: number): Promise<void> | null {
    if (this.alarmAt !== null && this.alarmAt <= at) return null;
    return this.scheduleAlarm(at).catch((err) => console.error("ducktail: setAlarm failed", err));
  }

  /** Sets the alarm to `at` if nothing earlier is set (or unconditionally with `force`). */
  private async scheduleAlarm(at: number, force = false): Promise<void> {
    if (!force && this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  private liveViews(): LiveViews {
    this.viewsCache ??= new LiveViews(
      {
        uid: this.uid,
        sql: this.ctx.storage.sql,
        aggregator: () => this.aggregatorCalls(),
        alarmBy: (at) => void this.alarmBy(at),
      },
      this.views(),
    );
    return this.viewsCache;
  }

  /**
   * The tenant's view aggregator, to push to and ask views of; null before this shard knows its
   * tenant. A fresh stub each time: a stub to an object that was reset stays broken.
   */
  private aggregatorCalls(): AggregatorCalls | null {
    const id = this.cachedIdentity ?? this.store.identity();
    if (!id) return null;
    const ns = this.env.REPLICA;
    return new AggregatorCalls(ns.get(ns.idFromName(viewAggregatorName(id.tenant))), id.tenant);
  }

  /** This object as its tenant's view aggregator (./view-aggregator.ts); a shard never is one. */
  private viewAggregator(): ViewAggregator {
    if (this.aggregatorCache) return this.aggregatorCache;
    if (this.cachedIdentity ?? this.store.identity()) {
      throw new DuckTailError(ErrorCode.internal, "a shard is not the view aggregator");
    }
    const { COORDINATOR, REPLICA } = this.env;
    this.aggregatorCache = new ViewAggregator(
      {
        sql: this.ctx.storage.sql,
        shards: (tenant) =>
          new CoordinatorCalls(COORDINATOR.get(COORDINATOR.idFromName(tenant)), tenant).shardReports(),
        poke: (s, tenant) => new ReplicaCalls(REPLICA.get(REPLICA.idFromString(s.id)), tenant, s.n).pushViews(),
        waitUntil: (p) => this.ctx.waitUntil(p),
      },
      this.views(),
    );
    return this.aggregatorCache;
  }

  // ---- draining -------------------------------------------------------------------------------

  /**
   * Leaves the routing table (scale-down): flushes everything held, then asks every socket to
   * reconnect so dog's identify places it on a shard that stays. Requests that still arrive (a
   * Worker's routing table is cached for a few seconds) are taken and flushed as usual, so
   * nothing acked is lost.
   */
  private async drain(): Promise<DrainAnswer> {
    this.setDraining(true);
    const flushed = await this.flusher.flush(); // a failing sink keeps its batch and retries
    const sockets = await this.frames.moveAll(); // frames stored meanwhile flush as usual
    return { rows: flushed.rows, files: flushed.files, sockets };
  }

  /**
   * The coordinator routes this shard again (a scale-up after a drain): sockets the Worker places
   * are taken again, and the count goes to the coordinator, which may have taken this shard for
   * full when it refused one meanwhile.
   */
  private resume(): { resumed: boolean } {
    const resumed = this.draining;
    this.setDraining(false);
    this.ctx.waitUntil(this.connections.reportNow());
    return { resumed };
  }

  /** Kept in storage, so a drained shard evicted before its sockets left still refuses new ones. */
  private setDraining(draining: boolean): void {
    if (draining === this.draining) return;
    this.draining = draining;
    this.store.setMeta("draining", draining ? "1" : "0");
  }

  // ---- identity, stats, sockets -------------------------------------------------------------

  /** The Worker and coordinator name the shard on each request; the first naming is persisted. */
  private adoptIdentity(req: Request): void {
    this.cachedIdentity ??= this.store.identity();
    if (this.cachedIdentity) return;
    const tenant = req.headers.get(Header.tenant);
    const shard = req.headers.get(Header.shard);
    if (tenant && shard !== null) {
      this.cachedIdentity = { tenant, shard: Number(shard), name: shardName(tenant, Number(shard)) };
      this.store.setIdentity(this.cachedIdentity);
    }
  }

  protected identity(): ReplicaIdentity {
    this.cachedIdentity ??= this.store.identity();
    if (!this.cachedIdentity) throw new DuckTailError(ErrorCode.internal, "replica has no tenant yet");
    return this.cachedIdentity;
  }

  /** Counters, buffer and flush state of this shard. */
  stats(): Record<string, unknown> {
    const id = this.cachedIdentity ?? this.store.identity();
    return {
      replica: id?.name ?? null,
      tenant: id?.tenant ?? null,
      ...this.pipeline.counters,
      flushed: this.flusher.flushedRows,
      files: this.flusher.files,
      flushFailures: this.flusher.failures,
      deadLettered: this.flusher.deadLettered,
      viewFailures: this.viewsCache?.failures ?? 0,
      viewPushFailures: this.viewsCache?.pushFailures ?? 0,
      sqliteCommits: this.commits.groups,
      committedBatches: this.commits.writes,
      lastFlushAt: this.flusher.lastFlushAt,
      lastError: this.flusher.lastError,
      bufferedRows: this.buffer.rows,
      bufferedBytes: this.buffer.bytes,
      // What bufferedBytes fills (the dashboard's buffer gauge).
      maxBufferBytes: this.policy.maxBufferBytes,
      committedRows: this.store.committedRows(),
      ...this.flusher.stats(),
      connections: this.ctx.getWebSockets().length,
      draining: this.draining,
      ...this.tail.stats(),
    };
  }
}
