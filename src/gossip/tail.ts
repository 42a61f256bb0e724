import type { TailEvent, TailFilter } from "../protocol/tail";
import { compileFilter } from "./filters";

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

/**
 * How far one `seq` is from the next: 1..2^24 at random. A server-side WebSocket in workerd has no
 * backpressure signal (no `bufferedAmount`), so an acknowledgement is the only sign that a frame was
 * read; with unguessable seqs, only a subscriber that read a frame can acknowledge it. A blind
 * acker ("1, 2, 3, ...") releases nothing. 2^53 / 2^24 leaves room for 2^29 frames.
 */
export function randomSeqStep(): number {
  return 1 + ((crypto.getRandomValues(new Uint32Array(1))[0] as number) & 0xffffff);
}

/**
 * One subscriber's bounded queue on its owner replica. The subscriber acknowledges tail frames
 * (`tailAck` with the `seq` of the last frame it processed) and at most `window` frames are
 * unacknowledged at a time. Past `capacity` queued events the oldest go, and the next frame the
 * subscriber can take is `{type:"dropped", count}`. Events are kept as their JSON text, so what the
 * subscriber holds on the server is known in bytes (`heldBytes`: queued plus sent but unacknowledged,
 * counted in UTF-16 units, a byte each for ASCII) for its owner to cap per socket.
 */
export class TailQueue {
  /** Events as JSON text, oldest first. */
  private queue: string[] = [];
  private queuedBytes = 0;
  private dropped = 0;
  /** Frames sent and not yet acknowledged, oldest first, with their text's size. */
  private readonly unacked: { seq: number; bytes: number }[] = [];
  private unackedBytes = 0;
  private seq = 0;
  /** Events dropped over the life of the subscription (stats). */
  droppedTotal = 0;

  constructor(
    readonly subscription: string,
    private readonly deliver: (text: string) => void,
    private readonly capacity = 1000,
    private readonly window = 16,
    private readonly frameEvents = 100,
    private readonly seqStep: () => number = randomSeqStep,
  ) {}

  /** Queues events and sends what the window allows. */
  push(events: readonly TailEvent[]): void {
    this.enqueue(events);
    this.send();
  }

  /** Queues events without sending, so the owner can check what the socket holds first. */
  enqueue(events: readonly TailEvent[]): void {
    // Events past `capacity` in one push would be dropped at once: not worth their JSON.
    const skip = Math.max(0, events.length - this.capacity);
    for (let i = skip; i < events.length; i++) {
      const text = JSON.stringify(events[i]);
      this.queue.push(text);
      this.queuedBytes += text.length;
    }
    const over = this.queue.length - this.capacity;
    if (over > 0) this.queuedBytes -= size(this.queue.splice(0, over));
    const lost = skip + Math.max(0, over);
    this.dropped += lost;
    this.droppedTotal += lost;
  }

  /**
   * The subscriber processed every frame up to the one numbered `seq`. A seq this queue has not
   * sent (a guess, or one from before the replica restarted) acknowledges nothing: returns false.
   */
  ack(seq: number): boolean {
    const i = this.unacked.findIndex((f) => f.seq === seq);
    if (i < 0) return false;
    for (const f of this.unacked.splice(0, i + 1)) this.unackedBytes -= f.bytes;
    this.send();
    return true;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Tail text this subscriber holds on the server: queued, plus sent and not acknowledged. */
  get heldBytes(): number {
    return this.queuedBytes + this.unackedBytes;
  }

  /** Sends frames while fewer than `window` are unacknowledged: the drop report first, then events. */
  send(): void {
    while (this.unacked.length < this.window && (this.dropped > 0 || this.queue.length > 0)) {
      if (this.dropped > 0) {
        this.deliver(JSON.stringify({ type: "dropped", subscription: this.subscription, count: this.dropped }));
        this.dropped = 0;
        continue;
      }
      const events = this.queue.splice(0, this.frameEvents);
      this.queuedBytes -= size(events);
      this.seq += this.seqStep();
      const text = `{"type":"tail","subscription":${JSON.stringify(this.subscription)},"seq":${this.seq},"events":[${events.join(",")}]}`;
      this.unacked.push({ seq: this.seq, bytes: text.length });
      this.unackedBytes += text.length;
      this.deliver(text);
    }
  }
}

function size(texts: readonly string[]): number {
  let n = 0;
  for (const t of texts) n += t.length;
  return n;
}
