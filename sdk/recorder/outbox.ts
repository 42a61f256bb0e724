/**
 * The recorder's chunks until the server acks them: numbered from 0 per session, sent again when
 * not acked in time (the server stores a seq once, so a re-send is harmless). Pure: no timers, no
 * DOM; the recorder calls it with the time.
 */

/** The ids a chunk carries: duck.js's identified user and the page's anonymous id, when it has them. */
export interface ChunkIds {
  userId?: string;
  anonymousId?: string;
}

interface Pending {
  seq: number;
  /** JSON of the chunk (what is sent). */
  text: string;
  /** When it was last sent; null: not since it was made or since resendAll. */
  sentAt: number | null;
}

export class Outbox {
  private readonly pending = new Map<number, Pending>();
  private nextSeq = 0;
  /** Total bytes of chunk JSON made in this session. */
  bytes = 0;

  constructor(
    readonly session: string,
    private readonly resendMs: number,
  ) {}

  /**
   * A new chunk of events, each given as its JSON (serialized once, as it was recorded), with
   * duck.js's ids for the page (erasure finds the session by them), pending until acked; answers its seq.
   */
  add(events: string[], ids: ChunkIds = {}): number {
    const seq = this.nextSeq++;
    let idFields = "";
    for (const [name, id] of Object.entries(ids)) if (id) idFields += `,"${name}":${JSON.stringify(id)}`;
    const text = `{"session":${JSON.stringify(this.session)},"seq":${seq}${idFields},"events":[${events.join(",")}]}`;
    this.bytes += text.length;
    this.pending.set(seq, { seq, text, sentAt: null });
    return seq;
  }

  /** The chunks to send now (never sent, or sent `resendMs` ago without an ack), marked sent at `now`. */
  due(now: number): { seq: number; text: string }[] {
    const out: { seq: number; text: string }[] = [];
    for (const p of this.pending.values()) {
      if (p.sentAt !== null && now - p.sentAt < this.resendMs) continue;
      p.sentAt = now;
      out.push({ seq: p.seq, text: p.text });
    }
    return out;
  }

  /** Every chunk not yet acked (for a page-hide beacon, or a new socket), oldest first. */
  unacked(): { seq: number; text: string }[] {
    return [...this.pending.values()].map((p) => ({ seq: p.seq, text: p.text }));
  }

  /** Sends again on the next `due`, whenever sent (a new socket: the old one's frames may be lost). */
  resendAll(): void {
    for (const p of this.pending.values()) p.sentAt = null;
  }

  ack(seq: number): void {
    this.pending.delete(seq);
  }

  get size(): number {
    return this.pending.size;
  }
}
