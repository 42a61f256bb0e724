// A test-only Worker: a dog Group and a bare HibernatingReplica, to test the base class without DuckTail.
import { type DogLinks, Group } from "../../../src/dog";
import { DogHeader } from "../../../src/protocol/routes";
import { HibernatingReplica } from "../../../src/replica/hibernating";

export interface FixtureEnv {
  GROUP: DurableObjectNamespace;
  REPLICA: DurableObjectNamespace;
}

export class FixtureGroup extends Group {
  /** One socket per replica, so a second client opens a second replica and they become neighbors. */
  limit = 1;

  link(env: FixtureEnv) {
    return { child: env.REPLICA, self: env.GROUP };
  }
}

export class FixtureReplica extends HibernatingReplica<FixtureEnv> {
  /** What the hooks saw (memory only). */
  readonly seen: { neighbors: string[]; closed: string[] } = { neighbors: [], closed: [] };

  link(env: FixtureEnv): DogLinks {
    return { parent: env.GROUP, self: env.REPLICA };
  }

  protected override async onrequest(req: Request, url: URL): Promise<Response> {
    if (url.pathname === "/ws") {
      const client = req.headers.get(DogHeader.client) ?? "";
      const group = req.headers.get(DogHeader.group) ?? "";
      return this.acceptSocket({ client, group });
    }
    return super.onrequest(req, url);
  }

  protected override onneighbor(id: string): void {
    this.seen.neighbors.push(id);
  }

  protected override async onsocketclose(ws: WebSocket): Promise<void> {
    this.seen.closed.push(String(ws.deserializeAttachment()?.client));
  }

  ongossip(msg: unknown): unknown {
    return { from: this.uid, got: msg };
  }

  /** For the test: the protected gossip helper and neighbor list. */
  ask(replica: string, msg: unknown): Promise<unknown> {
    return this.gossipOne(replica, msg);
  }

  known(): string[] {
    return this.neighbors();
  }
}

export default {
  fetch(): Response {
    return new Response("fixture", { status: 404 });
  },
};
