import type { Env } from "../env";
import { validateFilter } from "../gossip/filters";
import type { GossipMessage, GossipReply } from "../gossip/messages";
import {
  type LaterText,
  type Subscription,
  type TailBatch,
  type TailOffer,
  TailQueue,
  TailRouter,
} from "../gossip/tail";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import { Rounds } from "../rounds";
import { attach, sendText, socketState } from "./sockets";
import type { ReplicaStore } from "./store";

/** What live tail needs from its replica. */
export interface TailHost {
  /** This replica's Durable Object id. */
  uid: string;
  store: ReplicaStore;
  sockets(): WebSocket[];
  /** dog gossip to every neighbor; to one replica. */
  gossipAll(msg: GossipMessage): Promise<GossipReply[]>;
  gossipTo(replica: string, msg: GossipMessage): Promise<GossipReply | null>;
  waitUntil(p: Promise<unknown>): void;
  /** Resolves once every write made so far is committed (`ctx.storage.sync()`). */
  sync?(): Promise<void>;
  /** Most tail text a socket's subscribers may hold here (see `tailBufferLimit`). */
  maxBufferedBytes?: number;
}

/** Default `TAIL_MAX_BUFFERED_BYTES`: 4 MiB per socket. */
export const DEFAULT_TAIL_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** `TAIL_MAX_BUFFERED_BYTES` from the Worker's vars, or the default. */
export function tailBufferLimit(env: Pick<Env, "TAIL_MAX_BUFFERED_BYTES">): number {
  const raw = env.TAIL_MAX_BUFFERED_BYTES;
  if (raw === undefined || raw === "") return DEFAULT_TAIL_MAX_BUFFERED_BYTES;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`invalid TAIL_MAX_BUFFERED_BYTES: ${raw}`);
  return n;
}

/** What one registration round carries: subscriptions to add and to remove, cluster-wide. */
interface Registration {
  subs: Subscription[];
  ids: string[];
}

/** Close code for a subscriber's socket that holds too much unsent tail text (policy violation). */
export const TAIL_NOT_READING_CLOSE_CODE = 1008;

/** A subscription's queue and the socket its frames go to. */
interface Outlet {
  queue: TailQueue;
  ws: WebSocket;
  /** Whether events were queued since the last send (it is in `LiveTail.touched`). */
  touched: boolean;
}

/**
 * A replica's part in the tenant's live tail. Every replica keeps the whole tenant's filter
 * table (persisted, so it survives eviction) and matches what it ingests; matches go to the
 * replica holding the subscriber (the owner), which queues them per subscriber (TailQueue) and
 * pushes `tail` frames. A replica that gets matches for a subscription its owner no longer has
 * is told so (`tail-gone`) and drops it: the table heals after an owner crash.
 *
 * The subscriber's acks are the only sign it reads (workerd shows no send buffer), so what a
 * socket's subscribers hold here, queued or sent and unacknowledged, is capped in bytes: past
 * `maxBufferedBytes` the socket is closed (1008) rather than written to without end.
 */
export class LiveTail {
  private readonly router: TailRouter;
  private readonly outlets = new Map<string, Outlet>();
  private readonly maxBufferedBytes: number;
  /** Sockets closed for holding more than `maxBufferedBytes` (stats). */
  private notReadingClosed = 0;
  /**
   * Registration gossip in rounds (see Rounds): one round is out at a time and carries every
   * subscribe and unsubscribe made while the previous one was, so a thousand subscribers arriving
   * together cost a few rounds, not a thousand; an unsubscribe never overtakes its subscribe.
   */
  private readonly rounds: Rounds<Registration, number>;
  /** Whether the outlets were rebuilt from the sockets since this object woke (see `openOutlet`). */
  private outletsRebuilt = false;
  /** Outlets with events queued and not yet sent, and subscriptions matched here that have no outlet. */
  private touched: Outlet[] = [];
  private gone: string[] = [];

  constructor(private readonly host: TailHost) {
    this.maxBufferedBytes = host.maxBufferedBytes ?? DEFAULT_TAIL_MAX_BUFFERED_BYTES;
    this.router = new TailRouter(host.uid, (owner, batch) => this.forward(owner, batch), {
      take: (subscription, text) => this.queueFor(subscription, text),
      end: () => {
        this.sendQueued();
      },
    });
    this.rounds = new Rounds<Registration, number>(
      () => ({ subs: [], ids: [] }),
      (round) => this.register(round),
    );
    for (const sub of host.store.subscriptions()) this.router.add(sub);
  }

