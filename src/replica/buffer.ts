import { eventBytes, type StoredEvent } from "../protocol/events";

/** One ingested batch: the unit the buffer keeps, so the heap holds one wrapper per batch, not per event. */
interface Chunk {
  events: StoredEvent[];
  bytes: number;
  /** Committed to SQLite (confirmed/durable): never dropped, survives a restart. */
  committed: boolean;
  /** How many `low` events the chunk holds (only counted for uncommitted chunks). */
  low: number;
}

function bytesOf(events: readonly StoredEvent[]): number {
  let total = 0;
  for (const e of events) total += eventBytes(e);
  return total;
}

/** The replica's in-memory buffer, in seq order: every unflushed event, committed or not. */
export class EventBuffer {
  private chunks: Chunk[] = [];
  private rowCount = 0;
  private byteCount = 0;

  get rows(): number {
    return this.rowCount;
  }

  get bytes(): number {
    return this.byteCount;
  }

  get lastSeq(): number | null {
    const last = this.chunks[this.chunks.length - 1];
    return last ? (last.events[last.events.length - 1] as StoredEvent).seq : null;
  }

  append(events: StoredEvent[], committed: boolean): void {
    if (events.length === 0) return;
    let low = 0;
    if (!committed) for (const e of events) if (e.importance === "low") low++;
    const bytes = bytesOf(events);
    this.chunks.push({ events, bytes, committed, low });
    this.rowCount += events.length;
    this.byteCount += bytes;
  }

  /** Events with seq ≤ maxSeq, oldest first: the next flush batch. */
  through(maxSeq: number): StoredEvent[] {
    const out: StoredEvent[] = [];
    for (const chunk of this.chunks) {
      for (const e of chunk.events) {
        if (e.seq > maxSeq) return out;
        out.push(e);
      }
    }
    return out;
  }

  /** Removes everything with seq ≤ maxSeq (after a sink accepted it). */
  removeThrough(maxSeq: number): void {
    while (this.chunks.length > 0) {
      const chunk = this.chunks[0] as Chunk;
      const keep = chunk.events.filter((e) => e.seq > maxSeq);
      if (keep.length === chunk.events.length) return;
      this.replace(0, chunk, keep);
      if (keep.length > 0) return;
    }
  }

  /**
   * Drops uncommitted `low` events, oldest first, until the buffer is at most `limit` bytes.
   * Committed events were acked as durable in SQLite and are never dropped. Returns how many went.
   */
  dropLow(limit: number): number {
    let excess = this.byteCount - limit;
    let dropped = 0;
    for (let i = 0; i < this.chunks.length && excess > 0; i++) {
      const chunk = this.chunks[i] as Chunk;
      if (chunk.committed || chunk.low === 0) continue;
      const keep: StoredEvent[] = [];
      for (const e of chunk.events) {
        if (excess > 0 && e.importance === "low") {
          excess -= eventBytes(e);
          dropped++;
        } else keep.push(e);
      }
      this.replace(i, chunk, keep);
      if (keep.length === 0) i--;
    }
    return dropped;
  }

  /** The earliest time a buffered event is due for an age flush, given per-importance ages. */
  dueAt(ageFor: (e: StoredEvent) => number): number | null {
    let due: number | null = null;
    for (const chunk of this.chunks) {
      for (const e of chunk.events) {
        const t = e.receivedAt + ageFor(e);
        if (due === null || t < due) due = t;
      }
    }
    return due;
  }

  /** Swaps chunk `i` for one holding only `keep` (removing it when empty), keeping the totals exact. */
  private replace(i: number, chunk: Chunk, keep: StoredEvent[]): void {
    const keptBytes = keep.length === chunk.events.length ? chunk.bytes : bytesOf(keep);
    this.rowCount -= chunk.events.length - keep.length;
    this.byteCount -= chunk.bytes - keptBytes;
    if (keep.length === 0) {
      this.chunks.splice(i, 1);
      return;
    }
    let low = 0;
    if (!chunk.committed) for (const e of keep) if (e.importance === "low") low++;
    this.chunks[i] = { events: keep, bytes: keptBytes, committed: chunk.committed, low };
  }
}
