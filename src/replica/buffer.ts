import { type BatchPart, EventBatch } from "../columns/batch";
import { EventColumns } from "../columns/columns";
import type { NormalizedEvent } from "../protocol/events";

/** Rows per block before the next batch opens a new one: bounds the copy when a block grows. */
const BLOCK_ROWS = 8192;
/** Room for the batch that takes a block past BLOCK_ROWS (a batch has at most 1,000 events by default). */
const BLOCK_SLACK = 1024;
/** Flushed full-size blocks kept for reuse: what a flush cycle needs (see `removeThrough`). */
const MAX_SPARE_BLOCKS = 2;

/** Who the buffered events belong to; stamped on every row. */
export interface BufferOwner {
  tenant: string;
  name: string;
}

/**
 * The replica's in-memory buffer: every unflushed event, committed or not, in seq order, held
 * as blocks of columns (see src/columns/columns.ts). Blocks are never changed while a batch can see
 * them: appends go past every row a batch holds, removals replace a block with a copy, and a
 * flushed block is refilled only once the flusher vouches that no sink still reads it. (The one
 * change in place is a row's committed bit, set when an idle replica writes its rows to SQLite;
 * sinks never read it.)
 */
export class EventBuffer {
  private blocks: EventColumns[] = [];
  /** The block appends go to; null once a flush took a view of it. */
  private open: EventColumns | null = null;
  private rowCount = 0;
  private byteCount = 0;
  /**
   * Bytes per row of the string columns of the last block that filled up, if one did: new blocks
   * are then allocated at full size at once. Grown by doubling, each block allocated twice its
   * size, copying as it went (a few % of ingest CPU).
   */
  private fullBlockBytesPerRow: number[] | null = null;
  /** Flushed full-size blocks, emptied, for the next blocks to open (see `removeThrough`). */
  private readonly spare: EventColumns[] = [];

  constructor(private readonly owner: () => BufferOwner) {}

  get rows(): number {
    return this.rowCount;
  }

  get bytes(): number {
    return this.byteCount;
  }

  get lastSeq(): number | null {
    for (let b = this.blocks.length - 1; b >= 0; b--) {
      const block = this.blocks[b] as EventColumns;
      if (block.length > 0) return block.seqAt(block.length - 1);
    }
    return null;
  }

  /** Appends a batch stamped with its receipt time and consecutive seqs from `firstSeq`; returns where it went. */
  append(
    events: readonly NormalizedEvent[],
    receivedAt: number,
    firstSeq: number,
    committed: boolean,
    context: string | null = null,
  ): BatchPart {
    const block = this.openBlock();
    const start = block.length;
    const before = block.bytes;
    block.pushBatch(events, receivedAt, firstSeq, committed, context);
    this.rowCount += events.length;
    this.byteCount += block.bytes - before;
    if (block.length >= BLOCK_ROWS) {
      this.open = null;
      this.fullBlockBytesPerRow = block.bytesPerRow();
    }
    return { columns: block, start, end: block.length };
  }

  /** Appends rows saved by `EventColumns.encode` (committed batches after a restart). */
  appendEncoded(blob: Uint8Array): void {
    const block = this.openBlock();
    const rows = block.length;
    const before = block.bytes;
    block.appendEncoded(blob);
    this.rowCount += block.length - rows;
    this.byteCount += block.bytes - before;
  }

  /**
   * Writes every row not yet committed to SQLite through `save` and marks it committed, in runs of
   * consecutive such rows that never cross a seq in `cuts` (the open flushes' last seqs, so that
   * deleting a flush's batches once it is delivered deletes whole runs). Answers how many rows.
   */
  persistUncommitted(
    cuts: readonly number[],
    save: (firstSeq: number, lastSeq: number, blob: Uint8Array) => void,
  ): number {
    let saved = 0;
    for (const columns of this.blocks) {
      let i = 0;
      while (i < columns.length) {
        if (columns.committedAt(i)) {
          i++;
          continue;
        }
        const start = i;
        const cut = cuts.find((c) => c >= columns.seqAt(start));
        while (i < columns.length && !columns.committedAt(i) && (cut === undefined || columns.seqAt(i) <= cut)) i++;
        columns.markCommitted(start, i);
        save(columns.seqAt(start), columns.seqAt(i - 1), columns.encode(start, i));
        saved += i - start;
      }
    }
    return saved;
  }

  /** Events with seq ≤ maxSeq, oldest first. Later appends start a new block. */
  through(maxSeq: number): EventBatch {
    return this.range(Number.NEGATIVE_INFINITY, maxSeq);
  }

  /** Events with afterSeq < seq ≤ maxSeq, oldest first: a flush batch. Later appends start a new block. */
  range(afterSeq: number, maxSeq: number): EventBatch {
    this.open = null;
    return new EventBatch(this.parts(afterSeq, maxSeq));
  }

