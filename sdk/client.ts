import type { ClientFrame } from "../src/protocol/frames";
import { backoffDelay } from "./backoff";
import { ClientErrorCode, DuckTailClientError } from "./errors";
import { probeSocket } from "./failures";
import { postEvents } from "./http";
import { uuid } from "./ids";
import { type Batch, Outbox } from "./outbox";
import { type ErrorListener, Reporter } from "./reporter";
import { defaultWebSocket, type IncomingFrame, ReconnectingSocket } from "./socket";
import type { TailSubscription } from "./subscription";
import { LiveTails } from "./tails";
import type {
  ClientOptions,
  FlushReport,
  StorageMode,
  SubscribeOptions,
  TailFilter,
  TrackOptions,
  TrackResult,
} from "./types";
import { type Endpoints, endpoints, URL_FORMS } from "./url";
import { checkClientOptions, checkObject, checkTrack, describe } from "./validate";

/** How long `flush()` waits by default before it resolves with what is still pending. */
export const DEFAULT_FLUSH_TIMEOUT_MS = 10_000;

/**
 * Sends events to a DuckTail Worker in batches over one reconnecting WebSocket (HTTP when there
 * is none) and tails them live. Each `track()` resolves once the server acked its event in the
 * client's storage mode, and rejects with the server's code if the server refused it.
 *
 * Nothing waits silently: a 401/403/404/405/410 (on the upgrade, probed with a GET since the
 * WebSocket API hides it, or on the POST) rejects everything held at once and every later event;
 * an unreachable Worker is reported once per outage (`onError`, `on("error")`, one warning) while
 * events wait in the bounded queue; `flush()` settles within 10 s by default.
 *
 * Delivery is at least once: batches in flight when a socket drops are sent again after the
 * reconnect with the same event ids, and the server does not deduplicate socket frames, so an
 * event whose ack was lost with the socket may be stored twice, in any storage mode.
 *
 * A `durable` event the server committed but could not get into R2 in time (an R2 outage) rejects
 * with code `durable_pending` (HTTP status 202): it is stored and will reach R2 by itself. The
 * client never sends such a batch again; do not `track()` it again either, or it is stored twice.
 */
export class DuckTailClient {
  private readonly endpoints: Endpoints;
  private readonly key: string | undefined;
  private readonly batchInterval: number;
  private readonly maxBatchSize: number;
  private readonly storageMode: StorageMode;
  private readonly outbox: Outbox;
  private readonly tails: LiveTails;
  private readonly reporter: Reporter;
  private batchTimer: ReturnType<typeof setTimeout> | null = null;
  private transport: "websocket" | "http" | null = null;
  private socket: ReconnectingSocket | null = null;
  private connecting: Promise<void> | null = null;
  private settleConnect: { resolve: () => void; reject: (err: Error) => void } | null = null;
  private httpBusy = false;
  private httpAttempt = 0;
  private httpTimer: ReturnType<typeof setTimeout> | null = null;
  private userId: string | undefined;
  private closed = false;
  /** The permanent failure that stopped this client; every event is refused with it. */
  private fatal: DuckTailClientError | null = null;
  /** Batches sent again after a reconnect. */
  resent = 0;

  /** Throws a TypeError for options that cannot work: no object, a bad `url`, an unknown mode. */
  constructor(private readonly options: ClientOptions) {
    checkClientOptions(options);
    this.endpoints = endpoints(options.url, "DuckTailClient: url");
    this.key = options.key ?? this.endpoints.key;
    this.batchInterval = options.batchInterval ?? 1000;
    this.maxBatchSize = Math.max(1, options.maxBatchSize ?? 100);
    this.storageMode = options.storageMode ?? "buffered";
    this.reporter = new Reporter(options.onError, options.warnings !== false);
    const report = (err: DuckTailClientError) => this.report(err);
    this.outbox = new Outbox(this.maxBatchSize, options.maxQueue ?? 10_000, report);
    this.tails = new LiveTails((frame) => this.sendFrame(frame), report);
  }

  /** "websocket" or "http" once connected; null before. */
  get connectedVia(): "websocket" | "http" | null {
    return this.transport;
  }

