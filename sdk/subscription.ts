import type { TailFrame } from "../src/protocol/tail";
import type { DuckTailClientError } from "./errors";
import type { TailEvent, TailFilter } from "./types";

type TailEventsFrame = Extract<TailFrame, { type: "tail" }>;

/** Acknowledge every this many consumed frames, or this long after the first one not yet acknowledged. */
const ACK_EVERY = 8;
const ACK_DELAY_MS = 1_000;

/** What a subscription needs from its client. */
export interface TailLink {
  /** Sends `tailAck`; false when the socket is down (the server forgot the subscription then). */
  ack(subscription: string, seq: number): boolean;
  /** Sends `unsubscribe` and resolves on `unsubscribed` (or at once if the socket is down). */
  unsubscribe(sub: TailSubscription): Promise<void>;
}

/**
 * A live tail as an async iterator of events. A tail frame is acknowledged (`tailAck`) only when
 * the consumer, having pulled its last event, asks for the next one, so a slow consumer holds the
 * server at its window of unacknowledged frames and the server drops (and counts) instead of
 * flooding it. Breaking out of `for await` calls `return()`, which unsubscribes.
 */
export class TailSubscription implements AsyncIterableIterator<TailEvent> {
  /** The server's subscription id; null until subscribed, renewed after a reconnect. */
  id: string | null = null;
  /** Events the server dropped because this consumer fell behind (also reported to `onError`). */
  dropped = 0;
  /** The last tail frame `seq` acknowledged. */
  acked = 0;
  /** Resolves once the server confirmed the subscription; rejects if it refused (e.g. "forbidden"). */
  readonly ready: Promise<void>;
  private frames: { frame: TailEventsFrame; next: number }[] = [];
  /** The last frame consumed, and how many consumed frames its ack has yet to cover. */
  private consumed = 0;
  private unackedFrames = 0;
  private ackTimer: ReturnType<typeof setTimeout> | null = null;
  private waiters: (() => void)[] = [];
  private failure: DuckTailClientError | null = null;
  private ended = false;
  private confirmed = false;
  private confirm!: () => void;
  private refuse!: (err: DuckTailClientError) => void;

  constructor(
    /** The `id` of the `subscribe` frame (its reply echoes it). */
    readonly requestId: string,
    readonly filter: TailFilter,
    readonly sample: number | undefined,
    private readonly link: TailLink,
  ) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.confirm = resolve;
      this.refuse = reject;
    });
    this.ready.catch(() => {}); // the same error reaches next()
  }

  /** Whether `return()` or the client's `close()` ended it. */
  get done(): boolean {
    return this.ended;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<TailEvent>> {
    for (;;) {
      this.ackConsumed();
      const head = this.frames[0];
      if (head) return { value: head.frame.events[head.next++] as TailEvent, done: false };
      if (this.failure) throw this.failure;
      if (this.ended) return { value: undefined, done: true };
      await new Promise<void>((wake) => this.waiters.push(wake));
    }
  }

  async return(): Promise<IteratorResult<TailEvent>> {
    if (!this.ended) {
      this.end();
      await this.link.unsubscribe(this);
    }
    return { value: undefined, done: true };
  }

  // ---- called by the client -------------------------------------------------------------------

  /** The server confirmed; true when this renews a subscription lost with a socket. */
  subscribed(id: string): boolean {
    const renewed = this.confirmed;
    this.id = id;
    this.confirmed = true;
    this.confirm();
    return renewed;
  }

  push(frame: TailEventsFrame): void {
    if (this.ended) return;
    this.frames.push({ frame, next: 0 });
    this.wake();
  }

  /** The socket dropped: the server removed the subscription with it. */
  lost(): void {
    this.id = null;
    this.unackedFrames = 0;
  }

  fail(err: DuckTailClientError): void {
    this.failure = err;
    this.refuse(err);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.frames = [];
    if (this.ackTimer !== null) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.wake();
  }

  /**
   * Acknowledges the frames whose events the consumer has all pulled. An ack covers every frame up
   * to its seq, so one goes every ACK_EVERY frames (half the server's window of 16, so the window
   * never shuts on a reader that keeps up), or ACK_DELAY_MS after the first unacknowledged one: a
   * subscriber of a steady trickle sends an ack a second instead of one per frame (an inbound frame
   * costs the server more than the tail frame it acks).
   */
  private ackConsumed(): void {
    for (let head = this.frames[0]; head && head.next >= head.frame.events.length; head = this.frames[0]) {
      this.frames.shift();
      // Frames of a subscription lost with its socket are not acked: the new one counts anew.
      if (head.frame.subscription !== this.id) continue;
      this.consumed = head.frame.seq;
      if (++this.unackedFrames >= ACK_EVERY) this.sendAck();
    }
    if (this.unackedFrames > 0 && this.ackTimer === null) {
      this.ackTimer = setTimeout(() => this.sendAck(), ACK_DELAY_MS);
      (this.ackTimer as { unref?: () => void }).unref?.();
    }
  }

  private sendAck(): void {
    if (this.ackTimer !== null) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (this.unackedFrames === 0 || this.id === null) return;
    this.unackedFrames = 0;
    if (this.link.ack(this.id, this.consumed)) this.acked = this.consumed;
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}
