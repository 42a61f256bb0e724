import { Table } from "apache-arrow";
import type { StoredEvent } from "../protocol/events";
import { EVENT_SCHEMA, EventColumns } from "./columns";

const HOUR_MS = 3_600_000;

/** Rows [start, end) of one block of columns. */
export interface BatchPart {
  columns: EventColumns;
  start: number;
  end: number;
}

/**
 * What a sink is given to write: a read-only view of buffered events in seq order, as an
 * Arrow table (`table()`, zero-copy over the replica's buffer) or as rows (`events()`,
 * decoded on first call). The replica never changes rows a batch can see.
 */
export class EventBatch {
  readonly length: number;
  private cachedTable: Table | null = null;
  private cachedEvents: StoredEvent[] | null = null;

  constructor(readonly parts: readonly BatchPart[]) {
    let n = 0;
    for (const p of parts) n += p.end - p.start;
    this.length = n;
  }

  /** A batch of the given rows (tests, benchmarks, tools). */
  static from(events: readonly StoredEvent[]): EventBatch {
    const columns = EventColumns.from(events);
    return new EventBatch([{ columns, start: 0, end: columns.length }]);
  }

  /** The events columns (docs/ARCHITECTURE.md) as one Arrow table. */
  table(): Table {
    if (!this.cachedTable) {
      const batches = this.parts.map((p) => {
        const all = p.columns.recordBatch();
        return p.start === 0 && p.end === p.columns.length ? all : all.slice(p.start, p.end);
      });
      this.cachedTable = new Table(EVENT_SCHEMA, batches);
    }
    return this.cachedTable;
  }

  /** Every row as an object. */
  events(): StoredEvent[] {
    if (!this.cachedEvents) {
      const decoder = new TextDecoder();
      const out: StoredEvent[] = [];
      for (const p of this.parts) for (let i = p.start; i < p.end; i++) out.push(p.columns.row(i, decoder));
      this.cachedEvents = out;
    }
    return this.cachedEvents;
  }

  /** Smallest and largest `receivedAt` (epoch ms); 0, 0 when empty. */
  receivedRange(): { from: number; to: number } {
    let from = Number.POSITIVE_INFINITY;
    let to = 0;
    for (const p of this.parts) {
      for (let i = p.start; i < p.end; i++) {
        const t = p.columns.receivedAtAt(i);
        if (t < from) from = t;
        if (t > to) to = t;
      }
    }
    return { from: to === 0 ? 0 : from, to };
  }

  /** Smallest and largest seq. */
  seqRange(): { first: number; last: number } | null {
    const head = this.parts[0];
    const tail = this.parts[this.parts.length - 1];
    if (!head || !tail) return null;
    return { first: head.columns.seqAt(head.start), last: tail.columns.seqAt(tail.end - 1) };
  }

  /**
   * Splits by the UTC hour of `receivedAt`, oldest hour first (one object per hour). Rows are
   * nearly always in time order, so each hour is a few contiguous slices, not a copy.
   */
  byHour(): [number, EventBatch][] {
    const hours = new Map<number, BatchPart[]>();
    for (const p of this.parts) {
      let runStart = p.start;
      let runHour = -1;
      for (let i = p.start; i <= p.end; i++) {
        const hour = i < p.end ? Math.floor(p.columns.receivedAtAt(i) / HOUR_MS) * HOUR_MS : -2;
        if (hour === runHour) continue;
        if (runHour >= 0) {
          const list = hours.get(runHour) ?? [];
          list.push({ columns: p.columns, start: runStart, end: i });
          hours.set(runHour, list);
        }
        runStart = i;
        runHour = hour;
      }
    }
    return [...hours.entries()].sort((a, b) => a[0] - b[0]).map(([hour, parts]) => [hour, new EventBatch(parts)]);
  }
}
