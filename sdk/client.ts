import type { ClientFrame } from "../src/protocol/frames";
import { backoffDelay } from "./backoff";
import { ClientErrorCode, DuckTailClientError } from "./errors";
import { postEvents } from "./http";
import { uuid } from "./ids";
import { type Batch, Outbox } from "./outbox";
import { defaultWebSocket, type IncomingFrame, ReconnectingSocket } from "./socket";
import type { TailSubscription } from "./subscription";
import { LiveTails } from "./tails";
import type { ClientOptions, StorageMode, SubscribeOptions, TailFilter, TrackOptions, TrackResult } from "./types";

/**
 * Sends events to a DuckTail Worker in batches over one reconnecting WebSocket (HTTP when there
 * is none) and tails them live. Each `track()` resolves once the server acked its event in the
 * client's storage mode, and rejects with the server's code if the server refused it.
 *
 * Delivery is at least once: batches in flight when a socket drops are sent again after the
 * reconnect with the same event ids, and the server does not deduplicate socket frames, so an
 * event whose ack was lost with the socket may be stored twice, in any storage mode.
 */
export class DuckTailClient {
  private readonly url: string;
  private readonly batchInterval: number;
  private readonly maxBatchSize: number;
  private readonly storageMode: StorageMode;
  private readonly outbox: Outbox;
  private readonly tails: LiveTails;
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
  /** Batches sent again after a reconnect. */
  resent = 0;

  constructor(private readonly options: ClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.batchInterval = options.batchInterval ?? 1000;
    this.maxBatchSize = Math.max(1, options.maxBatchSize ?? 100);
    this.storageMode = options.storageMode ?? "buffered";
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

  /**
   * Opens the transport; resolves when events can go out (the socket is open, or HTTP was chosen).
   * Optional: the first `track()` or `subscribe()` connects too. Retries until `close()`.
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
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
      });
      this.socket.start();
    });
    this.connecting.catch(() => {}); // rejected only by close(); awaiting callers still see it
    return this.connecting;
  }

  /** Queues an event; resolves with its id once acked, rejects with the server's code if refused. */
  track(type: string, data?: Record<string, unknown>, options: TrackOptions = {}): Promise<TrackResult> {
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
      data,
    };
    if (this.closed) {
      const err = this.closedError(event.id);
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
    this.userId = userId;
    return this.track("identify", traits, { userId });
  }

  /** A "pageview" event with `data.path` (default: the page's `location.pathname`). */
  page(path?: string, data?: Record<string, unknown>): Promise<TrackResult> {
    const here = (globalThis as { location?: { pathname?: string } }).location?.pathname;
    return this.track("pageview", { ...data, path: path ?? here });
  }

  /**
   * Sends everything queued now; resolves once every event held was acked or refused, or after
   * `timeoutMs` (default: no limit) with some still unanswered. The timeout's timer holds a Node
   * process even when `holdProcess` is false, so an awaited flush always ends.
   */
  async flush(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    const pending = this.outbox.pending();
    // Now, not after a backoff in progress (a script flushing before it ends cannot wait).
    if (this.httpTimer) clearTimeout(this.httpTimer);
    this.httpTimer = null;
    this.pump();
    const settled = Promise.allSettled(pending);
    if (timeoutMs === Number.POSITIVE_INFINITY) return void (await settled);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([settled, timeout]);
    clearTimeout(timer);
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
    else if (this.transport === "http") this.tails.endAll(this.noTail());
    else if (!this.socket?.writable) void this.connect().catch(() => {});
    return sub;
  }

  // ---- sending ------------------------------------------------------------------------------

  /** Sends every queued event the transport can take now, in batches. */
  private pump(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    if (this.closed || this.outbox.queued === 0) return;
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

  /** HTTP: one POST at a time; a transient failure puts the batch back and retries with backoff. */
  private async pumpHttp(): Promise<void> {
    if (this.httpBusy || this.httpTimer) return;
    this.httpBusy = true;
    try {
      for (let batch = this.outbox.take(); batch && !this.closed; batch = this.outbox.take()) {
        const body = `{"storageMode":"${this.storageMode}","events":${batch.events}}`;
        const outcome = await postEvents(`${this.url}/e`, this.options.key, body);
        if ("result" in outcome) {
          this.httpAttempt = 0;
          this.outbox.ack(batch.id, outcome.result);
        } else if (!outcome.retry) this.outbox.fail(batch.id, outcome.error.code, outcome.error.message);
        else {
          this.outbox.requeue(batch.id);
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
    const u = new URL(`${this.url}/ws`);
    u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
    if (this.options.key) u.searchParams.set("key", this.options.key);
    u.searchParams.set("storageMode", this.storageMode);
    return u.toString();
  }

  private onOpen(): void {
    this.transport = "websocket";
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

  private useHttp(): void {
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

  private report(err: DuckTailClientError): void {
    try {
      this.options.onError?.(err);
    } catch {
      // a throwing handler must not stop the client
    }
  }

  private closedError(eventId?: string): DuckTailClientError {
    return new DuckTailClientError(ClientErrorCode.closed, "the client is closed", eventId);
  }

  private noTail(): DuckTailClientError {
    return new DuckTailClientError(ClientErrorCode.unsupported, "live tail needs a WebSocket; this client uses HTTP");
  }
}