  /** Whether any subscription exists (the ingest path skips building tail events otherwise). */
  get active(): boolean {
    return this.router.size > 0;
  }

  offer(offer: TailOffer): void {
    this.router.offer(offer);
  }

  /** A `subscribe` frame: registers the filter on every replica, then answers. */
  async subscribe(ws: WebSocket, rawFilter: unknown, rawSample: unknown): Promise<{ id: string; replicas: number }> {
    const state = socketState(ws);
    if (!state) throw new DuckTailError(ErrorCode.internal, "socket state lost");
    const filter = validateFilter(rawFilter);
    const sample = rawSample === undefined ? 1 : Number(rawSample);
    if (!(sample > 0 && sample <= 1)) throw new DuckTailError(ErrorCode.badRequest, "sample must be in (0, 1]");
    const sub: Subscription = { id: crypto.randomUUID(), owner: this.host.uid, client: state.client, filter, sample };
    this.router.add(sub); // stored with its registration round (see `register`)
    attach(ws, { ...state, subs: [...(state.subs ?? []), sub.id] });
    this.addOutlet(sub.id, ws);
    const round = this.rounds.next();
    round.items.subs.push(sub);
    return { id: sub.id, replicas: await round.done };
  }

  /** An `unsubscribe` frame, or the subscriber's socket closing. */
  async unsubscribe(ws: WebSocket, ids: string[]): Promise<void> {
    const state = socketState(ws);
    const mine = ids.filter((id) => state?.subs?.includes(id));
    if (mine.length === 0) return;
    if (state) attach(ws, { ...state, subs: (state.subs ?? []).filter((id) => !mine.includes(id)) });
    this.drop(mine);
    const round = this.rounds.next();
    round.items.ids.push(...mine);
    await round.done;
  }

  /** Every subscription a closing socket held. */
  closed(ws: WebSocket): Promise<void> {
    return this.unsubscribe(ws, socketState(ws)?.subs ?? []);
  }

  ack(ws: WebSocket, subscription: string, seq: number): void {
    if (!socketState(ws)?.subs?.includes(subscription)) {
      throw new DuckTailError(ErrorCode.notFound, `no subscription ${subscription} on this socket`);
    }
    // A seq never sent (a blind guess) releases nothing: the window stays shut and the bytes held.
    this.outlets.get(subscription)?.queue.ack(seq);
  }

  /** Tail messages from other replicas. */
  ongossip(msg: GossipMessage): GossipReply | null {
    const from = this.host.uid;
    switch (msg.type) {
      case "subscribe":
        this.host.store.saveSubscriptions(msg.subs);
        for (const sub of msg.subs) this.router.add(sub);
        return { type: "ok", from };
      case "unsubscribe":
        this.drop(msg.ids);
        return { type: "ok", from };
      case "tail":
        return { type: "tail-gone", from, ids: this.deliver(msg.batch) };
      default:
        return null;
    }
  }

  /** Runs a registration round; resolves with how many replicas know its subscriptions. */
  private async register({ subs, ids }: Registration): Promise<number> {
    if (subs.length > 0) {
      // Each subscription stored as it came, each answer would wait for its own commit (the
      // output gate): a thousand subscribes, a thousand commits. One per round instead: those
      // made while a round's commit is under way take the next round. Those unsubscribed before
      // their round began are not stored again.
      this.host.store.saveSubscriptions(subs.filter((sub) => this.router.get(sub.id)));
      await this.host.sync?.();
    }
    let known = 1;
    if (subs.length > 0) known = (await this.host.gossipAll({ type: "subscribe", subs })).length + 1;
    if (ids.length > 0) known = (await this.host.gossipAll({ type: "unsubscribe", ids })).length + 1;
    return known;
  }

  /** A new replica joined the tenant: tell it about the subscriptions held here. */
  announce(): void {
    const owned = this.router.list().filter((s) => s.owner === this.host.uid);
    if (owned.length > 0) this.host.waitUntil(this.host.gossipAll({ type: "subscribe", subs: owned }));
  }

  stats(): {
    subscriptions: number;
    subscribers: number;
    tailDropped: number;
    tailBufferedBytes: number;
    tailNotReadingClosed: number;
  } {
    let tailDropped = 0;
    let tailBufferedBytes = 0;
    for (const { queue } of this.outlets.values()) {
      tailDropped += queue.droppedTotal;
      tailBufferedBytes += queue.heldBytes;
    }
    return {
      subscriptions: this.router.size,
      subscribers: this.outlets.size,
      tailDropped,
      tailBufferedBytes,
      tailNotReadingClosed: this.notReadingClosed,
    };
  }

