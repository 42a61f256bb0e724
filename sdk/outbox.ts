import { DEFAULT_LIMITS } from "../src/protocol/limits";
import { ClientErrorCode, DuckTailClientError } from "./errors";
import { uuid } from "./ids";
import type { EventInput, IngestResult, TrackResult } from "./types";

/** An event waiting for its ack. */
interface Pending {
  id: string;
  json: string;
  bytes: number;
  settled: Promise<TrackResult>;
  resolve: (result: TrackResult) => void;
  reject: (err: DuckTailClientError) => void;
}

/** A batch on its way: the frame id its ack echoes, and the events as a JSON array. */
export interface Batch {
  id: string;
  events: string;
}

// Room for the frame's own fields around the events, under the server's frame limit.
const FRAME_BUDGET = DEFAULT_LIMITS.maxFrameBytes - 1024;
const encoder = new TextEncoder();
// Events are measured by encoding into this (no allocation per event); one that fills it is too large.
const scratch = new Uint8Array(FRAME_BUDGET + 1);

/**
 * Every event the client holds until the server answers for it: queued, then in flight in a
 * batch under a frame id. At most `maxQueue` in all; past that `add` refuses ("queue_full").
 * Each event settles exactly once, and every failure also goes to `report`.
 */
export class Outbox {
  /** Queued events are `queue[head…]`: taking a batch moves `head` instead of shifting the array. */
  private queue: Pending[] = [];
  private head = 0;
  /** Events queued or in flight. */
  private held = 0;
  private readonly inFlight = new Map<string, { items: Pending[]; events: string }>();

  constructor(
    private readonly maxBatchSize: number,
    private readonly maxQueue: number,
    private readonly report: (err: DuckTailClientError) => void,
  ) {}

  /** Events queued, not yet sent. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Queues an event; the promise settles with the server's answer for it. */
  add(event: EventInput & { id: string }): Promise<TrackResult> {
    let resolve!: Pending["resolve"];
    let reject!: Pending["reject"];
    const settled = new Promise<TrackResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    settled.catch(() => {}); // failures also reach `report`; awaiting the promise still throws
    const p: Pending = { id: event.id, json: "", bytes: 0, settled, resolve, reject };
    if (this.held >= this.maxQueue) {
      const message = `${this.maxQueue} events already wait for an ack (maxQueue); event not sent`;
      return this.refuse(p, ClientErrorCode.queueFull, message);
    }
    try {
      p.json = JSON.stringify(event);
    } catch (err) {
      return this.refuse(p, "invalid_event", (err as Error).message);
    }
    p.bytes = p.json.length * 3 <= FRAME_BUDGET ? encoder.encodeInto(p.json, scratch).written : FRAME_BUDGET + 1;
    if (p.bytes > FRAME_BUDGET) p.bytes = encoder.encode(p.json).byteLength;
    // The server could not even read such a frame to say which event was too large.
    if (p.bytes > FRAME_BUDGET) return this.refuse(p, "event_too_large", `event is ${p.bytes} bytes`);
    this.queue.push(p);
    this.held++;
    return settled;
  }

  /** Moves the next batch (≤ maxBatchSize events, ≤ the frame limit) in flight under a fresh id. */
  take(): Batch | null {
    let n = 0;
    let bytes = 0;
    for (let i = this.head; i < this.queue.length; i++) {
      const p = this.queue[i] as Pending;
      if (n === this.maxBatchSize || (n > 0 && bytes + p.bytes > FRAME_BUDGET)) break;
      bytes += p.bytes + 1;
      n++;
    }
    if (n === 0) return null;
    const items = this.queue.slice(this.head, this.head + n);
    this.head += n;
    if (this.head === this.queue.length || (this.head > 4096 && this.head * 2 > this.queue.length)) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    const batch = { id: uuid(), events: `[${items.map((p) => p.json).join(",")}]` };
    this.inFlight.set(batch.id, { items, events: batch.events });
    return batch;
  }

  /** Every batch in flight, in send order: what a new socket must send again. */
  sent(): Batch[] {
    return [...this.inFlight].map(([id, b]) => ({ id, events: b.events }));
  }

  /** Puts a batch (or, without an id, every batch) in flight back at the front of the queue. */
  requeue(id?: string): void {
    const ids = id === undefined ? [...this.inFlight.keys()] : [id];
    const back = ids.flatMap((i) => this.inFlight.get(i)?.items ?? []);
    for (const i of ids) this.inFlight.delete(i);
    this.queue = back.concat(this.queue.slice(this.head));
    this.head = 0;
  }

  /** Settles a batch from its ack: `rejected[].index` points into the batch. False if unknown. */
  ack(id: string, result: IngestResult): boolean {
    const batch = this.inFlight.get(id);
    if (!batch) return false;
    this.inFlight.delete(id);
    this.held -= batch.items.length;
    const rejected = new Map(result.rejected.map((r) => [r.index, r]));
    batch.items.forEach((p, i) => {
      const r = rejected.get(i);
      if (r) this.refuse(p, r.code, r.message);
      else p.resolve({ id: p.id });
    });
    return true;
  }

  /** Rejects every event of a batch the server refused as a whole. False if unknown. */
  fail(id: string, code: DuckTailClientError["code"], message: string, status?: number): boolean {
    const batch = this.inFlight.get(id);
    if (!batch) return false;
    this.inFlight.delete(id);
    this.held -= batch.items.length;
    for (const p of batch.items) this.refuse(p, code, message, status);
    return true;
  }

  /** Rejects everything held (the client is closing, or failed for good). */
  failAll(code: DuckTailClientError["code"], message: string, status?: number): void {
    for (const id of [...this.inFlight.keys()]) this.fail(id, code, message, status);
    const queued = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    this.held -= queued.length;
    for (const p of queued) this.refuse(p, code, message, status);
  }

  /** Promises of everything held now. */
  pending(): Promise<TrackResult>[] {
    const queued = this.queue.slice(this.head);
    return [...queued, ...[...this.inFlight.values()].flatMap((b) => b.items)].map((p) => p.settled);
  }

  /** Events held until the server answers: queued or in flight. */
  size(): number {
    return this.held;
  }

  private refuse(
    p: Pending,
    code: DuckTailClientError["code"],
    message: string,
    status?: number,
  ): Promise<TrackResult> {
    const err = new DuckTailClientError(code, message, p.id, undefined, status);
    p.reject(err);
    this.report(err);
    return p.settled;
  }
}
