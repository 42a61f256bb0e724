import type { ConnectionReport } from "../protocol/calls";
import { Rounds } from "../rounds";
import { withTimeout } from "../sinks/timeout";

/** Sockets per replica before another shard opens: var REPLICA_CONNECTION_LIMIT. */
export const DEFAULT_CONNECTION_LIMIT = 1000;

/** `REPLICA_CONNECTION_LIMIT` from the Worker's vars, or the default. */
export function connectionLimit(env: { REPLICA_CONNECTION_LIMIT?: string }): number {
  return Number(env.REPLICA_CONNECTION_LIMIT ?? DEFAULT_CONNECTION_LIMIT);
}

/**
 * Longest a socket's answer waits for the report that counts it (the socket is counted here at
 * once either way); a coordinator slower than that only hears of it later.
 */
export const CONNECTION_REPORT_WAIT_MS = 2_000;
/** Longest one report may take before the next round goes anyway (logged). */
export const CONNECTION_REPORT_TIMEOUT_MS = 10_000;

/** What the connection count needs from its replica. */
export interface ConnectionHost {
  /** This replica's Durable Object id. */
  uid: string;
  /** Every socket of the object (after a wake-up, the count is rebuilt from them once). */
  sockets(): WebSocket[];
  /** Sockets the coordinator does not place (admin sockets on a named shard): not counted. */
  uncounted(ws: WebSocket): boolean;
  /** The socket's dog client, reported to the coordinator when it leaves. */
  client(ws: WebSocket): string | null;
  /** Sends a report to the coordinator of the group the sockets belong to. */
  send(report: ConnectionReport): Promise<void>;
}

/**
 * A replica's own count of its sockets, which decides whether it takes a socket the Worker placed
 * from its cached routing table (the coordinator is not asked per socket: see `Header.edgePlaced`),
 * and which it reports to the coordinator as sockets come and go: the report names the count (it
 * replaces the coordinator's, which identify moves by one) and the clients placed here at the edge
 * or gone, so identify and GET /shards see them. A socket is answered once the report that counts
 * it is in, as identify answered once its count was. Reports go in rounds (one at a time, the next
 * carrying every change made meanwhile), so a thousand sockets arriving together cost a few reports,
 * where identify and dog's close report cost the coordinator a call per socket.
 */
export class ConnectionCount {
  private open: Set<WebSocket> | null = null;
  private readonly rounds: Rounds<Changes, void>;
  /** Each round's `done`, bounded by CONNECTION_REPORT_WAIT_MS: one timer per round, not per socket. */
  private readonly bounded = new WeakMap<Promise<void>, Promise<void>>();

  constructor(
    private readonly host: ConnectionHost,
    readonly limit: number,
  ) {
    this.rounds = new Rounds<Changes, void>(
      () => ({ clients: [], gone: [] }),
      (changes) => this.report(changes),
    );
  }

  get count(): number {
    return this.sockets().size;
  }

  /** Whether a socket placed at the edge may come in. */
  hasRoom(): boolean {
    return this.count < this.limit;
  }

  /**
   * A socket was accepted; `edgeClient`: its client, when the Worker placed it (identify did not
   * count it). Resolves when the coordinator was told.
   */
  opened(ws: WebSocket, edgeClient?: string): Promise<void> {
    if (this.host.uncounted(ws)) return Promise.resolve();
    this.sockets().add(ws);
    const round = this.rounds.next();
    if (edgeClient !== undefined) round.items.clients.push(edgeClient);
    return this.waitFor(round.done);
  }

  /** A socket closed or failed (once or more); resolves when the coordinator was told. */
  closed(ws: WebSocket): Promise<void> {
    if (!this.sockets().delete(ws)) return Promise.resolve();
    const round = this.rounds.next();
    const client = this.host.client(ws);
    if (client !== null) round.items.gone.push(client);
    return this.waitFor(round.done);
  }

  /** Reports the count now (the coordinator's may be wrong: see the replica's `resume`). */
  reportNow(): Promise<void> {
    return this.waitFor(this.rounds.next().done);
  }

  /** A round's report, waited for at most CONNECTION_REPORT_WAIT_MS. */
  private waitFor(done: Promise<void>): Promise<void> {
    let bounded = this.bounded.get(done);
    if (!bounded) {
      // A report never rejects (see `report`): the only failure here is the wait running out.
      bounded = withTimeout(done, CONNECTION_REPORT_WAIT_MS, "connection report").catch(() => {});
      this.bounded.set(done, bounded);
    }
    return bounded;
  }

  private sockets(): Set<WebSocket> {
    this.open ??= new Set(this.host.sockets().filter((ws) => !this.host.uncounted(ws)));
    return this.open;
  }

  private async report({ clients, gone }: Changes): Promise<void> {
    // A client that came and left since the last report is not mapped.
    const left = new Set(gone);
    const report: ConnectionReport = {
      replica: this.host.uid,
      connections: this.count,
      clients: clients.filter((c) => !left.has(c)),
      ...(gone.length > 0 && { gone }),
    };
    try {
      await withTimeout(this.host.send(report), CONNECTION_REPORT_TIMEOUT_MS, "connection report");
    } catch (err) {
      console.error("ducktail: connection report failed", err);
    }
  }
}

interface Changes {
  clients: string[];
  gone: string[];
}
