import type { TailEvent, TailFilter } from "../protocol/tail";
import { compileFilter, getter, type Test } from "./filters";

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

/**
 * What a replica just took, as live tail sees it: the events to match, and each one's JSON, made
 * at most once however many subscriptions match it (and only for events that match one).
 */
export interface TailOffer {
  readonly count: number;
  /** Event `i` as filters see it: asked for only when some filter looks at an event's fields. */
  event(i: number): TailEvent;
  json(i: number): string;
  /**
   * Event `i`'s JSON made when it is sent, not before: for this replica's own subscribers, whose
   * queues drop the oldest events of a subscriber that cannot keep up (most, under load).
   */
  later(i: number): LaterText;
}

/** An event's JSON, made (once) when asked; `bytes` estimates its length until then. */
export interface LaterText {
  readonly bytes: number;
  text(): string;
}

/** An offer of events with nothing precomputed (tests, and events not from the ingest path). */
export function offerOf(events: readonly TailEvent[]): TailOffer {
  const json = (i: number) => JSON.stringify(events[i]);
  return {
    count: events.length,
    event: (i) => events[i] as TailEvent,
    json,
    later: (i) => {
      const text = json(i);
      return { bytes: text.length, text: () => text };
    },
  };
}

/**
 * Matched events for the subscriptions of one owner replica, as forwarded to it: each event's
 * JSON once, and per subscription the indexes of its events in `texts` (in order), plus how many
 * the sender dropped for it while the owner was slow to take them.
 */
export interface TailBatch {
  texts: string[];
  subs: { subscription: string; events: number[]; dropped?: number }[];
}

/**
 * Where the router puts the matches for its own replica's subscribers, one at a time as it finds
 * them (no batch is built for them): `take` queues an event for a subscription; `end`, once per
 * offer, sends what the queues now hold (and drops the subscriptions this replica no longer has).
 */
export interface LocalSink {
  take(subscription: string, text: LaterText): void;
  end(): void;
}

interface Entry {
  sub: Subscription;
  /** Null for a filter that matches everything (it never needs the event). */
  match: Test | null;
}

/** What is waiting for one owner: the batch being built, and where each text of the current offer went. */
interface Pending {
  batch: TailBatch;
  bySub: Map<string, TailBatch["subs"][number]>;
  /** Event index of the current offer → its index in `batch.texts`. */
  placed: Map<number, number>;
  offer: TailOffer | null;
}

/** Most matched events waiting for one owner while a forward to it is in flight; past it they are dropped (and counted). */
export const DEFAULT_MAX_PENDING = 10_000;

/**
 * Every replica's filter table: matches the events it ingests against every subscription of
 * the tenant (filters compiled once; a filter with an `eq` predicate is indexed by its value, so
 * a thousand distinct filters cost a lookup per event, not a thousand tests) and sends only the
 * matches, one batch per owner replica.
 *
 * No timer: matches for an owner go out at once when nothing is in flight to it (an idle path
 * costs one hop), and ride the next batch while one is (so under load each owner gets one
 * forward at a time, as large as the load makes it). Matches for this replica's own subscribers
 * are delivered at once.
 */
export class TailRouter {
  private readonly entries = new Map<string, Entry>();
  /** Filters with an `eq` predicate, by its path and value. */
  private readonly indexed = new Map<string, { get: (e: TailEvent) => unknown; byValue: Map<unknown, Entry[]> }>();
  /** Filters without one: tested against every event. */
  private readonly scanned = new Set<Entry>();
  private readonly pending = new Map<string, Pending>();
  private readonly inFlight = new Set<string>();

  /** The current offer's event whose text this replica's own subscribers share, and that text. */
  private localAt = -1;
  private localText: LaterText | null = null;

