import type { LaterText, TailOffer } from "../gossip/tail";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import type { EventContext, NormalizedEvent, Rejection, TransformEvent, ValidatedBatch } from "../protocol/events";
import { validateBatch } from "../protocol/events";
import type { IngestResult, StorageMode } from "../protocol/frames";
import type { FlushPolicy, Limits } from "../protocol/limits";
import type { TailEvent } from "../protocol/tail";
import type { EventBuffer } from "./buffer";
import { DurableAckTimeout, type Flusher } from "./flusher";
import type { GroupCommit } from "./group-commit";
import type { LiveTail } from "./live-tail";
import type { LiveViews } from "./live-views";
import type { ReplicaIdentity, ReplicaStore } from "./store";

export const DEFAULT_DEDUP_WINDOW_MS = 10 * 60_000;
const MAX_RECENT_IDS = 100_000;
/** Critical events are taken until the buffer holds this many times MAX_BUFFER_BYTES. */
const CRITICAL_HEADROOM = 2;

/** What the ingest pipeline uses of its replica. */
export interface IngestHost {
  readonly limits: Limits;
  readonly policy: FlushPolicy;
  readonly store: ReplicaStore;
  readonly buffer: EventBuffer;
  readonly commits: GroupCommit;
  readonly flusher: Flusher;
  readonly tail: LiveTail;
  identity(): ReplicaIdentity;
  liveViews(): LiveViews;
  /** Whether the replica overrides `transform` (if not, events are not parsed for it). */
  transforms(): boolean;
  transform(event: TransformEvent): TransformEvent | null;
  /** Sets the flush alarm by `at`: a promise only when the alarm moves. */
  alarmBy(at: number): Promise<void> | null;
  flushInBackground(): void;
  /** A batch of `events` was counted at `now` (for load reports). */
  counted(events: number, now: number): void;
}

/**
 * The ingest pipeline of a replica: validates a batch, drops the duplicates (dedup), runs the
 * replica's `transform`, applies the buffer limit, then stamps and buffers the accepted events
 * (committing them to SQLite for confirmed and durable batches) and hands them to live tail and views.
 */
export class Ingest {
  /** The replica's ingest counters (in its stats). */
  readonly counters = {
    requests: 0,
    received: 0,
    stored: 0,
    rejected: 0,
    dropped: 0,
    filtered: 0,
    duplicates: 0,
  };
  /** Event ids taken lately (Segment's messageId dedup), with when each may be taken again. */
  private readonly recentIds = new Map<string, number>();

  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the latest buffered or fire-and-forget batch was taken (see `persistWhenIdle`). */
  private lastTakenAt = 0;

  constructor(
    private readonly host: IngestHost,
    private readonly dedupWindowMs: number,
  ) {}

  /**
   * Validates, stamps and buffers a batch with the given durability: the result itself once the
   * events are in the buffer (fire-and-forget, buffered), a promise only for modes that wait on
   * storage (its ack may be sent when it resolves).
   */
  take(
    raw: unknown[],
    mode: StorageMode,
    dedup: boolean,
    context: string | null,
  ): IngestResult | Promise<IngestResult> {
    if (raw.length > this.host.limits.maxBatchEvents) {
      throw new DuckTailError(ErrorCode.batchTooLarge, `at most ${this.host.limits.maxBatchEvents} events per batch`);
    }
    this.host.identity(); // a replica not yet named by the Worker cannot stamp rows
    const now = Date.now();
    const { batch, accepted, transformed, duplicates } = this.accept(raw, now, dedup);
    const rejected = batch.rejected;
    this.counters.requests++;
    this.counters.received += raw.length;
    this.counters.rejected += rejected.length;
    this.counters.stored += accepted.length;
    const result: IngestResult = { received: raw.length, stored: accepted.length, rejected, storageMode: mode };
    if (dedup) result.duplicates = duplicates;
    this.host.counted(raw.length, now);
    if (accepted.length === 0) return result;

    let urgent = false;
    let soon = false;
    for (const e of accepted) {
      if (e.importance === "critical") urgent = true;
      else if (e.importance === "high") soon = true;
    }
    const alarm = this.host.alarmBy(
      now + (soon || urgent ? this.host.policy.highFlushIntervalMs : this.host.policy.flushIntervalMs),
    );
    const taken: Taken = { raw, batch, accepted, now, transformed, urgent, context };
    if (mode === "confirmed" || mode === "durable") return this.takeStored(taken, mode, alarm, result);
    this.afterAppend(taken, this.append(accepted, now, false, context));
    this.persistWhenIdle(now);
    return result;
  }

