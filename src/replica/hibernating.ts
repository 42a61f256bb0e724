import { type DogLinks, Replica } from "../dog";
import { DogHeader, DogRoute, isDogRoute } from "../protocol/routes";
import { attach, type DogSocketState, socketState } from "./sockets";

/**
 * A dog `Replica` whose sockets hibernate and whose messaging survives eviction.
 *
 * dog's Replica keeps its sockets in a private in-memory pool filled by `server.accept()`, so
 * its emit/broadcast/whisper reach nobody for sockets accepted with the Hibernation API, and
 * nobody at all after an eviction; its neighbor set (filled only when the group introduces a
 * new replica) is lost on eviction too, so `gossip()` and `broadcast()` silently reach nobody.
 * Without forking dog, this class keeps dog's routes, headers and neighbor fan-out and swaps
 * what lives in memory:
 *
 * - sockets are accepted with `ctx.acceptWebSocket` ({@link acceptSocket}) and carry dog's client
 *   and group in their attachment, so emit/broadcast/whisper (and dog's broadcast and whisper
 *   routes from neighbors) deliver through `ctx.getWebSockets()`;
 * - neighbors the group introduces are persisted in a small SQLite table (`neighbors`) and
 *   replayed into dog on construction;
 * - a socket's close is reported to the group in dog's `/~$~/close` protocol.
 *
 * Subclasses implement `link` (as for any dog Replica) and the hooks: {@link onrequest} for
 * requests that are not dog's, {@link onneighbor}, {@link onsocketclose}, and dog's `ongossip`.
 */
export abstract class HibernatingReplica<E = unknown> extends Replica {
  protected readonly ctx: DurableObjectState;
  protected readonly env: E;
  private readonly links: DogLinks;
  private readonly neighborTable: NeighborTable;

  constructor(ctx: DurableObjectState, env: E) {
    super(ctx, env as never);
    this.ctx = ctx;
    this.env = env;
    this.links = this.link(env);
    this.neighborTable = new NeighborTable(ctx.storage.sql);
    // dog keeps neighbors only in memory; replay the persisted ones so gossip reaches them after eviction.
    for (const n of this.neighborTable.all()) void super.fetch(neighborRequest(this.uid, n.id, n.group));
  }

  /** dog: which namespaces hold the group (`parent`) and the replicas (`self`). */
  abstract link(env: E): DogLinks;

  // ---- hooks ------------------------------------------------------------------------------

  /**
   * Every request that is not one of dog's routes. Default: dog's own path (`receive`, then a
   * report to the group for anything but a WebSocket upgrade).
   */
  protected onrequest(req: Request, _url: URL): Promise<Response> {
    return super.fetch(req);
  }

  /** dog: answers requests in dog's default {@link onrequest}. */
  receive(_req: Request): Response | Promise<Response> {
    return new Response("Not Found", { status: 404 });
  }

  /** The group introduced a neighbor replica (already persisted and known to dog). Not awaited. */
  protected onneighbor(_id: string): void {}

  /** A hibernated socket closed or failed, before its close is reported to the group. */
  protected async onsocketclose(_ws: WebSocket): Promise<void> {}

  // ---- sockets ----------------------------------------------------------------------------

