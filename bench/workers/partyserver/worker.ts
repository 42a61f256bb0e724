// The baselines of the live-tail benchmark (bench/tail.mjs): two rooms built on the real
// `partyserver` package, each one Durable Object per room name, doing the job DuckTail's tail
// does without its filters, gossip or flow control.
//
//   /parties/broadcast-room/<name>       BroadcastRoom: every frame a publisher sends goes, as sent,
//                                        to every subscriber (`this.broadcast`); partyserver's
//                                        default options (sockets held in memory, no hibernation)
//   /parties/hibernating-broadcast-room/<name>
//                                        the same with hibernation, as DuckTail's sockets are
//   /parties/tag-room/<name>?k=<i>       TagRoom: a subscriber is tagged `k<i>` on connect
//                                        (`getConnectionTags`, hibernation tags); each event of a
//                                        frame goes only to `getConnections("k" + event.data.k)`,
//                                        which is `ctx.getWebSockets(tag)`
//
// Publishers connect with `?role=pub` and send DuckTail's `events` frames
// (`{"type":"events","events":[…]}`); nothing is acked to them. Anything a subscriber sends is
// read and dropped: the "broadcast + acks" baseline has its subscribers ack as DuckTail's do. A GET to a room answers
// `{"connections": n}`, so the runner can wait for closed sockets to be gone between runs.
import { type Connection, type ConnectionContext, routePartykitRequest, Server, type WSMessage } from "partyserver";

interface Env extends Cloudflare.Env {
  BROADCAST_ROOM: DurableObjectNamespace;
  HIBERNATING_BROADCAST_ROOM: DurableObjectNamespace;
  TAG_ROOM: DurableObjectNamespace;
}

/** The frames publishers send: only `data.k` is read, by the tag room. */
interface EventsFrame {
  events: { data: { k: number } }[];
}

function isPublisher(ctx: ConnectionContext): boolean {
  return new URL(ctx.request.url).searchParams.get("role") === "pub";
}

function countOf(connections: Iterable<Connection>): Response {
  let n = 0;
  for (const _ of connections) n++;
  return Response.json({ connections: n });
}

/** Every event to every subscriber: the frame is forwarded unparsed. */
export class BroadcastRoom extends Server<Env> {
  /** Publishers' connection ids, left out of the broadcast (held in memory: this room does not hibernate). */
  private readonly publishers: string[] = [];

  override onConnect(connection: Connection, ctx: ConnectionContext): void {
    if (isPublisher(ctx)) this.publishers.push(connection.id);
  }

  override onClose(connection: Connection): void {
    const i = this.publishers.indexOf(connection.id);
    if (i >= 0) this.publishers.splice(i, 1);
  }

  override onMessage(connection: Connection, message: WSMessage): void {
    // Subscribers' frames (the acks of the "broadcast + acks" baseline) are read and dropped.
    if (this.publishers.includes(connection.id)) this.broadcast(message, this.publishers);
  }

  override onRequest(): Response {
    return countOf(this.getConnections());
  }
}

/**
 * BroadcastRoom with hibernation (`ctx.acceptWebSocket`, as DuckTail's sockets are): the same
 * broadcast, through the platform's hibernatable sockets. Publishers are known by a tag.
 */
export class HibernatingBroadcastRoom extends Server<Env> {
  static override options = { hibernate: true };

  override getConnectionTags(_connection: Connection, ctx: ConnectionContext): string[] {
    return isPublisher(ctx) ? ["pub"] : ["sub"];
  }

  override onMessage(connection: Connection, message: WSMessage): void {
    if (!connection.tags.includes("pub")) return;
    for (const sub of this.getConnections("sub")) sub.send(message);
  }

  override onRequest(): Response {
    return countOf(this.getConnections());
  }
}

/** Each event only to the subscribers tagged with its `data.k`, found by the platform's tag index. */
export class TagRoom extends Server<Env> {
  static override options = { hibernate: true };

  override getConnectionTags(_connection: Connection, ctx: ConnectionContext): string[] {
    const k = new URL(ctx.request.url).searchParams.get("k");
    return k === null ? [] : [`k${k}`];
  }

  override onMessage(_connection: Connection, message: WSMessage): void {
    const frame = JSON.parse(message as string) as EventsFrame;
    for (const event of frame.events) {
      const text = JSON.stringify(event);
      for (const connection of this.getConnections(`k${event.data.k}`)) connection.send(text);
    }
  }

  override onRequest(): Response {
    return countOf(this.getConnections());
  }
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    return (await routePartykitRequest(req, env)) ?? new Response("not found", { status: 404 });
  },
} satisfies ExportedHandler<Env>;