  /**
   * Writes the buffer's uncommitted rows to SQLite once no batch has come for `idlePersistMs`: a
   * replica is evicted only when idle, and then loses nothing it acked. A busy replica writes
   * nothing more than before (its buffered rows flush on age or size as ever). One timer, re-armed
   * from the latest batch's time when it fires early, rather than one per batch on the ingest path.
   */
  private persistWhenIdle(takenAt: number): void {
    const wait = this.host.policy.idlePersistMs;
    if (wait <= 0) return;
    this.lastTakenAt = takenAt;
    if (this.idleTimer === null) this.armIdleTimer(wait);
  }

  private armIdleTimer(delay: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      const idleFor = Date.now() - this.lastTakenAt;
      const wait = this.host.policy.idlePersistMs;
      if (idleFor < wait) return this.armIdleTimer(wait - idleFor);
      const cuts = this.host.flusher.openFlushEnds();
      this.host.buffer.persistUncommitted(cuts, (first, last, blob) => this.host.store.insertBatch(first, last, blob));
    }, delay);
  }

  /**
   * The one pass that decides what of a batch is taken: validation rejects events one by one,
   * dedup drops ids seen lately, `transform` rewrites or drops, and the buffer limit admits the
   * rest (or turns some away). `batch.rejected` ends up holding every rejection, in input order.
   */
  private accept(
    raw: unknown[],
    now: number,
    dedup: boolean,
  ): Pick<Taken, "batch" | "accepted" | "transformed"> & { duplicates: number } {
    const batch = validateBatch(raw, now, this.host.limits);
    const duplicates = dedup ? this.dropSeen(batch, now) : 0;
    const transformed = this.host.transforms() ? this.applyTransform(batch) : null;
    const accepted = this.admit(batch.events, batch.indexes, batch.rejected);
    return { batch, accepted, transformed, duplicates };
  }

  /** The rest of {@link take} for confirmed and durable batches: commit, then (durable) wait for R2. */
  private async takeStored(
    taken: Taken,
    mode: StorageMode,
    alarm: Promise<void> | null,
    result: IngestResult,
  ): Promise<IngestResult> {
    // Seqs are taken when the group is written, so the buffer stays in seq order, and rows
    // enter the buffer only with their SQLite row: a flush never takes uncommitted ones.
    const last = await this.host.commits.run(() => this.append(taken.accepted, taken.now, true, taken.context));
    await alarm;
    this.afterAppend(taken, last);
    if (mode === "durable") {
      try {
        await this.host.flusher.waitDurable(last, this.host.policy.durableCommitDelayMs);
      } catch (err) {
        if (!(err instanceof DurableAckTimeout)) throw new DuckTailError(ErrorCode.flushFailed, (err as Error).message);
        // A retry of a batch that will reach R2 anyway would store it twice: say which rows wait.
        const pending = {
          replica: this.host.identity().name,
          firstSeq: last - taken.accepted.length + 1,
          lastSeq: last,
        };
        throw new DuckTailError(
          ErrorCode.durablePending,
          `committed to SQLite as ${pending.replica} seq ${pending.firstSeq}..${pending.lastSeq} but not yet in R2 ` +
            `(${err.message}); it will get there without being sent again: do not resend it`,
          { pending },
        );
      }
    }
    return result;
  }

  /** Live tail, views and the flush check for a batch just appended (seqs up to `last`). */
  private afterAppend(taken: Taken, last: number): void {
    const { raw, batch, accepted, now, transformed, urgent } = taken;
    const views = this.host.liveViews();
    const offer = new TakenOffer(taken, last, this.host.identity().name);
    if (this.host.tail.active) this.host.tail.offer(offer);
    if (views.size > 0) {
      // Views read the normalized events and their parsed data without an object per event,
      // unless admission or a transform changed the batch.
      if (accepted === batch.events && transformed === null) views.addEach(accepted, raw, batch.indexes, now);
      else views.add(offer.all());
    }
    if (urgent || this.overThreshold()) this.host.flushInBackground();
  }

  /**
   * Drops events whose id this replica took within the dedup window (Segment retries a batch with
   * the same messageIds; the Worker sends a batch to the same shard every time). Returns how many.
   */
  private dropSeen(batch: ValidatedBatch, now: number): number {
    const window = this.dedupWindowMs;
    const events: NormalizedEvent[] = [];
    const indexes: number[] = [];
    batch.events.forEach((e, k) => {
      const seen = this.recentIds.get(e.id);
      if (seen !== undefined && seen > now) return;
      this.recentIds.delete(e.id); // re-inserted last: the map stays in expiry order
      this.recentIds.set(e.id, now + window);
      events.push(e);
      indexes.push(batch.indexes[k] as number);
    });
    for (const [id, expires] of this.recentIds) {
      if (expires > now && this.recentIds.size <= MAX_RECENT_IDS) break;
      this.recentIds.delete(id);
    }
    const dropped = batch.events.length - events.length;
    this.counters.duplicates += dropped;
    batch.events = events;
    batch.indexes = indexes;
    return dropped;
  }

  /**
   * Runs `transform` over the batch in place: dropped events leave it (counted as `filtered`), an
   * event whose transform throws is rejected with the error. Returns each kept event's parsed data.
   */
  private applyTransform(batch: ValidatedBatch): Map<NormalizedEvent, Record<string, unknown>> {
    const parsed = new Map<NormalizedEvent, Record<string, unknown>>();
    const events: NormalizedEvent[] = [];
    const indexes: number[] = [];
    batch.events.forEach((e, k) => {
      const index = batch.indexes[k] as number;
      try {
        const out = this.host.transform({ ...e, data: JSON.parse(e.data) as Record<string, unknown> });
        if (out === null) {
          this.counters.filtered++;
          return;
        }
        const next: NormalizedEvent = { ...out, data: JSON.stringify(out.data ?? {}) };
        parsed.set(next, out.data ?? {});
        events.push(next);
        indexes.push(index);
      } catch (err) {
        batch.rejected.push({ index, code: ErrorCode.invalidEvent, message: `transform: ${(err as Error).message}` });
      }
    });
    batch.rejected.sort((a, b) => a.index - b.index);
    batch.events = events;
    batch.indexes = indexes;
    return parsed;
  }

  /** Stamps and buffers accepted events (and commits them to SQLite); returns the last seq. */
  append(events: NormalizedEvent[], receivedAt: number, committed: boolean, context: string | null): number {
    const first = this.host.store.allocateSeqs(events.length);
    const last = first + events.length - 1;
    const part = this.host.buffer.append(events, receivedAt, first, committed, context);
    if (committed) this.host.store.insertBatch(first, last, part.columns.encode(part.start, part.end));
    return last;
  }

  /**
   * Applies the buffer limit: over it, buffered `low` events go first (counted as dropped), then
   * incoming `low` ones; if still over, non-critical events are rejected so the client can retry.
   */
  private admit(events: NormalizedEvent[], indexes: number[], rejected: Rejection[]): NormalizedEvent[] {
    const limit = this.host.policy.maxBufferBytes;
    if (this.host.buffer.bytes <= limit) return events;
    this.counters.dropped += this.host.buffer.dropLow(limit);
    if (this.host.buffer.bytes <= limit) return events;
    this.host.flushInBackground();
    // Critical events get room past the limit, but not without end: through a long storage outage
    // they too are refused (buffer_full, for the client to retry) once the buffer holds twice it.
    const criticalRoom = this.host.buffer.bytes < CRITICAL_HEADROOM * limit;
    const kept: NormalizedEvent[] = [];
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as NormalizedEvent;
      if (e.importance === "critical" && criticalRoom) {
        kept.push(e);
        continue;
      }
      if (e.importance === "low") this.counters.dropped++;
      rejected.push({
        index: indexes[i] as number,
        code: ErrorCode.bufferFull,
        message: "buffer is full; retry later",
      });
    }
    rejected.sort((a, b) => a.index - b.index);
    return kept;
  }

  private overThreshold(): boolean {
    return (
      this.host.buffer.rows >= this.host.policy.flushThresholdRows ||
      this.host.buffer.bytes >= this.host.policy.flushThresholdBytes
    );
  }
}

