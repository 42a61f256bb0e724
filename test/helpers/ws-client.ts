import WebSocket from "ws";

export type Frame = Record<string, unknown> & { type: string; id?: string };

interface Waiter {
  match: (f: Frame) => boolean;
  resolve: (f: Frame) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * A real `ws` client for the DuckTail socket protocol: every frame the server sends is kept
 * until a waiter claims it, so a reply can never be missed between send and await.
 */
export class WsClient {
  private frames: Frame[] = [];
  private waiters: Waiter[] = [];
  private nextId = 0;
  private closed: Error | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const frame = JSON.parse(String(data)) as Frame;
      const i = this.waiters.findIndex((w) => w.match(frame));
      if (i < 0) return void this.frames.push(frame);
      const [w] = this.waiters.splice(i, 1);
      clearTimeout(w!.timer);
      w!.resolve(frame);
    });
    ws.on("close", (code, reason) => this.fail(new Error(`socket closed: ${code} ${String(reason)}`)));
    ws.on("error", (err) => this.fail(err));
  }

  /** Opens `ws(s)://…/ws` for an http(s) base URL; `query` like `?storageMode=confirmed`. */
  static open(baseUrl: string, query = ""): Promise<WsClient> {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/ws${query}`);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(new WsClient(ws)));
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade failed: ${res.statusCode}`)));
    });
  }

  private fail(err: Error): void {
    this.closed ??= err;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The first frame (already received or still to come) that `match` accepts. */
  waitFor(match: (f: Frame) => boolean, timeoutMs = 15_000, what = "frame"): Promise<Frame> {
    const i = this.frames.findIndex(match);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]!);
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push({ match, resolve, reject, timer });
    });
  }

  /** Sends a frame with a fresh id; returns that id and the promise of the reply that echoes it. */
  start(frame: Record<string, unknown>, timeoutMs?: number): { id: string; reply: Promise<Frame> } {
    const id = `r${this.nextId++}`;
    const reply = this.waitFor((f) => f.id === id, timeoutMs, `reply to ${id}`);
    this.send({ ...frame, id });
    return { id, reply };
  }

  /** Sends a frame with a fresh id and resolves with the reply that echoes it. */
  request(frame: Record<string, unknown>, timeoutMs?: number): Promise<Frame> {
    return this.start(frame, timeoutMs).reply;
  }

  /** An `events` frame; `storageMode` omitted means the socket's default. */
  events(events: unknown[], storageMode?: string, timeoutMs?: number): Promise<Frame> {
    return this.request({ type: "events", events, ...(storageMode !== undefined && { storageMode }) }, timeoutMs);
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once("close", () => resolve());
      this.ws.close(1000);
    });
  }
}