  private drop(ids: string[]): void {
    for (const id of ids) {
      this.router.remove(id);
      this.outlets.delete(id);
      this.host.store.deleteSubscription(id);
    }
  }

  /** Sends a batch to the replica holding its subscribers (settles when it took it). */
  private forward(owner: string, batch: TailBatch): Promise<void> {
    const sent = this.host.gossipTo(owner, { type: "tail", batch }).then(
      (reply) => {
        if (reply?.type === "tail-gone") this.drop(reply.ids);
      },
      (err) => console.error("ducktail: tail forward failed", err),
    );
    this.host.waitUntil(sent);
    return sent;
  }

  /** Queues a batch from another replica for this replica's subscribers and sends it; returns the subscriptions it no longer has. */
  private deliver(batch: TailBatch): string[] {
    for (const b of batch.subs) {
      const outlet = this.outletOf(b.subscription);
      outlet?.queue.enqueueFrom(batch.texts, b.events, b.dropped);
    }
    return this.sendQueued();
  }

  /** A match on this replica for one of its own subscribers: queued, sent by `sendQueued`. */
  private queueFor(subscription: string, text: LaterText): void {
    this.outletOf(subscription)?.queue.enqueueOne(text);
  }

  /** The outlet of a subscription matched here, marked as having events to send; null (and noted as gone) if it has none. */
  private outletOf(subscription: string): Outlet | null {
    const outlet = this.outlets.get(subscription) ?? this.openOutlet(subscription);
    if (!outlet) {
      this.gone.push(subscription);
      return null;
    }
    if (!outlet.touched) {
      outlet.touched = true;
      this.touched.push(outlet);
    }
    return outlet;
  }

  /** Sends what the touched outlets queued (or closes a socket holding too much); returns, and forgets, the gone subscriptions. */
  private sendQueued(): string[] {
    const touched = this.touched;
    this.touched = [];
    for (const outlet of touched) {
      outlet.touched = false;
      // Checked before sending, so what is written to a socket never passes the limit either.
      const held = this.heldBy(outlet.ws);
      if (held > this.maxBufferedBytes) this.closeNotReading(outlet.ws, held);
      else outlet.queue.send();
    }
    const gone = this.gone;
    if (gone.length === 0) return gone;
    this.gone = [];
    this.drop(gone);
    return gone;
  }

  /** Tail text the socket's subscriptions hold here. */
  private heldBy(ws: WebSocket): number {
    let held = 0;
    for (const id of socketState(ws)?.subs ?? []) held += this.outlets.get(id)?.queue.heldBytes ?? 0;
    return held;
  }

  /**
   * Frees what the socket held and closes it with the reason. Its subscriptions go at once (the
   * synchronous part of `unsubscribe`), so later matches for them are answered `tail-gone`.
   */
  private closeNotReading(ws: WebSocket, held: number): void {
    this.notReadingClosed++;
    const unsubscribed = this.unsubscribe(ws, socketState(ws)?.subs ?? []);
    this.host.waitUntil(
      unsubscribed.catch((err) => console.error("ducktail: unsubscribe of a stalled tail failed", err)),
    );
    try {
      ws.close(TAIL_NOT_READING_CLOSE_CODE, `tail: subscriber not reading; ${held} bytes unsent`);
    } catch {
      // already closing
    }
  }

  /**
   * The outlet of a subscription whose socket is here. Outlets are made at subscribe time; after a
   * wake-up (memory lost, sockets kept) they are rebuilt from the sockets' attachments, all in one
   * pass over the sockets, not one per subscription.
   */
  private openOutlet(subscription: string): Outlet | null {
    if (!this.outletsRebuilt) {
      this.outletsRebuilt = true;
      for (const ws of this.host.sockets()) {
        for (const id of socketState(ws)?.subs ?? []) if (!this.outlets.has(id)) this.addOutlet(id, ws);
      }
    }
    return this.outlets.get(subscription) ?? null;
  }

  private addOutlet(subscription: string, ws: WebSocket): Outlet {
    // sendText ignores a socket that is closing: its close handler unsubscribes.
    const outlet = { queue: new TailQueue(subscription, (text) => sendText(ws, text)), ws, touched: false };
    this.outlets.set(subscription, outlet);
    return outlet;
  }
}