  /** How many events have afterSeq < seq ≤ maxSeq (appends go on in the open block). */
  count(afterSeq: number, maxSeq: number): number {
    let n = 0;
    for (const p of this.parts(afterSeq, maxSeq)) n += p.end - p.start;
    return n;
  }

  private parts(afterSeq: number, maxSeq: number): BatchPart[] {
    const parts: BatchPart[] = [];
    for (const columns of this.blocks) {
      if (columns.length === 0 || columns.seqAt(columns.length - 1) <= afterSeq) continue;
      if (columns.seqAt(0) > maxSeq) break;
      const start = columns.indexAfter(afterSeq);
      const end = columns.indexAfter(maxSeq);
      if (end > start) parts.push({ columns, start, end });
      if (end < columns.length) break;
    }
    return parts;
  }

  /**
   * Removes everything with seq ≤ maxSeq (after every sink accepted it). With `reuse`, the caller
   * vouches that nothing reads those rows any more (every sink that saw them releases its batch):
   * full-size blocks are then kept to be refilled. A flush every 10,000 rows otherwise allocates
   * two or three blocks of ~2.5 MB each, zeroed, most of them closed early by the flush itself:
   * a few % of ingest CPU, and external memory that drives the GC.
   */
  removeThrough(maxSeq: number, reuse = false): void {
    while (this.blocks.length > 0) {
      const block = this.blocks[0] as EventColumns;
      const cut = block.indexAfter(maxSeq);
      if (cut === 0) return;
      if (cut === block.length) {
        this.replace(0, null);
        if (reuse && this.spare.length < MAX_SPARE_BLOCKS && this.fitsReuse(block)) this.spare.push(block);
        continue;
      }
      this.replace(
        0,
        block.filter((i) => i >= cut),
      );
      return;
    }
  }

  /**
   * Drops uncommitted `low` events, oldest first, until the buffer is at most `limit` bytes.
   * Committed events were acked as stored in SQLite and are never dropped. Returns how many went.
   */
  dropLow(limit: number): number {
    let excess = this.byteCount - limit;
    let dropped = 0;
    for (let b = 0; b < this.blocks.length && excess > 0; b++) {
      const block = this.blocks[b] as EventColumns;
      if (block.lowUncommitted === 0) continue;
      const kept = block.filter((i) => {
        if (excess <= 0 || block.importanceRankAt(i) !== 0 || block.committedAt(i)) return true;
        excess -= block.rowBytes(i);
        dropped++;
        return false;
      });
      this.replace(b, kept.length > 0 ? kept : null);
      if (kept.length === 0) b--;
    }
    return dropped;
  }

  /** The earliest time a buffered event is due for an age flush: high/critical after `urgentAge`, others after `normalAge`. */
  dueAt(urgentAge: number, normalAge: number): number | null {
    let due = Number.POSITIVE_INFINITY;
    for (const block of this.blocks) {
      due = Math.min(due, block.firstUrgent + urgentAge, block.firstNormal + normalAge);
    }
    return Number.isFinite(due) ? due : null;
  }

  /**
   * A flushed block worth refilling: full-size, and not grown far past it (a block that took the
   * committed rows back after a restart, or a burst of large events): keeping such a block would
   * hold a burst's peak memory for good.
   */
  private fitsReuse(block: EventColumns): boolean {
    const perRow = this.fullBlockBytesPerRow;
    if (!perRow || block.capacity < BLOCK_ROWS || block.capacity > 2 * BLOCK_ROWS) return false;
    const expected = (BLOCK_ROWS + BLOCK_SLACK) * perRow.reduce((a, b) => a + b, 0);
    return block.allocatedBytes <= 2 * expected;
  }

  private openBlock(): EventColumns {
    if (!this.open) {
      const owner = this.owner();
      const spare = this.spare.pop();
      if (spare && spare.tenant === owner.tenant && spare.replica === owner.name) {
        spare.clear();
        this.open = spare;
      } else {
        this.open = this.fullBlockBytesPerRow
          ? new EventColumns(owner.tenant, owner.name, BLOCK_ROWS + BLOCK_SLACK, this.fullBlockBytesPerRow)
          : new EventColumns(owner.tenant, owner.name);
      }
      this.blocks.push(this.open);
    }
    return this.open;
  }

  /** Swaps block `i` for `next` (or removes it), keeping the totals exact. */
  private replace(i: number, next: EventColumns | null): void {
    const block = this.blocks[i] as EventColumns;
    this.rowCount -= block.length - (next?.length ?? 0);
    this.byteCount -= block.bytes - (next?.bytes ?? 0);
    if (block === this.open) this.open = next;
    if (next) this.blocks[i] = next;
    else this.blocks.splice(i, 1);
  }
}
