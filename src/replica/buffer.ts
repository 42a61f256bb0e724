import { eventBytes, type StoredEvent } from "../protocol/events";

interface Entry {
  event: StoredEvent;
  bytes: number;
  /** Committed to SQLite (confirmed/durable): never dropped, survives a restart. */
  committed: boolean;
}

/** The replica's in-memory buffer, in seq order: every unflushed event, committed or not. */
export class EventBuffer {
  private entries: Entry[] = [];
  private byteCount = 0;
  private lowUncommitted = 0;

  get rows(): number {
    return this.entries.length;
  }

  get bytes(): number {
    return this.byteCount;
  }

  get lastSeq(): number | null {
    return this.entries[this.entries.length - 1]?.event.seq ?? null;
  }

  get oldestReceivedAt(): number | null {
    return this.entries[0]?.event.receivedAt ?? null;
  }

  append(events: readonly StoredEvent[], committed: boolean): void {
    for (const event of events) {
      const bytes = eventBytes(event);
      this.entries.push({ event, bytes, committed });
      this.byteCount += bytes;
      if (!committed && event.importance === "low") this.lowUncommitted++;
    }
  }

  /** Events with seq ≤ maxSeq, oldest first: the next flush batch. */
  through(maxSeq: number): StoredEvent[] {
    const out: StoredEvent[] = [];
    for (const e of this.entries) {
      if (e.event.seq > maxSeq) break;
      out.push(e.event);
    }
    return out;
  }

  /** Removes everything with seq ≤ maxSeq (after a sink accepted it). */
  removeThrough(maxSeq: number): void {
    let i = 0;
    while (i < this.entries.length && (this.entries[i] as Entry).event.seq <= maxSeq) {
      const e = this.entries[i] as Entry;
      this.byteCount -= e.bytes;
      if (!e.committed && e.event.importance === "low") this.lowUncommitted--;
      i++;
    }
    this.entries.splice(0, i);
  }

  /**
   * Drops uncommitted `low` events, oldest first, until the buffer is at most `limit` bytes.
   * Committed events were acked as durable in SQLite and are never dropped. Returns how many went.
   */
  dropLow(limit: number): number {
    if (this.byteCount <= limit || this.lowUncommitted === 0) return 0;
    let dropped = 0;
    const kept: Entry[] = [];
    for (const e of this.entries) {
      if (this.byteCount > limit && !e.committed && e.event.importance === "low") {
        this.byteCount -= e.bytes;
        this.lowUncommitted--;
        dropped++;
      } else {
        kept.push(e);
      }
    }
    this.entries = kept;
    return dropped;
  }

  /** The earliest time a buffered event is due for an age flush, given per-importance ages. */
  dueAt(ageFor: (e: StoredEvent) => number): number | null {
    let due: number | null = null;
    for (const e of this.entries) {
      const t = e.event.receivedAt + ageFor(e.event);
      if (due === null || t < due) due = t;
    }
    return due;
  }
}
