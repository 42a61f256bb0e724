import type { Scope } from "../protocol/auth";
import type { ServerFrame, StorageMode } from "../protocol/frames";

/** What a socket carries across hibernation, in its serialized attachment. */
export interface SocketState {
  /** dog's client id (from `identify`). */
  client: string;
  /** The coordinator (dog group) that placed the socket. */
  group: string;
  scope: Scope;
  /** Mode for `events` frames that name none. */
  storageMode: StorageMode;
  connectedAt: number;
  /** An admin socket opened on a named shard (GET /buffer/ws), not placed by dog's identify. */
  admin?: boolean;
  /** Live-tail subscriptions this socket holds. */
  subs?: string[];
  /** The context of the upgrade request (JSON from the Worker), stamped on the socket's events. */
  context?: string;
}

// Deserializing an attachment on every message is measurable on a hot socket; the platform's
// WebSocket objects are stable for the life of the isolate, so a WeakMap caches them.
const cache = new WeakMap<WebSocket, SocketState>();

export function attach(ws: WebSocket, state: SocketState): void {
  ws.serializeAttachment(state);
  cache.set(ws, state);
}

export function socketState(ws: WebSocket): SocketState | null {
  let state = cache.get(ws);
  if (!state) {
    state = (ws.deserializeAttachment() as SocketState | null) ?? undefined;
    if (state) cache.set(ws, state);
  }
  return state ?? null;
}

/** Sends a frame, ignoring sockets that closed meanwhile. */
export function sendFrame(ws: WebSocket, frame: ServerFrame): void {
  sendText(ws, JSON.stringify(frame));
}

/** Sends frame text, ignoring sockets that closed meanwhile. */
export function sendText(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    // closed between receipt and reply: nothing to tell
  }
}
