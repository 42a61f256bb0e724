import { allows, type Scope } from "../protocol/auth";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import { ackFrame, type ClientFrame, type FrameError, type IngestResult, parseFrame } from "../protocol/frames";
import type { Limits } from "../protocol/limits";
import type { RecordedAnswer } from "../protocol/recording";
import type { FlushResult } from "./flusher";
import type { Ingest } from "./ingest";
import type { LiveTail } from "./live-tail";
import type { LiveViews } from "./live-views";
import { type SocketState, sendFrame, sendText, socketState } from "./sockets";

/** What the frame handlers need of their replica. */
export interface FrameHost {
  readonly limits: Limits;
  readonly pipeline: Ingest;
  readonly tail: LiveTail;
  liveViews(): LiveViews;
  stats(): Record<string, unknown>;
  flush(): Promise<FlushResult>;
  sockets(): WebSocket[];
  /** Stores a session recording chunk (validated there) in its SessionRecording object. */
  record(chunk: unknown): Promise<RecordedAnswer>;
}

type EventsFrame = Extract<ClientFrame, { type: "events" }>;

/**
 * A replica's socket protocol: parses each frame, checks the key's scope, and answers it. It
 * also knows which `events` frames are being stored, so a drain can ack them before it closes
 * their sockets (see `moveAll`).
 */
export class SocketFrames {
  /** Socket `events` frames being stored, until their ack is sent. */
  private readonly storing = new Set<Promise<void>>();
  /** Sockets the drain has closed: frames still arriving on them are not taken. */
  private readonly closing = new WeakSet<WebSocket>();

  constructor(private readonly host: FrameHost) {}

  message(ws: WebSocket, message: string | ArrayBuffer): void | Promise<void> {
    // A socket the drain closed may still deliver frames the client sent before it heard: the
    // client re-sends those elsewhere, so storing them here would store them twice.
    if (this.closing.has(ws)) return;
    const state = socketState(ws);
    if (!state) return ws.close(1011, "socket state lost");
    let frame: ClientFrame;
    try {
      frame = parseFrame(message, this.host.limits);
    } catch (err) {
      const e = err as FrameError;
      return sendFrame(ws, { type: "error", id: e.frameId, code: e.code, message: e.message });
    }
    if (frame.type === "events") return this.onEvents(ws, state, frame);
    return this.onControl(ws, state, frame).catch((err) => socketError(ws, frame.id, err));
  }

  /**
   * Asks every socket dog placed here to reconnect (a `reconnect` frame, then close code 1012),
   * after the frames being stored got their acks: closing between store and ack would make the
   * client send them again (stored twice). The check and the closes run in one turn, so no new
   * frame can start in between. Answers how many sockets were asked.
   */
  async moveAll(): Promise<number> {
    while (this.storing.size > 0) await Promise.allSettled([...this.storing]);
    let sockets = 0;
    for (const ws of this.host.sockets()) {
      if (socketState(ws)?.admin) continue;
      sendFrame(ws, { type: "reconnect", reason: "this shard left the tenant's routing table" });
      this.closing.add(ws);
      try {
        ws.close(1012, "shard draining; reconnect");
        sockets++; // the coordinator's count drops when webSocketClose reports it
      } catch {
        // already closed
      }
    }
    return sockets;
  }

  /**
   * An `events` frame. Buffered and fire-and-forget batches (the hot path) are taken and acked
   * right here, with no promise or closure per frame; confirmed and durable ones are tracked
   * until their ack is sent, so a drain never closes the socket between the two.
   */
  private onEvents(ws: WebSocket, state: SocketState, frame: EventsFrame): void | Promise<void> {
    let stored: IngestResult | Promise<IngestResult>;
    try {
      requireScope(state.scope, "write");
      stored = this.host.pipeline.take(
        frame.events,
        frame.storageMode ?? state.storageMode,
        false,
        state.context ?? null,
      );
    } catch (err) {
      return socketError(ws, frame.id, err);
    }
    if (!(stored instanceof Promise)) return sendText(ws, ackFrame(frame.id, stored));
    const done = stored.then(
      (result) => sendText(ws, ackFrame(frame.id, result)),
      (err) => socketError(ws, frame.id, err),
    );
    this.storing.add(done);
    return done.then(() => {
      this.storing.delete(done);
    });
  }

  /** Every frame but `events`. */
  private async onControl(ws: WebSocket, state: SocketState, frame: Exclude<ClientFrame, EventsFrame>): Promise<void> {
    const id = frame.id;
    switch (frame.type) {
      case "stats":
        requireScope(state.scope, "read");
        return sendFrame(ws, { type: "stats", id, ...this.host.stats() });
      case "flush": {
        requireScope(state.scope, "admin");
        const result = await this.host.flush();
        return sendFrame(ws, { type: "flushed", id, files: result.files });
      }
      case "ping":
        return sendFrame(ws, { type: "pong", id, ts: Date.now() });
      case "subscribe": {
        requireScope(state.scope, "read");
        const sub = await this.host.tail.subscribe(ws, frame.filter, frame.sample);
        return sendFrame(ws, { type: "subscribed", id, subscription: sub.id, replicas: sub.replicas });
      }
      case "unsubscribe":
        await this.host.tail.unsubscribe(ws, [frame.subscription]);
        return sendFrame(ws, { type: "unsubscribed", id, subscription: frame.subscription });
      case "tailAck":
        return this.host.tail.ack(ws, frame.subscription, frame.seq);
      case "recording": {
        requireScope(state.scope, "write");
        return sendFrame(ws, { type: "recorded", id, ...(await this.host.record(frame.chunk)) });
      }
      case "mv": {
        requireScope(state.scope, "read");
        const result = await this.host.liveViews().query({
          name: frame.name,
          window: frame.window,
          by: frame.by,
          limit: frame.limit,
          step: frame.step,
        });
        return sendFrame(ws, { type: "mv", id, ...result });
      }
    }
  }
}

/** Throws `forbidden` unless a key of scope `have` may do what needs `need`. */
function requireScope(have: Scope, need: Scope): void {
  if (!allows(have, need))
    throw new DuckTailError(ErrorCode.forbidden, `this key has ${have} scope; ${need} is needed`);
}

/** Answers a frame that failed with an error frame (internal errors are logged, not described). */
function socketError(ws: WebSocket, id: string | undefined, err: unknown): void {
  const e = err instanceof DuckTailError ? err : new DuckTailError(ErrorCode.internal, "internal error");
  if (!(err instanceof DuckTailError)) console.error("ducktail: socket frame failed", err);
  // Details (a durable batch's pending seqs) ride beside code and message.
  if (e.details) sendText(ws, JSON.stringify({ type: "error", id, ...e.details, code: e.code, message: e.message }));
  else sendFrame(ws, { type: "error", id, code: e.code, message: e.message });
}