  /** Events tracked and not yet answered by the server (queued, offline or in flight). */
  get unacked(): number {
    return this.outbox.size();
  }

  /** Sockets reopened after the first. */
  get reconnects(): number {
    return this.socket?.reconnects ?? 0;
  }

  /** The Worker's base URL, normalised from the `url` option: `http(s)://host[/prefix]`. */
  get baseUrl(): string {
    return this.endpoints.base;
  }

  /** The permanent failure that stopped this client, or null. */
  get failure(): DuckTailClientError | null {
    return this.fatal;
  }

  /** Also calls `listener` with every failure `onError` gets. */
  on(event: "error", listener: ErrorListener): this {
    if (event === "error") this.reporter.on(listener);
    return this;
  }

  off(event: "error", listener: ErrorListener): this {
    if (event === "error") this.reporter.off(listener);
    return this;
  }

  /**
   * Opens the transport; resolves when events can go out (the socket is open, or HTTP was chosen).
   * Optional: the first `track()` or `subscribe()` connects too. Retries until `close()` while
   * the Worker is unreachable; rejects on a permanent failure (wrong key or URL).
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.fatal) return Promise.reject(this.fatal);
    this.connecting ??= new Promise<void>((resolve, reject) => {
      this.settleConnect = { resolve, reject };
      if (this.options.transport === "http") return this.useHttp();
      const fallbackAfter = this.options.transport === "websocket" ? Infinity : (this.options.httpFallbackAfter ?? 3);
      const given = this.options.WebSocket;
      const impl = given ? async () => given : defaultWebSocket;
      this.socket = new ReconnectingSocket(this.socketUrl(), impl, fallbackAfter, {
        open: () => this.onOpen(),
        frame: (f) => this.onFrame(f),
        down: () => this.tails.down(),
        fallback: () => this.useHttp(),
        dialFailed: (refused) => this.dialFailed(refused),
      });
      this.socket.start();
    });
    this.connecting.catch(() => {}); // rejected by close() or a permanent failure; awaiting callers still see it
    return this.connecting;
  }

  /**
   * Queues an event; resolves with its id once acked, rejects with the server's code if refused.
   * Throws a TypeError at once for a `type` that is not a non-empty string, or `data`/`options`
   * that are not objects.
   */
  track(type: string, data?: Record<string, unknown>, options?: TrackOptions): Promise<TrackResult> {
    checkTrack(type, data, options);
    options ??= {};
    const { timestamp } = options;
    const event = {
      id: options.id ?? uuid(),
      type,
      source: options.source ?? this.options.source,
      importance: options.importance,
      userId: options.userId ?? this.userId,
      anonymousId: options.anonymousId,
      sessionId: options.sessionId,
      timestamp: timestamp instanceof Date ? timestamp.getTime() : timestamp,
      data: data ?? undefined,
    };
    if (this.closed || this.fatal) {
      const err = this.closed ? this.closedError(event.id) : this.fatalFor(event.id);
      this.report(err);
      const refused = Promise.reject(err);
      refused.catch(() => {}); // reported; awaiting it still throws
      return refused;
    }
    const settled = this.outbox.add(event);
    if (this.outbox.queued >= this.maxBatchSize) this.pump();
    else if (this.outbox.queued > 0) this.batchTimer ??= this.timer(() => this.pump(), this.batchInterval);
    return settled;
  }

  /** An "identify" event; later events carry this `userId` unless they name another. */
  identify(userId: string, traits?: Record<string, unknown>): Promise<TrackResult> {
    if (typeof userId !== "string" || userId === "") {
      throw new TypeError(`identify(userId, traits?): userId must be a non-empty string; got ${describe(userId)}`);
    }
    this.userId = userId;
    return this.track("identify", traits, { userId });
  }

  /** A "pageview" event with `data.path` (default: the page's `location.pathname`). */
  page(path?: string, data?: Record<string, unknown>): Promise<TrackResult> {
    if (path !== undefined && typeof path !== "string") {
      throw new TypeError(`page(path?, data?): path must be a string (or left out); got ${describe(path)}`);
    }
    checkObject("page(path?, data?)", "data", data);
    const here = (globalThis as { location?: { pathname?: string } }).location?.pathname;
    return this.track("pageview", { ...data, path: path ?? here });
  }