  constructor(
    /** This replica (Durable Object id): its own matches are delivered, not forwarded. */
    private readonly self: string,
    /** Forwards a batch to another owner; the promise settles when the owner took it. */
    private readonly send: (owner: string, batch: TailBatch) => void | Promise<void>,
    /** Takes the matches for this replica's own subscribers. */
    private readonly local: LocalSink,
    private readonly maxPending = DEFAULT_MAX_PENDING,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  add(sub: Subscription): void {
    this.remove(sub.id);
    const entry: Entry = { sub, match: matchesAll(sub.filter) ? null : compileFilter(sub.filter) };
    this.entries.set(sub.id, entry);
    const eq = sub.filter.where?.find((p) => p.op === "eq");
    if (!eq) {
      this.scanned.add(entry);
      return;
    }
    let index = this.indexed.get(eq.path);
    if (!index) {
      index = { get: getter(eq.path), byValue: new Map() };
      this.indexed.set(eq.path, index);
    }
    const list = index.byValue.get(eq.value);
    if (list) list.push(entry);
    else index.byValue.set(eq.value, [entry]);
  }

  remove(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.entries.delete(id);
    if (!this.scanned.delete(entry)) {
      const eq = entry.sub.filter.where?.find((p) => p.op === "eq");
      const index = eq && this.indexed.get(eq.path);
      const list = index?.byValue.get(eq?.value);
      if (index && list) {
        const rest = list.filter((e) => e !== entry);
        if (rest.length > 0) index.byValue.set(eq?.value, rest);
        else index.byValue.delete(eq?.value);
        if (index.byValue.size === 0) this.indexed.delete(eq?.path as string);
      }
    }
    return true;
  }

  get(id: string): Subscription | undefined {
    return this.entries.get(id)?.sub;
  }

  list(): Subscription[] {
    return [...this.entries.values()].map((e) => e.sub);
  }

  /** Matches ingested events (cheap when there are no subscriptions: the caller checks `size` first). */
  offer(offer: TailOffer): void {
    for (let i = 0; i < offer.count; i++) {
      let e: TailEvent | null = null;
      for (const entry of this.scanned) {
        if (entry.match !== null) {
          e ??= offer.event(i);
          if (!entry.match(e)) continue;
        }
        this.take(entry, i, offer);
      }
      if (this.indexed.size === 0) continue;
      e ??= offer.event(i);
      for (const index of this.indexed.values()) {
        const list = index.byValue.get(index.get(e));
        if (list) for (const entry of list) if ((entry.match as Test)(e)) this.take(entry, i, offer);
      }
    }
    this.localAt = -1;
    this.localText = null;
    this.local.end();
    for (const [owner, p] of this.pending) {
      p.offer = null;
      p.placed.clear();
      if (!this.inFlight.has(owner)) this.dispatch(owner);
    }
  }

  /** How many matched events wait for owners with a forward in flight. */
  get waiting(): number {
    let n = 0;
    for (const p of this.pending.values()) n += p.batch.texts.length;
    return n;
  }

  /** A match of event `i` for `entry`'s subscription (unless its sample leaves it out). */
  private take(entry: Entry, i: number, offer: TailOffer): void {
    const { sub } = entry;
    if (sub.sample < 1 && Math.random() >= sub.sample) return;
    if (sub.owner === this.self) {
      // Straight to the subscriber's queue: no batch is built for what stays here.
      if (this.localAt !== i || this.localText === null) {
        this.localAt = i;
        this.localText = offer.later(i);
      }
      this.local.take(sub.id, this.localText);
      return;
    }
    let p = this.pending.get(sub.owner);
    if (!p) {
      p = { batch: { texts: [], subs: [] }, bySub: new Map(), placed: new Map(), offer };
      this.pending.set(sub.owner, p);
    } else if (p.offer !== offer) {
      p.offer = offer;
      p.placed.clear();
    }
    let forSub = p.bySub.get(sub.id);
    if (!forSub) {
      forSub = { subscription: sub.id, events: [] };
      p.bySub.set(sub.id, forSub);
      p.batch.subs.push(forSub);
    }
    let at = p.placed.get(i);
    if (at === undefined) {
      if (p.batch.texts.length >= this.maxPending) {
        forSub.dropped = (forSub.dropped ?? 0) + 1;
        return;
      }
      at = p.batch.texts.push(offer.json(i)) - 1;
      p.placed.set(i, at);
    }
    forSub.events.push(at);
  }

  /** Sends what waits for `owner`; for another replica, the next batch goes when this one settles. */
  private dispatch(owner: string): void {
    const p = this.pending.get(owner);
    if (!p) return;
    this.pending.delete(owner);
    this.inFlight.add(owner);
    const settled = () => {
      this.inFlight.delete(owner);
      this.dispatch(owner);
    };
    try {
      Promise.resolve(this.send(owner, p.batch)).then(settled, settled);
    } catch {
      settled();
    }
  }
}

/** Whether a filter asks nothing of an event (every event matches it). */
function matchesAll(filter: TailFilter): boolean {
  return !filter.source && !filter.type && !filter.minImportance && (filter.where ?? []).length === 0;
}

/** Frames a subscriber's queue sends. */

/**
 * How far one `seq` is from the next: 1..2^24 at random. A server-side WebSocket in workerd has no
 * backpressure signal (no `bufferedAmount`), so an acknowledgement is the only sign that a frame was
 * read; with unguessable seqs, only a subscriber that read a frame can acknowledge it. A blind
 * acker ("1, 2, 3, ...") releases nothing. 2^53 / 2^24 leaves room for 2^29 frames.
 */
export function randomSeqStep(): number {
  // One call for 1,024 steps: a thousand subscribers' frames would otherwise make a thousand.
  if (randomAt >= randoms.length) {
    crypto.getRandomValues(randoms);
    randomAt = 0;
  }
  return 1 + ((randoms[randomAt++] as number) & 0xffffff);
}

const randoms = new Uint32Array(1024);
let randomAt = randoms.length;

/**
 * One subscriber's bounded queue on its owner replica. The subscriber acknowledges tail frames
 * (`tailAck` with the `seq` of the last frame it processed) and at most `window` frames are
 * unacknowledged at a time. Past `capacity` queued events the oldest go, and the next frame the
 * subscriber can take is `{type:"dropped", count}`. Events are kept as their JSON text, so what the
 * subscriber holds on the server is known in bytes (`heldBytes`: queued plus sent but unacknowledged,
 * counted in UTF-16 units, a byte each for ASCII) for its owner to cap per socket.
 */
export class TailQueue {
  /**
   * Events as JSON text (or to be made when sent), oldest first from `head`: taking from the front
   * or dropping the oldest moves `head`, never the rest of the array (a subscriber that cannot keep
   * up drops one event per event ingested).
   */
  private queue: (string | LaterText | undefined)[] = [];
  private head = 0;
  private queuedBytes = 0;
  private dropped = 0;
  /** Frames sent and not yet acknowledged, oldest first: their seqs, and their text's sizes (numbers, no objects). */
  private readonly unackedSeqs: number[] = [];
  private readonly unackedSizes: number[] = [];
  private unackedBytes = 0;
  private seq = 0;
  /** Events dropped over the life of the subscription (stats). */
  droppedTotal = 0;
  /** Every tail frame's text up to its seq, made once. */
  private readonly framePrefix: string;

