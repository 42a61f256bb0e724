// The baselines for the ingest benchmark: the least a Durable Object can do per `events` frame.
// It takes the same path as DuckTail's sockets — Worker fetch → DO stub.fetch with the Upgrade
// → Hibernation API (`ctx.acceptWebSocket`, `webSocketMessage`) — parses the JSON frame and acks.
//
// A frame with storageMode "confirmed" is also written to SQLite before the ack (one INSERT of
// the frame text; the output gate holds the ack until the commit): the floor for DuckTail's
// confirmed mode. Any other frame is only parsed: the floor for buffered mode. No validation,
// no buffer: whatever the replica spends beyond this is ours.
import { DurableObject } from "cloudflare:workers";

export class BareIngest extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS frames (n INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  }

  async fetch(req) {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws, message) {
    const frame = JSON.parse(message);
    if (frame.type === "flush") {
      // The runner empties both sides between runs; here that keeps the disk use bounded.
      this.ctx.storage.sql.exec("DELETE FROM frames");
      return ws.send(JSON.stringify({ type: "flushed", id: frame.id, files: [] }));
    }
    if (frame.storageMode === "confirmed") this.ctx.storage.sql.exec("INSERT INTO frames (body) VALUES (?)", message);
    ws.send(JSON.stringify({ type: "ack", id: frame.id, received: frame.events.length }));
  }

  async webSocketClose(ws, code, reason) {
    ws.close(code === 1005 ? 1000 : code, reason);
  }
}

export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    if (url.pathname !== "/ws") return new Response("not found", { status: 404 });
    // One object, like one DuckTail replica: every socket of the run lands on it.
    const stub = env.BARE.get(env.BARE.idFromName("bench"));
    return stub.fetch(req);
  },
};