  /**
   * Sends everything queued now; resolves once every event held was acked or refused, or after
   * `timeoutMs` (default 10 s; `Infinity` waits for good) with some still unanswered, which stay
   * queued. Resolves with what became of the events held when it was called. The timeout's timer
   * holds a Node process even when `holdProcess` is false, so an awaited flush always ends.
   */
  async flush(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<FlushReport> {
    const held = this.outbox.pending();
    // Now, not after a backoff in progress (a script flushing before it ends cannot wait).
    if (this.httpTimer) clearTimeout(this.httpTimer);
    this.httpTimer = null;
    this.pump();
    let acked = 0;
    let failed = 0;
    const counted = Promise.all(
      held.map((p) =>
        p.then(
          () => void acked++,
          () => void failed++,
        ),
      ),
    );
    if (timeoutMs === Number.POSITIVE_INFINITY) await counted;
    else {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([counted, timeout]);
      clearTimeout(timer);
    }
    return { acked, failed, pending: held.length - acked - failed };
  }

  /**
   * Flushes (waiting at most `timeoutMs`, default 5 s), then ends the client: events still
   * unacked reject with "closed", subscriptions end, the socket closes.
   */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.closed) return;
    await this.flush(timeoutMs);
    this.closed = true;
    for (const t of [this.batchTimer, this.httpTimer]) if (t) clearTimeout(t);
    this.outbox.failAll(ClientErrorCode.closed, "the client was closed before the server acked");
    this.tails.endAll();
    this.socket?.stop();
    this.settleConnect?.reject(this.closedError());
  }

  /**
   * A live tail of the tenant's events matching `filter` (needs a read key):
   * `for await (const event of client.subscribe({ type: "error" })) …`; breaking the loop
   * unsubscribes. Await `.ready` to know the server registered it.
   */
  subscribe(filter: TailFilter = {}, options: SubscribeOptions = {}): TailSubscription {
    const sub = this.tails.add(filter, options);
    if (this.closed) this.tails.endAll(this.closedError());
    else if (this.fatal) this.tails.endAll(this.fatal);
    else if (this.transport === "http") this.tails.endAll(this.noTail());
    else if (!this.socket?.writable) void this.connect().catch(() => {});
    return sub;
  }

  // ---- sending ------------------------------------------------------------------------------

  /** Sends every queued event the transport can take now, in batches. */
  private pump(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    if (this.closed || this.fatal || this.outbox.queued === 0) return;
    if (this.transport === "http") return void this.pumpHttp();
    if (!this.socket) return void this.connect().catch(() => {});
    for (let batch = this.take(); batch; batch = this.take()) this.sendBatch(batch);
  }

  private take(): Batch | null {
    return this.socket?.writable ? this.outbox.take() : null;
  }

  private sendBatch(batch: Batch): void {
    // Built as text: the events were serialized once, when tracked.
    this.socket?.send(`{"type":"events","id":"${batch.id}","events":${batch.events}}`);
  }

  /**
   * HTTP: one POST at a time; a transient failure puts the batch back and retries with backoff,
   * a permanent one stops the client.
   */
  private async pumpHttp(): Promise<void> {
    if (this.httpBusy || this.httpTimer) return;
    this.httpBusy = true;
    try {
      for (let batch = this.outbox.take(); batch && this.live; batch = this.outbox.take()) {
        const body = `{"storageMode":"${this.storageMode}","events":${batch.events}}`;
        const outcome = await postEvents(this.endpoints, this.key, body);
        if ("result" in outcome) {
          this.httpAttempt = 0;
          this.reporter.reachable();
          this.outbox.ack(batch.id, outcome.result);
        } else if (outcome.permanent) return this.fail(outcome.error);
        else if (!outcome.retry) {
          this.reporter.reachable();
          this.outbox.fail(batch.id, outcome.error.code, outcome.error.message);
        } else {
          this.outbox.requeue(batch.id);
          this.reporter.unreachable(outcome.error.message, this.outbox.size());
          const retry = () => {
            this.httpTimer = null;
            void this.pumpHttp();
          };
          this.httpTimer = this.timer(retry, backoffDelay(this.httpAttempt++));
          return;
        }
      }
    } finally {
      this.httpBusy = false;
    }
  }

  private sendFrame(frame: ClientFrame): boolean {
    if (!this.socket?.writable) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  // ---- transport events ---------------------------------------------------------------------

  private socketUrl(): string {
    const u = new URL(this.endpoints.socket);
    if (this.key) u.searchParams.set("key", this.key);
    u.searchParams.set("storageMode", this.storageMode);
    return u.toString();
  }

  private onOpen(): void {
    this.transport = "websocket";
    this.reporter.reachable();
    this.settleConnect?.resolve();
    // What the last socket took without acking goes first, under the same frame and event ids.
    for (const batch of this.outbox.sent()) {
      this.sendBatch(batch);
      this.resent++;
    }
    this.tails.opened();
    this.pump();
  }

  private onFrame(f: IncomingFrame): void {
    if (f.type === "ack") {
      if (f.id !== undefined) this.outbox.ack(f.id, f);
      return;
    }
    if (f.type === "error" && f.id !== undefined && this.outbox.fail(f.id, f.code, f.message)) return;
    if (this.tails.handle(f)) return;
    if (f.type === "error") this.report(new DuckTailClientError(f.code, f.message));
  }

  /**
   * A dial failed: whether to dial again. A constructor that refused the URL sends "auto" to
   * HTTP at once; otherwise a plain GET of the same URL tells a wrong key or URL (stop) from an
   * outage (report it, dial again).
   */
  private async dialFailed(refused: { thrown: unknown } | null): Promise<"retry" | "fallback" | "stop"> {
    if (refused) {
      if (this.options.transport !== "websocket") return "fallback";
      const why = (refused.thrown as Error)?.message ?? String(refused.thrown);
      const message = `the WebSocket implementation refused ${this.endpoints.socket} (${why}); use ${URL_FORMS}`;
      this.fail(new DuckTailClientError(ClientErrorCode.invalidUrl, message));
      return "stop";
    }
    const probe = await probeSocket(this.endpoints, this.key);
    if (!this.live) return "stop";
    if ("permanent" in probe) {
      this.fail(probe.permanent);
      return "stop";
    }
    this.reporter.unreachable(probe.transient, this.outbox.size());
    return "retry";
  }

  private useHttp(): void {
    if (!this.live) return;
    this.transport = "http";
    this.socket = null;
    this.outbox.requeue();
    this.tails.endAll(this.noTail());
    this.settleConnect?.resolve();
    this.pump();
  }

  private timer(run: () => void, ms: number): ReturnType<typeof setTimeout> {
    const t = setTimeout(run, ms);
    // Node's timers have unref(); browsers' are numbers.
    if (this.options.holdProcess === false) (t as { unref?: () => void }).unref?.();
    return t;
  }

  // ---- errors -------------------------------------------------------------------------------

  /** Neither closed nor stopped by a permanent failure. */
  private get live(): boolean {
    return !this.closed && this.fatal === null;
  }

  /**
   * A permanent failure (wrong key or URL): reported once, then every event held is rejected
   * with it, and every later one, until the client is closed. The socket stops.
   */
  private fail(err: DuckTailClientError): void {
    if (!this.live) return;
    this.fatal = err;
    for (const t of [this.batchTimer, this.httpTimer]) if (t) clearTimeout(t);
    this.batchTimer = this.httpTimer = null;
    this.socket?.stop();
    this.reporter.permanent(err);
    this.outbox.failAll(err.code, err.message, err.status);
    this.tails.endAll(err);
    this.settleConnect?.reject(err);
  }

  private fatalFor(eventId: string): DuckTailClientError {
    const fatal = this.fatal as DuckTailClientError;
    return new DuckTailClientError(fatal.code, fatal.message, eventId, undefined, fatal.status);
  }

  private report(err: DuckTailClientError): void {
    this.reporter.report(err);
  }

  private closedError(eventId?: string): DuckTailClientError {
    return new DuckTailClientError(ClientErrorCode.closed, "the client is closed", eventId);
  }

  private noTail(): DuckTailClientError {
    return new DuckTailClientError(ClientErrorCode.unsupported, "live tail needs a WebSocket; this client uses HTTP");
  }
}