  constructor(
    readonly subscription: string,
    private readonly deliver: (text: string) => void,
    private readonly capacity = 1000,
    private readonly window = 16,
    private readonly frameEvents = 100,
    private readonly seqStep: () => number = randomSeqStep,
  ) {
    this.framePrefix = `{"type":"tail","subscription":${JSON.stringify(subscription)},"seq":`;
  }

  /** Queues events and sends what the window allows. */
  push(events: readonly TailEvent[]): void {
    this.enqueue(events.map((e) => JSON.stringify(e)));
    this.send();
  }

  /** `enqueue` of one event: what a subscriber that keeps up gets, with no array made. */
  enqueueOne(text: string | LaterText): void {
    this.queue.push(text);
    this.queuedBytes += bytesOf(text);
    if (this.queued > this.capacity) this.dropOldest(1);
  }

  /** `enqueue` of `texts[i]` for each of `indexes` (a forwarded batch's events for this subscriber). */
  enqueueFrom(texts: readonly string[], indexes: readonly number[], droppedBefore = 0): void {
    this.enqueue(
      indexes.map((i) => texts[i] as string),
      droppedBefore,
    );
  }

  /**
   * Queues events (their JSON, shared with every other subscriber they matched) without sending,
   * so the owner can check what the socket holds first. `droppedBefore`: events the sender
   * dropped for this subscriber before these, reported like the queue's own drops.
   */
  enqueue(texts: readonly (string | LaterText)[], droppedBefore = 0): void {
    // Events past `capacity` in one push would be dropped at once: not worth queueing.
    const skip = Math.max(0, texts.length - this.capacity);
    for (let i = skip; i < texts.length; i++) {
      const text = texts[i] as string | LaterText;
      this.queue.push(text);
      this.queuedBytes += bytesOf(text);
    }
    this.dropped += droppedBefore + skip;
    this.droppedTotal += droppedBefore + skip;
    const over = this.queued - this.capacity;
    if (over > 0) this.dropOldest(over);
  }

