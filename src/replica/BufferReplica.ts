import "../columns/wasm";
import type { Env } from "../env";
import { decodeGossip, encodeGossip, type GossipMessage, type GossipReply } from "../gossip/messages";
import { flushCommits } from "../lake/catalog/client";
import { matchesQuery, newestFirst, parseEventQuery } from "../lake/query";
import { allows, type Scope } from "../protocol/auth";
import { DuckTailError, ErrorCode, errorResponse } from "../protocol/errors";
import type { NormalizedEvent, TransformEvent } from "../protocol/events";
import {
  ackFrame,
  type ClientFrame,
  type FrameError,
  type IngestResult,
  parseFrame,
  parseStorageMode,
  type StorageMode,
  utf8Length,
} from "../protocol/frames";
import { type FlushPolicy, flushPolicyFrom, type Limits, limitsFrom } from "../protocol/limits";
import { DogHeader, Header, InternalRoute, type LoadReport, shardName } from "../protocol/routes";
import { R2ParquetSink } from "../sinks/r2-parquet";
import type { Sink } from "../sinks/sink";
import { type AnyView, BUILTIN_VIEWS } from "../views/views";
import { EventBuffer } from "./buffer";
import { replayDeadLetters } from "./dead-letters";
import { Flusher, type FlushReport, type FlushResult } from "./flusher";
import { GroupCommit } from "./group-commit";
import { HibernatingReplica } from "./hibernating";
import { DEFAULT_DEDUP_WINDOW_MS, Ingest } from "./ingest";
import { LiveTail, tailBufferLimit } from "./live-tail";
import { LiveViews, parseWindow } from "./live-views";
import { retryPolicyFrom } from "./retry-policy";
import { type SocketState, sendFrame, sendText, socketState } from "./sockets";
import { type ReplicaIdentity, ReplicaStore } from "./store";

