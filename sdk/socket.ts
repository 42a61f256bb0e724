import type { ServerFrame } from "../src/protocol/frames";
import { backoffDelay } from "./backoff";
import type { WebSocketConstructor, WebSocketLike } from "./types";

/** Every frame the server sends on /ws. */
export type IncomingFrame = ServerFrame;

export interface SocketEvents {
  /** A socket is open (the first one or after a reconnect). */
  open(): void;
  frame(frame: IncomingFrame): void;
  /** The socket closed without `stop()`; a reconnect is scheduled. */
  down(): void;
  /** No WebSocket implementation, or `fallbackAfter` upgrades failed in a row. The socket gave up. */
  fallback(): void;
  /**
   * A dial failed before the socket opened (`refused`: the constructor threw this). Resolves with
   * what to do: dial again after backoff, give up for HTTP now, or stop (the client failed).
   */
  dialFailed(refused: { thrown: unknown } | null): Promise<"retry" | "fallback" | "stop">;
}

const OPEN = 1;
/** A socket open at least this long was healthy: after it drops, backoff starts over. */
const HEALTHY_MS = 5_000;
/** An upgrade that has not completed by then has failed. */
const UPGRADE_TIMEOUT_MS = 10_000;

/** The global WebSocket (browsers, Node ≥ 22, Workers), else the `ws` package (Node 20), else null. */
export async function defaultWebSocket(): Promise<WebSocketConstructor | null> {
  const global = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof global === "function") return global as WebSocketConstructor;
  try {
    return (await import("ws")).default as unknown as WebSocketConstructor;
  } catch {
    return null;
  }
}

/**
 * One logical connection to `/ws` over successive sockets: reconnects with exponential backoff
 * and jitter until stopped, at once (after one short delay) when the server asks with a
 * `reconnect` frame or close code 1012 (its shard is leaving on scale-down).
 */
export class ReconnectingSocket {
  /** Sockets opened after the first. */
  reconnects = 0;
  private ws: WebSocketLike | null = null;
  /** The server sent `reconnect`: nothing more goes on this socket; it is about to close. */
  private draining = false;
  private attempt = 0;
  private failedUpgrades = 0;
  private opened = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private upgradeTimer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly impl: () => Promise<WebSocketConstructor | null>,
    private readonly fallbackAfter: number,
    private readonly on: SocketEvents,
  ) {}

  /** Open and not draining: frames may be sent. */
  get writable(): boolean {
    return this.ws?.readyState === OPEN && !this.draining;
  }

  start(): void {
    void this.dial();
  }

  send(text: string): void {
    this.ws?.send(text);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    clearTimeout(this.upgradeTimer);
    const ws = this.ws;
    this.ws = null;
    try {
      ws?.close(1000, "client closed");
    } catch {
      // still connecting in some implementations: it is dropped either way
    }
  }

  private async dial(): Promise<void> {
    this.timer = null;
    const Impl = await this.impl();
    if (this.stopped) return;
    if (!Impl) return this.on.fallback();
    let ws: WebSocketLike;
    try {
      ws = new Impl(this.url);
    } catch (thrown) {
      return this.failed({ thrown });
    }
    this.ws = ws;
    let openedAt = 0;
    let asked = false;
    // Node's WebSocket (undici) reports a connection dropped during the upgrade with an error and
    // never a close, and a black-holed one reports nothing: either is a failed upgrade.
    const failUpgrade = () => {
      if (this.ws !== ws || openedAt !== 0) return;
      clearTimeout(this.upgradeTimer);
      this.ws = null;
      try {
        ws.close();
      } catch {
        // some implementations throw on close() while connecting; the socket is dropped anyway
      }
      if (!this.stopped) void this.failed(null);
    };
    // A watchdog only: the connection attempt itself is what keeps a Node process alive.
    this.upgradeTimer = setTimeout(failUpgrade, UPGRADE_TIMEOUT_MS);
    (this.upgradeTimer as { unref?: () => void }).unref?.();
    ws.addEventListener("open", () => {
      clearTimeout(this.upgradeTimer);
      openedAt = Date.now();
      this.failedUpgrades = 0;
      this.draining = false;
      if (this.opened) this.reconnects++;
      this.opened = true;
      this.on.open();
    });
    ws.addEventListener("message", (event) => {
      let frame: IncomingFrame;
      try {
        frame = JSON.parse(String(event.data)) as IncomingFrame;
      } catch {
        return;
      }
      if (frame.type === "reconnect") {
        asked = true;
        this.draining = true;
      }
      this.on.frame(frame);
    });
    // Once open, a close event follows every error (and `ws` throws on an unheard one).
    ws.addEventListener("error", failUpgrade);
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      clearTimeout(this.upgradeTimer);
      this.ws = null;
      this.draining = false;
      if (this.stopped) return;
      if (openedAt === 0) return void this.failed(null);
      this.on.down();
      const healthy = Date.now() - openedAt >= HEALTHY_MS;
      this.retry(true, healthy || asked || event.code === 1012);
    });
  }

  /** Asks the client what a failed dial means (it probes the URL), then acts on it. */
  private async failed(refused: { thrown: unknown } | null): Promise<void> {
    const next = await this.on.dialFailed(refused);
    if (this.stopped) return;
    if (next === "stop") return this.stop();
    if (next === "fallback") {
      this.stopped = true;
      return this.on.fallback();
    }
    this.retry(false, false);
  }

  /** Schedules the next dial, or gives up for HTTP after too many failed upgrades in a row. */
  private retry(wasOpen: boolean, startOver: boolean): void {
    if (!wasOpen && ++this.failedUpgrades >= this.fallbackAfter) {
      this.stopped = true;
      this.on.fallback();
      return;
    }
    if (startOver) this.attempt = 0;
    this.timer = setTimeout(() => void this.dial(), backoffDelay(this.attempt++));
  }
}