  /** Drops the `n` oldest queued events, counting them for the next `dropped` frame. */
  private dropOldest(n: number): void {
    for (let i = 0; i < n; i++) {
      this.queuedBytes -= bytesOf(this.queue[this.head] as string | LaterText);
      this.queue[this.head++] = undefined;
    }
    this.dropped += n;
    this.droppedTotal += n;
    this.compact();
  }

  /** Takes the `n` oldest queued events. */
  private take(n: number): (string | LaterText)[] {
    const taken = this.queue.slice(this.head, this.head + n) as (string | LaterText)[];
    this.head += taken.length;
    this.queuedBytes -= size(taken);
    this.compact();
    return taken;
  }

  /** Empties the array once every event left it, or cuts what is behind `head` once that is most of it. */
  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * The subscriber processed every frame up to the one numbered `seq`. A seq this queue has not
   * sent (a guess, or one from before the replica restarted) acknowledges nothing: returns false.
   */
  ack(seq: number): boolean {
    const i = this.unackedSeqs.indexOf(seq);
    if (i < 0) return false;
    for (let k = 0; k <= i; k++) this.unackedBytes -= this.unackedSizes[k] as number;
    this.unackedSeqs.copyWithin(0, i + 1);
    this.unackedSizes.copyWithin(0, i + 1);
    this.unackedSeqs.length -= i + 1;
    this.unackedSizes.length -= i + 1;
    this.send();
    return true;
  }

  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Tail text this subscriber holds on the server: queued, plus sent and not acknowledged. */
  get heldBytes(): number {
    return this.queuedBytes + this.unackedBytes;
  }

  /** Sends frames while fewer than `window` are unacknowledged: the drop report first, then events. */
  send(): void {
    while (this.unackedSeqs.length < this.window && (this.dropped > 0 || this.queued > 0)) {
      if (this.dropped > 0) {
        this.deliver(JSON.stringify({ type: "dropped", subscription: this.subscription, count: this.dropped }));
        this.dropped = 0;
        continue;
      }
      let events: string;
      if (this.head === 0 && this.queue.length === 1) {
        // The common case of a live tail that keeps up: one event, no arrays made or freed.
        const only = this.queue.pop() as string | LaterText;
        this.queuedBytes -= bytesOf(only);
        events = textOf(only);
      } else {
        events = this.take(this.frameEvents).map(textOf).join(",");
      }
      this.seq += this.seqStep();
      const text = `${this.framePrefix}${this.seq},"events":[${events}]}`;
      this.unackedSeqs.push(this.seq);
      this.unackedSizes.push(text.length);
      this.unackedBytes += text.length;
      this.deliver(text);
    }
  }
}

function bytesOf(t: string | LaterText): number {
  return typeof t === "string" ? t.length : t.bytes;
}

function size(texts: readonly (string | LaterText)[]): number {
  let n = 0;
  for (const t of texts) n += bytesOf(t);
  return n;
}

function textOf(t: string | LaterText): string {
  return typeof t === "string" ? t : t.text();
}