const DEFAULT_REPORT_INTERVAL_MS = 10_000;
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
  private readonly pipeline: Ingest;
  /** Requests and events since the last load report to the coordinator. */
  private window = { requests: 0, events: 0, since: Date.now() };
  private readonly reportIntervalMs: number;
  /** Set once the coordinator drained this shard out of the routing table (until it is routed again). */
  private draining = false;
  /** Socket `events` frames being stored, until their ack is sent. */
  private readonly frames = new Set<Promise<void>>();
  /** Sockets the drain has closed: frames still arriving on them are not taken. */
  private readonly closing = new WeakSet<WebSocket>();
  private alarmAt: number | null = null;
  private sinkList: Sink[] | null = null;
  private cachedIdentity: ReplicaIdentity | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.limits = limitsFrom(env);
    this.policy = flushPolicyFrom(env);
    this.reportIntervalMs = Number(env.REPORT_INTERVAL_MS ?? DEFAULT_REPORT_INTERVAL_MS);
    this.store = new ReplicaStore(ctx.storage.sql);
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
        counted: (events, now) => {
          this.window.requests++;
          this.window.events += events;
          if (now - this.window.since >= this.reportIntervalMs) this.ctx.waitUntil(this.report());
        },
      },
      Number(env.SEGMENT_DEDUP_WINDOW_MS ?? DEFAULT_DEDUP_WINDOW_MS),
    );
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
    const reply = msg ? (this.tail.ongossip(msg) ?? this.liveViews().ongossip(msg)) : null;
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

  /** Every request but dog's own (see HibernatingReplica). */
  protected override async onrequest(req: Request, url: URL): Promise<Response> {
    try {
      this.adoptIdentity(req);
      return await this.route(req, url);
    } catch (err) {
      return errorResponse(err);
    }
  }

  webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void | Promise<void> {
    // A socket the drain closed may still deliver frames the client sent before it heard: the
    // client re-sends those elsewhere, so storing them here would store them twice.
    if (this.closing.has(ws)) return;
    const state = socketState(ws);
    if (!state) return ws.close(1011, "socket state lost");
    let frame: ClientFrame;
    try {
      frame = parseFrame(message, this.limits);
    } catch (err) {
      const e = err as FrameError;
      return sendFrame(ws, { type: "error", id: e.frameId, code: e.code, message: e.message });
    }
    if (frame.type === "events") return this.onEvents(ws, state, frame);
    return this.onControl(ws, state, frame).catch((err) => socketError(ws, frame.id, err));
  }

  /**
   * An `events` frame. Buffered and fire-and-forget batches (the hot path) are taken and acked
   * right here, with no promise or closure per frame; confirmed and durable ones are tracked
   * until their ack is sent, so a drain never closes the socket between the two.
   */
  private onEvents(ws: WebSocket, state: SocketState, frame: EventsFrame): void | Promise<void> {
    let stored: IngestResult | Promise<IngestResult>;
    try {
      this.require(state.scope, "write");
      stored = this.pipeline.take(frame.events, frame.storageMode ?? state.storageMode, false, state.context ?? null);
    } catch (err) {
      return socketError(ws, frame.id, err);
    }
    if (!(stored instanceof Promise)) return sendText(ws, ackFrame(frame.id, stored));
    const done = stored.then(
      (result) => sendText(ws, ackFrame(frame.id, result)),
      (err) => socketError(ws, frame.id, err),
    );
    this.frames.add(done);
    return done.then(() => {
      this.frames.delete(done);
    });
  }

  /** Every frame but `events`. */
  private async onControl(ws: WebSocket, state: SocketState, frame: Exclude<ClientFrame, EventsFrame>): Promise<void> {
    const id = frame.id;
    switch (frame.type) {
      case "stats":
        this.require(state.scope, "read");
        return sendFrame(ws, { type: "stats", id, ...this.stats() });
      case "flush": {
        this.require(state.scope, "admin");
        const result = await this.flush();
        return sendFrame(ws, { type: "flushed", id, files: result.files });
      }
      case "ping":
        return sendFrame(ws, { type: "pong", id, ts: Date.now() });
      case "subscribe": {
        this.require(state.scope, "read");
        const sub = await this.tail.subscribe(ws, frame.filter, frame.sample);
        return sendFrame(ws, { type: "subscribed", id, subscription: sub.id, replicas: sub.replicas });
      }
      case "unsubscribe":
        await this.tail.unsubscribe(ws, [frame.subscription]);
        return sendFrame(ws, { type: "unsubscribed", id, subscription: frame.subscription });
      case "tailAck":
        return this.tail.ack(ws, frame.subscription, frame.seq);
      case "mv": {
        this.require(state.scope, "read");
        const result = await this.liveViews().query({
          name: frame.name,
          windowMs: parseWindow(frame.window),
          by: frame.by,
          limit: frame.limit,
        });
        return sendFrame(ws, { type: "mv", id, ...result });
      }
    }
  }

  async alarm(): Promise<void> {
    this.alarmAt = null;
    if (this.window.requests > 0) this.ctx.waitUntil(this.report());
    // Old rows flush, failing sinks retry, each when due: a sink in backoff waits whatever is buffered.
    const soonest = this.policy.highFlushIntervalMs;
    await this.flusher.onAlarm(this.dueAt(), soonest);
    const next = this.flusher.nextRunAt(this.dueAt(), soonest);
    // Never for a time already past: the alarm would run again at once, in a loop.
    if (next !== null) await this.scheduleAlarm(Math.max(next, Date.now() + this.policy.flushRetryBaseMs), true);
  }

  // ---- routes -----------------------------------------------------------------------------

  private async route(req: Request, url: URL): Promise<Response> {
    switch (url.pathname) {
      case InternalRoute.init:
        return Response.json(this.identity());
      case InternalRoute.ws:
        return this.accept(req, url);
      case InternalRoute.events: {
        if (req.method !== "POST") throw new DuckTailError(ErrorCode.methodNotAllowed, "POST events");
        const body = await this.readJson(req);
        const { events, storageMode } = eventsOf(body, url);
        const dedup = url.searchParams.get("dedup") === "1";
        const result = await this.ingest(events, storageMode, dedup, req.headers.get(Header.context));
        const status = result.stored === 0 && result.rejected.length > 0 ? 400 : 200;
        return Response.json(result, { status });
      }
      case InternalRoute.flush:
        return Response.json(await this.flush());
      case InternalRoute.stats:
        return Response.json(this.stats());
      case InternalRoute.mv: {
        const p = url.searchParams;
        const limit = p.get("limit");
        if (limit !== null && !/^\d{1,5}$/.test(limit)) {
          throw new DuckTailError(ErrorCode.badRequest, "limit must be an integer 0..99999");
        }
        const result = await this.liveViews().query({
          name: p.get("name") ?? "",
          windowMs: parseWindow(p.get("window")),
          by: p.get("by") ?? undefined,
          limit: limit === null ? undefined : Number(limit),
        });
        return Response.json(result);
      }
      case InternalRoute.buffered: {
        const q = parseEventQuery(url);
        const rows = this.buffer
          .through(Number.POSITIVE_INFINITY)
          .events()
          .filter((e) => matchesQuery(e, q))
          .sort(newestFirst);
        return Response.json(rows.slice(0, q.limit));
      }
      case InternalRoute.drain:
        if (req.method !== "POST") throw new DuckTailError(ErrorCode.methodNotAllowed, "POST to drain");
        return Response.json(await this.drain());
      case InternalRoute.replay: {
        if (req.method !== "POST") throw new DuckTailError(ErrorCode.methodNotAllowed, "POST dead-letter keys");
        const { keys } = (await this.readJson(req)) as { keys?: unknown };
        if (!Array.isArray(keys) || keys.some((k) => typeof k !== "string")) {
          throw new DuckTailError(ErrorCode.badRequest, "keys must be a list of dead-letter object keys");
        }
        const timeoutMs = retryPolicyFrom(this.env).storageTimeoutMs;
        return Response.json(
          await replayDeadLetters(this.env.EVENTS, this.sinkSet(), this.identity(), keys, timeoutMs),
        );
      }
      default:
        throw new DuckTailError(ErrorCode.notFound, `no route ${url.pathname}`);
    }
  }

  /** The sinks of the `sinks()` hook, built once. */
  private sinkSet(): Sink[] {
    this.sinkList ??= this.sinks(this.env);
    return this.sinkList;
  }

  private accept(req: Request, url: URL): Response {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      throw new DuckTailError(ErrorCode.badFrame, "expected a WebSocket upgrade");
    }
    const admin = req.headers.get(Header.admin) === "1";
    const client = admin ? `admin-${crypto.randomUUID()}` : req.headers.get(DogHeader.client);
    const group = admin ? "" : req.headers.get(DogHeader.group);
    if (!client || group === null) throw new DuckTailError(ErrorCode.badFrame, "missing dog client or group header");
    const scope = (req.headers.get(Header.scope) ?? "write") as Scope;
    const context = req.headers.get(Header.context);
    const storageMode = parseStorageMode(url.searchParams.get("storageMode") ?? undefined);
    const res = this.acceptSocket<SocketState>({
      client,
      group,
      scope,
      storageMode,
      connectedAt: Date.now(),
      ...(admin && { admin }),
      ...(context !== null && { context }),
    });
    this.draining = false;
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
        neighbors: () => this.neighbors(),
        gossipTo: (replica, msg) => this.gossipTo(replica, msg),
      },
      this.views(),
    );
    return this.viewsCache;
  }

  // ---- load reports and draining -------------------------------------------------------------

  /**
   * Tells the coordinator this shard's request and event rates and buffer fill since the last
   * report (at most one per REPORT_INTERVAL_MS, sent after an ingest or from the alarm, never
   * awaited by an ack). The coordinator sums them into the tenant's rate to pick its tier.
   */
  private async report(): Promise<void> {
    const id = this.cachedIdentity;
    if (!id) return;
    const now = Date.now();
    const { requests, events, since } = this.window;
    this.window = { requests: 0, events: 0, since: now };
    const body: LoadReport = {
      n: id.shard,
      requests,
      events,
      seconds: Math.max(0.001, (now - since) / 1000),
      bufferedBytes: this.buffer.bytes,
      bufferedRows: this.buffer.rows,
      connections: this.ctx.getWebSockets().length,
      at: now,
    };
    try {
      const stub = this.env.COORDINATOR.get(this.env.COORDINATOR.idFromName(id.tenant));
      await stub.fetch(`http://coordinator${InternalRoute.report}`, {
        method: "POST",
        headers: { [Header.tenant]: id.tenant },
        body: JSON.stringify(body),
      });
    } catch (err) {
      console.error("ducktail: load report failed", err);
    }
  }

  /**
   * Leaves the routing table (scale-down): flushes everything held, then asks every socket to
   * reconnect (a `reconnect` frame, then close code 1012) so dog's identify places it on a shard
   * that stays. Requests that still arrive (a Worker's routing table is cached for a few seconds)
   * are taken and flushed as usual, so nothing acked is lost.
   */
  private async drain(): Promise<{ rows: number; files: string[]; sockets: number }> {
    this.draining = true;
    const flushed = await this.flusher.flush(); // a failing sink keeps its batch and retries
    // Frames being stored get their acks first: closing between store and ack would make the
    // client send them again (stored twice). The check and the closes below run in one turn,
    // so no new frame can start in between; frames stored meanwhile flush as usual.
    while (this.frames.size > 0) await Promise.allSettled([...this.frames]);
    let sockets = 0;
    for (const ws of this.ctx.getWebSockets()) {
      const state = socketState(ws);
      if (state?.admin) continue;
      sendFrame(ws, { type: "reconnect", reason: "this shard left the tenant's routing table" });
      this.closing.add(ws);
      try {
        ws.close(1012, "shard draining; reconnect");
        sockets++; // the coordinator's count drops when webSocketClose reports it
      } catch {
        // already closed
      }
    }
    return { rows: flushed.rows, files: flushed.files, sockets };
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
      sqliteCommits: this.commits.groups,
      committedBatches: this.commits.writes,
      lastFlushAt: this.flusher.lastFlushAt,
      lastError: this.flusher.lastError,
      bufferedRows: this.buffer.rows,
      bufferedBytes: this.buffer.bytes,
      committedRows: this.store.committedRows(),
      ...this.flusher.stats(),
      connections: this.ctx.getWebSockets().length,
      draining: this.draining,
      ...this.tail.stats(),
    };
  }

  private require(have: Scope, need: Scope): void {
    if (!allows(have, need))
      throw new DuckTailError(ErrorCode.forbidden, `this key has ${have} scope; ${need} is needed`);
  }

  private async readJson(req: Request): Promise<unknown> {
    const text = await req.text();
    if (utf8Length(text, this.limits.maxFrameBytes) > this.limits.maxFrameBytes) {
      throw new DuckTailError(ErrorCode.frameTooLarge, `body is larger than ${this.limits.maxFrameBytes} bytes`);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new DuckTailError(ErrorCode.badJson, "body is not valid JSON");
    }
  }
}