/** A validated batch on its way into the buffer (see `Ingest.take`). */
export interface Taken {
  raw: unknown[];
  batch: ValidatedBatch;
  /** The events admitted to the buffer. */
  accepted: NormalizedEvent[];
  /** Receipt time, stamped on every row. */
  now: number;
  /** Each event's data after `transform`, or null when the replica does not transform. */
  transformed: Map<NormalizedEvent, Record<string, unknown>> | null;
  /** Some event is critical: flush now. */
  urgent: boolean;
  /** The request's context as the Worker sent it (JSON), or null. */
  context: string | null;
}

/** About what a tail event's JSON adds to its `data` and context: the other fields and their names. */
const LATER_OVERHEAD_BYTES = 256;

/** An event's tail JSON, made when its frame is sent (see `TailOffer.later`). */
class Later implements LaterText {
  private made: string | null = null;

  constructor(
    private readonly offer: TakenOffer,
    private readonly i: number,
    readonly bytes: number,
  ) {}

  text(): string {
    this.made ??= this.offer.json(this.i);
    return this.made;
  }
}

/** What of a taken batch live tail and views read. */
type TakenEvents = Pick<Taken, "accepted" | "raw" | "batch" | "now" | "transformed" | "context">;

/**
 * Accepted events as live tail sees them. Each one's JSON is built from the normalized event (its
 * `data` is JSON text already) instead of serializing an object, and the event objects filters
 * match are made only if a filter looks at one (a match-all subscriber never needs them).
 */
