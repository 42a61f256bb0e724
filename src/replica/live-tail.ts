import { type TailEvent, validateFilter } from "../gossip/filters";
import type { GossipMessage, GossipReply } from "../gossip/messages";
import { type Subscription, type TailBatch, type TailFrame, TailQueue, TailRouter } from "../gossip/tail";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import { attach, socketState } from "./sockets";
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
}

/**
 * A replica's part in the tenant's live tail. Every replica keeps the whole tenant's filter
 * table (persisted, so it survives eviction) and matches what it ingests; matches go to the
 * replica holding the subscriber (the owner), which queues them per subscriber (TailQueue) and
 * pushes `tail` frames. A replica that gets matches for a subscription its owner no longer has
 * is told so (`tail-gone`) and drops it: the table heals after an owner crash.
 */
export class LiveTail {
  private readonly router: TailRouter;
  private readonly queues = new Map<string, TailQueue>();

  constructor(private readonly host: TailHost) {
    this.router = new TailRouter((owner, batches) => host.waitUntil(this.forward(owner, batches)));
    for (const sub of host.store.subscriptions()) this.router.add(sub);
  }

  /** Whether any subscription exists (the ingest path skips building tail events otherwise). */
  get active(): boolean {
    return this.router.size > 0;
  }

  offer(events: TailEvent[]): void {
    this.router.offer(events);
  }

  /** A `subscribe` frame: registers the filter on every replica, then answers. */
  async subscribe(ws: WebSocket, rawFilter: unknown, rawSample: unknown): Promise<{ id: string; replicas: number }> {
    const state = socketState(ws);
    if (!state) throw new DuckTailError(ErrorCode.internal, "socket state lost");
    const filter = validateFilter(rawFilter);
    const sample = rawSample === undefined ? 1 : Number(rawSample);
    if (!(sample > 0 && sample <= 1)) throw new DuckTailError(ErrorCode.badRequest, "sample must be in (0, 1]");
    const sub: Subscription = { id: crypto.randomUUID(), owner: this.host.uid, client: state.client, filter, sample };
    this.host.store.saveSubscription(sub);
    this.router.add(sub);
    attach(ws, { ...state, subs: [...(state.subs ?? []), sub.id] });
    const replies = await this.host.gossipAll({ type: "subscribe", subs: [sub] });
    return { id: sub.id, replicas: replies.length + 1 };
  }

  /** An `unsubscribe` frame, or the subscriber's socket closing. */
  async unsubscribe(ws: WebSocket, ids: string[]): Promise<void> {
    const state = socketState(ws);
    const mine = ids.filter((id) => state?.subs?.includes(id));
    if (mine.length === 0) return;
    if (state) attach(ws, { ...state, subs: (state.subs ?? []).filter((id) => !mine.includes(id)) });
    this.drop(mine);
    await this.host.gossipAll({ type: "unsubscribe", ids: mine });
  }

  /** Every subscription a closing socket held. */
  closed(ws: WebSocket): Promise<void> {
    return this.unsubscribe(ws, socketState(ws)?.subs ?? []);
  }

  ack(ws: WebSocket, subscription: string, seq: number): void {
    if (!socketState(ws)?.subs?.includes(subscription)) {
      throw new DuckTailError(ErrorCode.notFound, `no subscription ${subscription} on this socket`);
    }
    this.queues.get(subscription)?.ack(seq);
  }

  /** Tail messages from other replicas. */
  ongossip(msg: GossipMessage): GossipReply | null {
    const from = this.host.uid;
    switch (msg.type) {
      case "subscribe":
        for (const sub of msg.subs) {
          this.host.store.saveSubscription(sub);
          this.router.add(sub);
        }
        return { type: "ok", from };
      case "unsubscribe":
        this.drop(msg.ids);
        return { type: "ok", from };
      case "tail":
        return { type: "tail-gone", from, ids: this.deliver(msg.batches) };
      default:
        return null;
    }
  }

  /** A new replica joined the tenant: tell it about the subscriptions held here. */
  announce(): void {
    const owned = this.router.list().filter((s) => s.owner === this.host.uid);
    if (owned.length > 0) this.host.waitUntil(this.host.gossipAll({ type: "subscribe", subs: owned }));
  }

  stats(): { subscriptions: number; subscribers: number; tailDropped: number } {
    let tailDropped = 0;
    for (const q of this.queues.values()) tailDropped += q.droppedTotal;
    return { subscriptions: this.router.size, subscribers: this.queues.size, tailDropped };
  }

  private drop(ids: string[]): void {
    for (const id of ids) {
      this.router.remove(id);
      this.queues.delete(id);
      this.host.store.deleteSubscription(id);
    }
  }

  private async forward(owner: string, batches: TailBatch[]): Promise<void> {
    if (owner === this.host.uid) {
      this.drop(this.deliver(batches));
      return;
    }
    try {
      const reply = await this.host.gossipTo(owner, { type: "tail", batches });
      if (reply?.type === "tail-gone") this.drop(reply.ids);
    } catch (err) {
      console.error("ducktail: tail forward failed", err);
    }
  }

  /** Queues batches for this replica's subscribers; returns the subscriptions it no longer has. */
  private deliver(batches: TailBatch[]): string[] {
    const gone: string[] = [];
    for (const b of batches) {
      const queue = this.queues.get(b.subscription) ?? this.openQueue(b.subscription);
      if (queue) queue.push(b.events);
      else gone.push(b.subscription);
    }
    return gone;
  }

  /** The queue of a subscription whose socket is here (after a wake-up, found by its attachment). */
  private openQueue(subscription: string): TailQueue | null {
    const ws = this.host.sockets().find((w) => socketState(w)?.subs?.includes(subscription));
    if (!ws) return null;
    const queue = new TailQueue(subscription, (frame: TailFrame) => {
      try {
        ws.send(JSON.stringify(frame));
      } catch {
        // closing: its close handler unsubscribes
      }
    });
    this.queues.set(subscription, queue);
    return queue;
  }
}