  /**
   * Accepts a WebSocket upgrade with the Hibernation API, `state` as its attachment; `accepted`
   * sees the server's end.
   */
  protected acceptSocket<S extends DogSocketState>(state: S, accepted?: (ws: WebSocket) => void): Response {
    const { 0: client, 1: server } = new WebSocketPair();
    // Idle sockets cost no duration and outlive this object's eviction.
    this.ctx.acceptWebSocket(server);
    attach(server, state);
    accepted?.(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
    await this.socketGone(ws);
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    await this.socketGone(ws);
  }

  private async socketGone(ws: WebSocket): Promise<void> {
    try {
      await this.onsocketclose(ws);
    } finally {
      await this.reportClose(ws);
    }
  }

  /** Tells the group a socket left, in dog's `/~$~/close` protocol, so its count drops. */
  protected async reportClose(ws: WebSocket): Promise<void> {
    const state = socketState<DogSocketState>(ws);
    if (!state || state.admin) return;
    const headers = new Headers({
      [DogHeader.group]: state.group,
      [DogHeader.replica]: this.uid,
      [DogHeader.client]: state.client,
      [DogHeader.empty]: "1",
    });
    const parent = this.links.parent;
    const stub = parent.get(parent.idFromString(state.group));
    try {
      await stub.fetch(`http://dog${DogRoute.close}`, { headers });
    } catch (err) {
      console.error("ducktail: close report failed", err);
    }
  }

  // ---- dog messaging over hibernated sockets ------------------------------------------------

  /** dog: sends a message to every socket on this replica. */
  override emit(msg: string | Record<string, unknown>): void {
    this.sendToSockets(typeof msg === "string" ? msg : JSON.stringify(msg), () => true);
  }

  /** dog: sends a message to every socket on every replica of the group. */
  override async broadcast(msg: string | Record<string, unknown>): Promise<void> {
    this.emit(msg);
    await super.broadcast(msg); // dog's own local pool is empty: this only fans out
  }

  /** dog: sends a message to one client's sockets, wherever its replica is. */
  override async whisper(target: string, msg: string | Record<string, unknown>): Promise<void> {
    const text = typeof msg === "string" ? msg : JSON.stringify(msg);
    if (this.sendToSockets(text, (s) => s.client === target) > 0) return;
    await super.whisper(target, msg);
  }

  /** Sends raw text to this replica's sockets whose state passes `match`; returns how many. */
  protected sendToSockets(text: string, match: (state: DogSocketState) => boolean): number {
    let sent = 0;
    for (const ws of this.ctx.getWebSockets()) {
      const state = socketState<DogSocketState>(ws);
      if (!state || !match(state)) continue;
      try {
        ws.send(text);
        sent++;
      } catch {
        // closing: skip
      }
    }
    return sent;
  }

  // ---- gossip -----------------------------------------------------------------------------

  /** The neighbor replicas the group introduced (persisted). */
  protected neighbors(): string[] {
    return this.neighborTable.all().map((n) => n.id);
  }

  /**
   * Sends `msg` (JSON) to one neighbor through dog's gossip route and returns its `ongossip`
   * answer (parsed JSON), or undefined if `replica` is not a neighbor. dog's `gossip()` reaches
   * them all. Throws if the neighbor answers with an error.
   */
  protected async gossipOne(replica: string, msg: unknown): Promise<unknown> {
    const group = this.neighborTable.group(replica);
    if (!group) return undefined;
    const self = this.links.self;
    const stub = self.get(self.idFromString(replica));
    const res = await stub.fetch(`http://dog${DogRoute.gossip}`, {
      method: "POST",
      headers: { [DogHeader.replica]: replica, [DogHeader.group]: group, [DogHeader.neighbor]: this.uid },
      body: JSON.stringify(msg),
    });
    if (!res.ok) throw new Error(`gossip to ${replica} answered ${res.status}`);
    return res.json();
  }

  // ---- dog's routes -----------------------------------------------------------------------

  override async fetch(input: RequestInfo, init?: RequestInit): Promise<Response> {
    const req = input instanceof Request && init === undefined ? input : new Request(input, init);
    const url = new URL(req.url);
    if (!isDogRoute(url.pathname)) return this.onrequest(req, url);
    if (url.pathname === DogRoute.neighbor) {
      const id = req.headers.get(DogHeader.neighbor);
      const group = req.headers.get(DogHeader.group);
      if (id && group) this.neighborTable.add(id, group);
      const res = await super.fetch(req);
      if (id) this.onneighbor(id);
      return res;
    }
    // A neighbor's broadcast or whisper: deliver it to our hibernated sockets (see `emit`).
    if (url.pathname === DogRoute.broadcast) {
      this.sendToSockets(await req.text(), (s) => s.client !== req.headers.get(DogHeader.client));
      return new Response();
    }
    if (url.pathname === DogRoute.whisper) {
      const target = req.headers.get(DogHeader.target);
      this.sendToSockets(await req.text(), (s) => s.client === target);
      return new Response();
    }
    return super.fetch(req);
  }
}

/** dog's introduction of neighbor `id` to replica `uid`, as the group sends it. */
export function neighborRequest(uid: string, id: string, group: string): Request {
  return new Request(`http://dog${DogRoute.neighbor}`, {
    headers: { [DogHeader.replica]: uid, [DogHeader.neighbor]: id, [DogHeader.group]: group },
  });
}

/**
 * The neighbors the group introduced, in the object's SQLite (table `neighbors`), and in memory:
 * every tail forward asks for its target's group.
 */
class NeighborTable {
  private readonly groups = new Map<string, string>();

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS neighbors (id TEXT PRIMARY KEY, group_id TEXT NOT NULL)`);
    for (const r of sql.exec<{ id: string; group_id: string }>(`SELECT id, group_id FROM neighbors`)) {
      this.groups.set(r.id, r.group_id);
    }
  }

  all(): { id: string; group: string }[] {
    return [...this.groups].map(([id, group]) => ({ id, group }));
  }

  group(id: string): string | null {
    return this.groups.get(id) ?? null;
  }

  add(id: string, group: string): void {
    if (this.groups.has(id)) return;
    this.sql.exec(`INSERT OR IGNORE INTO neighbors (id, group_id) VALUES (?, ?)`, id, group);
    this.groups.set(id, group);
  }
}