export class TakenOffer implements TailOffer {
  readonly count: number;
  private events: TailEvent[] | null = null;
  private readonly first: number;

  constructor(
    private readonly taken: TakenEvents,
    lastSeq: number,
    private readonly replica: string,
  ) {
    this.count = taken.accepted.length;
    this.first = lastSeq - this.count + 1;
  }

  event(i: number): TailEvent {
    return this.all()[i] as TailEvent;
  }

  /** Every event as an object (built once). */
  all(): TailEvent[] {
    this.events ??= tailEvents(this.taken, this.first, this.replica);
    return this.events;
  }

  later(i: number): LaterText {
    const e = this.taken.accepted[i] as NormalizedEvent;
    return new Later(this, i, e.data.length + (this.taken.context?.length ?? 0) + LATER_OVERHEAD_BYTES);
  }

  json(i: number): string {
    const e = this.taken.accepted[i] as NormalizedEvent;
    const context = this.taken.context;
    return (
      `{"id":${JSON.stringify(e.id)},"ts":${e.ts},"source":${JSON.stringify(e.source)},` +
      `"type":${JSON.stringify(e.type)},"importance":"${e.importance}","userId":${JSON.stringify(e.userId)},` +
      `"anonymousId":${JSON.stringify(e.anonymousId)},"sessionId":${JSON.stringify(e.sessionId)},` +
      `"data":${e.data},"receivedAt":${this.taken.now},"replica":${JSON.stringify(this.replica)},"seq":${this.first + i}` +
      `${context === null ? "" : `,"context":${context}`}}`
    );
  }
}

/**
 * Accepted events as live tail delivers them, `data` taken from the parsed input (no re-parse).
 * `accepted` is the batch's events or, when the buffer limit turned some away, a subset of them.
 */
function tailEvents(
  { accepted, raw, batch, now: receivedAt, transformed, context }: TakenEvents,
  first: number,
  replica: string,
): TailEvent[] {
  const rawOf = new Map<NormalizedEvent, unknown>();
  batch.events.forEach((e, k) => {
    rawOf.set(e, transformed ? { data: transformed.get(e) } : raw[batch.indexes[k] as number]);
  });
  const parsedContext = context === null ? null : (JSON.parse(context) as EventContext);
  return accepted.map((e, i) => ({
    ...e,
    data: ((rawOf.get(e) as { data?: Record<string, unknown> } | undefined)?.data ?? {}) as Record<string, unknown>,
    receivedAt,
    replica,
    seq: first + i,
    ...(parsedContext && { context: parsedContext }),
  }));
}
