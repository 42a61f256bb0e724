import type { ClientFrame } from "../src/protocol/frames";
import { ClientErrorCode, DuckTailClientError } from "./errors";
import { uuid } from "./ids";
import type { IncomingFrame } from "./socket";
import { TailSubscription } from "./subscription";
import type { SubscribeOptions, TailFilter } from "./types";

/**
 * A client's live-tail subscriptions: sends `subscribe` (again on every new socket, since the
 * server drops a subscription with its socket), routes `tail` and `dropped` frames, and pairs
 * `unsubscribe` with its reply.
 */
export class LiveTails {
  /** By the `subscribe` frame id, and by the server's subscription id. */
  private readonly byRequest = new Map<string, TailSubscription>();
  private readonly byId = new Map<string, TailSubscription>();
  /** Pending `unsubscribe` replies, by frame id. */
  private readonly replies = new Map<string, () => void>();

  constructor(
    /** Sends a frame if the socket is writable; false otherwise. */
    private readonly send: (frame: ClientFrame) => boolean,
    private readonly report: (err: DuckTailClientError) => void,
  ) {}

  add(filter: TailFilter, options: SubscribeOptions): TailSubscription {
    const sub = new TailSubscription(uuid(), filter, options.sample, {
      ack: (subscription, seq) => this.send({ type: "tailAck", subscription, seq }),
      unsubscribe: (s) => this.unsubscribe(s),
    });
    this.byRequest.set(sub.requestId, sub);
    this.subscribe(sub); // if the socket is not open yet, `opened()` sends it
    return sub;
  }

  /** A new socket is open: (re)subscribe everything. */
  opened(): void {
    for (const sub of this.byRequest.values()) this.subscribe(sub);
  }

  /** The socket dropped, and the server's subscriptions and pending replies with it. */
  down(): void {
    for (const sub of this.byRequest.values()) sub.lost();
    this.byId.clear();
    this.settleReplies();
  }

  /** Ends (`err` undefined: the client closed) or fails every subscription. */
  endAll(err?: DuckTailClientError): void {
    for (const sub of this.byRequest.values()) {
      if (err) sub.fail(err);
      else sub.end();
    }
    this.byRequest.clear();
    this.byId.clear();
    this.settleReplies();
  }

  /** Handles a live-tail frame, or an error answering one; false for any other frame. */
  handle(f: IncomingFrame): boolean {
    switch (f.type) {
      case "subscribed":
        this.subscribed(f.id, f.subscription);
        return true;
      case "tail":
        this.byId.get(f.subscription)?.push(f);
        return true;
      case "dropped": {
        const sub = this.byId.get(f.subscription);
        if (sub) sub.dropped += f.count;
        const message = `the server dropped ${f.count} tail events: the consumer fell behind`;
        this.report(new DuckTailClientError(ClientErrorCode.tailDropped, message, undefined, f.count));
        return true;
      }
      case "unsubscribed":
        return this.reply(f.id);
      case "error": {
        const sub = f.id === undefined ? undefined : this.byRequest.get(f.id);
        if (!sub) return this.reply(f.id);
        this.byRequest.delete(sub.requestId);
        sub.fail(new DuckTailClientError(f.code, f.message));
        return true;
      }
      default:
        return false;
    }
  }

  private subscribe(sub: TailSubscription): void {
    this.send({ type: "subscribe", id: sub.requestId, filter: sub.filter, sample: sub.sample });
  }

  private subscribed(requestId: string | undefined, subscription: string): void {
    const sub = requestId === undefined ? undefined : this.byRequest.get(requestId);
    if (!sub) {
      this.send({ type: "unsubscribe", subscription }); // ended before the server answered
      return;
    }
    this.byId.set(subscription, sub);
    if (sub.subscribed(subscription)) {
      const message = "live tail resubscribed after a reconnect; events in between were missed";
      this.report(new DuckTailClientError(ClientErrorCode.tailGap, message));
    }
  }

  private unsubscribe(sub: TailSubscription): Promise<void> {
    this.byRequest.delete(sub.requestId);
    const subscription = sub.id;
    if (!subscription) return Promise.resolve();
    this.byId.delete(subscription);
    const id = uuid();
    return new Promise<void>((resolve) => {
      this.replies.set(id, resolve);
      if (!this.send({ type: "unsubscribe", id, subscription })) this.reply(id);
    });
  }

  private reply(id: string | undefined): boolean {
    const done = id === undefined ? undefined : this.replies.get(id);
    if (!done || id === undefined) return false;
    this.replies.delete(id);
    done();
    return true;
  }

  private settleReplies(): void {
    for (const done of this.replies.values()) done();
    this.replies.clear();
  }
}
