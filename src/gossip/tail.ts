import { compileFilter, type TailEvent, type TailFilter } from "./filters";

/** A live-tail subscription, known to every replica of the tenant. */
export interface Subscription {
  id: string;
  /** The replica (Durable Object id) holding the subscriber's socket. */
  owner: string;
  /** dog's client id of the subscriber. */
  client: string;
  filter: TailFilter;
  /** Share of matching events to forward, 0..1. */
  sample: number;
}

/** Matched events for one subscription, as forwarded to its owner. */
export interface TailBatch {
  subscription: string;
  events: TailEvent[];
}

interface Entry {
  sub: Subscription;
  match: (e: TailEvent) => boolean;
}

/**
 * Every replica's filter table: matches the events it ingests against every subscription of
 * the tenant (filters compiled once) and forwards only the matches, batched per owner replica:
 * at most every `flushMs`, or at once past `maxBatch` events.
 */
export class TailRouter {
  private readonly entries = new Map<string, Entry>();
  private pending = new Map<string, Map<string, TailEvent[]>>();
  private pendingCount = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly send: (owner: string, batches: TailBatch[]) => void,
    private readonly flushMs = 10,
    private readonly maxBatch = 200,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  add(sub: Subscription): void {
    this.entries.set(sub.id, { sub, match: compileFilter(sub.filter) });
  }

  remove(id: string): boolean {
    return this.entries.delete(id);
  }

  get(id: string): Subscription | undefined {
    return this.entries.get(id)?.sub;
  }

  list(): Subscription[] {
    return [...this.entries.values()].map((e) => e.sub);
  }

  /** Matches ingested events (cheap when there are no subscriptions: the caller checks `size` first). */
  offer(events: readonly TailEvent[]): void {
    for (const { sub, match } of this.entries.values()) {
      let out: TailEvent[] | undefined;
      for (const e of events) {
        if (!match(e) || (sub.sample < 1 && Math.random() >= sub.sample)) continue;
        if (!out) out = this.queue(sub);
        out.push(e);
        this.pendingCount++;
      }
    }
    if (this.pendingCount >= this.maxBatch) this.flush();
    else if (this.pendingCount > 0) this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /** Sends everything pending now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const pending = this.pending;
    this.pending = new Map();
    this.pendingCount = 0;
    for (const [owner, bySub] of pending) {
      this.send(
        owner,
        [...bySub].map(([subscription, events]) => ({ subscription, events })),
      );
    }
  }

  private queue(sub: Subscription): TailEvent[] {
    let bySub = this.pending.get(sub.owner);
    if (!bySub) {
      bySub = new Map();
      this.pending.set(sub.owner, bySub);
    }
    let list = bySub.get(sub.id);
    if (!list) {
      list = [];
      bySub.set(sub.id, list);
    }
    return list;
  }
}

/** Frames a subscriber's queue sends. */
export type TailFrame =
  | { type: "tail"; subscription: string; seq: number; events: TailEvent[] }
  | { type: "dropped"; subscription: string; count: number };

/**
 * One subscriber's bounded queue on its owner replica. A server-side WebSocket in workerd has no
 * backpressure signal, so the subscriber acknowledges tail frames (`tailAck` with the last `seq`
 * it processed) and at most `window` frames are unacknowledged at a time. Past `capacity` queued
 * events the oldest go, and the next frame the subscriber can take is `{type:"dropped", count}`.
 * A subscriber that never reads costs at most `capacity` events and `window` frames of memory,
 * and never slows ingest or other subscribers.
 */
export class TailQueue {
  private queue: TailEvent[] = [];
  private dropped = 0;
  private seq = 0;
  private acked = 0;
  /** Events dropped over the life of the subscription (stats). */
  droppedTotal = 0;

  constructor(
    readonly subscription: string,
    private readonly deliver: (frame: TailFrame) => void,
    private readonly capacity = 1000,
    private readonly window = 16,
    private readonly frameEvents = 100,
  ) {}

  push(events: readonly TailEvent[]): void {
    for (const e of events) this.queue.push(e);
    const over = this.queue.length - this.capacity;
    if (over > 0) {
      this.queue.splice(0, over);
      this.dropped += over;
      this.droppedTotal += over;
    }
    this.pump();
  }

  /** The subscriber processed every frame up to `seq`. */
  ack(seq: number): void {
    if (Number.isInteger(seq) && seq > this.acked && seq <= this.seq) this.acked = seq;
    this.pump();
  }

  get queued(): number {
    return this.queue.length;
  }

  private pump(): void {
    while (this.seq - this.acked < this.window && (this.dropped > 0 || this.queue.length > 0)) {
      if (this.dropped > 0) {
        this.deliver({ type: "dropped", subscription: this.subscription, count: this.dropped });
        this.dropped = 0;
        continue;
      }
      const events = this.queue.splice(0, this.frameEvents);
      this.deliver({ type: "tail", subscription: this.subscription, seq: ++this.seq, events });
    }
  }
}
