import type { Scope } from "../protocol/auth";
import type { ServerFrame, StorageMode } from "../protocol/frames";

/** What every hibernating dog socket carries (see `HibernatingReplica`). */
export interface DogSocketState {
  /** dog's client id (from `identify`). */
  client: string;
  /** The dog group (the coordinator) that placed the socket. */
  group: string;
  /** Not placed by the group's `identify` (an admin socket on a named shard): its close is not reported. */
  admin?: boolean;
}

/** What a DuckTail socket carries across hibernation, in its serialized attachment. */
export interface SocketState extends DogSocketState {
  scope: Scope;
  /** Mode for `events` frames that name none. */
  storageMode: StorageMode;
  connectedAt: number;
  /** Live-tail subscriptions this socket holds. */
  subs?: string[];
  /** The context of the upgrade request (JSON from the Worker), stamped on the socket's events. */
  context?: string;
}

// Deserializing an attachment on every message is measurable on a hot socket; the platform's
// WebSocket objects are stable for the life of the isolate, so a WeakMap caches them.
const cache = new WeakMap<WebSocket, DogSocketState>();

export function attach<S extends DogSocketState = SocketState>(ws: WebSocket, state: S): void {
  ws.serializeAttachment(state);
  cache.set(ws, state);
}

/** The socket's attachment (cached). `S` is what the replica attached; nothing checks it. */
export function socketState<S extends DogSocketState = SocketState>(ws: WebSocket): S | null {
  let state = cache.get(ws);
  if (!state) {
    state = (ws.deserializeAttachment() as DogSocketState | null) ?? undefined;
    if (state) cache.set(ws, state);
  }
  return (state as S | undefined) ?? null;
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