/** Answers a frame that failed with an error frame (internal errors are logged, not described). */
function socketError(ws: WebSocket, id: string | undefined, err: unknown): void {
  const e = err instanceof DuckTailError ? err : new DuckTailError(ErrorCode.internal, "internal error");
  if (!(err instanceof DuckTailError)) console.error("ducktail: socket frame failed", err);
  // Details (a durable batch's pending seqs) ride beside code and message.
  if (e.details) sendText(ws, JSON.stringify({ type: "error", id, ...e.details, code: e.code, message: e.message }));
  else sendFrame(ws, { type: "error", id, code: e.code, message: e.message });
}

type EventsFrame = Extract<ClientFrame, { type: "events" }>;

/** The three body shapes of an ingest request: one event, an array, or `{events, storageMode}`. */
function eventsOf(body: unknown, url: URL): { events: unknown[]; storageMode: StorageMode } {
  const fromQuery = url.searchParams.get("storageMode") ?? undefined;
  if (Array.isArray(body)) return { events: body, storageMode: parseStorageMode(fromQuery) };
  if (typeof body === "object" && body !== null && Array.isArray((body as { events?: unknown }).events)) {
    const b = body as { events: unknown[]; storageMode?: unknown };
    return { events: b.events, storageMode: parseStorageMode(b.storageMode ?? fromQuery) };
  }
  return { events: [body], storageMode: parseStorageMode(fromQuery) };
}
