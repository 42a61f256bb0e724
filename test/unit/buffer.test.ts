import { describe, expect, it } from "vitest";
import { EventBatch } from "../../src/columns/batch";
import { EventColumns } from "../../src/columns/columns";
import { EventBuffer } from "../../src/replica/buffer";
import { sampleEvents } from "../helpers/events";

const owner = () => ({ tenant: "acme", name: "acme-0" });
const seqs = (batch: EventBatch) => batch.events().map((e) => e.seq);
const ALL = Number.MAX_SAFE_INTEGER;

describe("EventBuffer", () => {
  it("drops only uncommitted low events, oldest first, down to the limit", () => {
    const buffer = new EventBuffer(owner);
    const events = sampleEvents(40); // importance cycles low, normal, high, critical
    buffer.append(events.slice(0, 20), 1000, 0, true);
    buffer.append(events.slice(20), 1000, 20, false);
    const before = buffer.bytes;
    const dropped = buffer.dropLow(before - 1);
    expect(dropped).toBe(1);
    expect(seqs(buffer.through(ALL))).not.toContain(20);
    expect(buffer.dropLow(0)).toBe(4);
    const left = buffer.through(ALL).events();
    expect(left).toHaveLength(35);
    expect(left.filter((e) => e.importance === "low").every((e) => e.seq < 20)).toBe(true);
  });

  it("writes uncommitted rows once, in runs that skip committed rows and never cross an open flush's end", () => {
    const buffer = new EventBuffer(owner);
    const events = sampleEvents(20);
    buffer.append(events.slice(0, 10), 1000, 0, false);
    buffer.append(events.slice(10, 15), 1000, 10, true);
    buffer.append(events.slice(15), 1000, 15, false);
    const saved: [number, number, number][] = [];
    const save = (first: number, last: number, blob: Uint8Array) => {
      const columns = new EventColumns("acme", "acme-0", 16);
      columns.appendEncoded(blob);
      saved.push([first, last, columns.length]);
    };
    expect(buffer.persistUncommitted([4], save)).toBe(15);
    expect(saved).toEqual([
      [0, 4, 5],
      [5, 9, 5],
      [15, 19, 5],
    ]);
    // Committed now: low rows are no longer the buffer limit's to drop, and nothing is written twice.
    expect(buffer.dropLow(0)).toBe(0);
    expect(buffer.persistUncommitted([], save)).toBe(0);
  });

  it("removes flushed events by seq and keeps row and byte counts exact", () => {
    const buffer = new EventBuffer(owner);
    buffer.append(sampleEvents(10), 1000, 0, false);
    const full = buffer.bytes;
    buffer.removeThrough(4);
    expect(buffer.rows).toBe(5);
    expect(buffer.bytes).toBeLessThan(full);
    expect(seqs(buffer.through(7))).toEqual([5, 6, 7]);
    buffer.removeThrough(9);
    expect(buffer.bytes).toBe(0);
    expect(buffer.rows).toBe(0);
    expect(buffer.lastSeq).toBeNull();
  });

  it("never changes the rows a flush batch sees while appends and removals go on", () => {
    const buffer = new EventBuffer(owner);
    buffer.append(sampleEvents(30), 1000, 0, false);
    const batch = buffer.through(ALL);
    const seen = batch.events().map((e) => e.id);
    buffer.append(sampleEvents(30, 30), 2000, 30, false);
    buffer.dropLow(0);
    expect(new EventBatch(batch.parts).events().map((e) => e.id)).toEqual(seen);
    buffer.removeThrough(29);
    expect(buffer.rows).toBe(23); // 30 appended after the view, minus their 7 low ones
    expect(seqs(buffer.through(ALL))[0]).toBe(30);
  });

  it("keeps every row across full blocks, blocks sized after the last full one included, bigger rows too", () => {
    const buffer = new EventBuffer(owner);
    const input = sampleEvents(20_000);
    // Past two blocks of 8,192 rows, then rows ten times larger than the ones the block was sized for.
    for (let i = 0; i < 18_000; i += 1000) buffer.append(input.slice(i, i + 1000), 1000, i, false);
    const big = input.slice(18_000).map((e) => ({ ...e, data: JSON.stringify({ blob: "x".repeat(2000), at: e.seq }) }));
    for (let i = 0; i < big.length; i += 500) buffer.append(big.slice(i, i + 500), 1000, 18_000 + i, false);
    const rows = buffer.through(ALL).events();
    expect(rows.map((e) => [e.id, e.seq, e.data])).toEqual(
      [...input.slice(0, 18_000), ...big].map((e, i) => [e.id, i, e.data]),
    );
    expect(buffer.rows).toBe(20_000);
    expect(buffer.bytes).toBe(EventColumns.from(rows).bytes);
  });

  it("refills flushed full-size blocks only when told nothing reads them, and reads every refilled row right", () => {
    for (const reuse of [true, false]) {
      const buffer = new EventBuffer(owner);
      // Full blocks of rows with a user and non-ASCII data...
      const first = sampleEvents(20_000).map((e) => ({ ...e, userId: `u${e.seq}`, data: `{"n":"日本 ${e.seq}"}` }));
      for (let i = 0; i < first.length; i += 1000) buffer.append(first.slice(i, i + 1000), 1000, i, false);
      const flushed = buffer.range(-1, 19_999);
      const flushedBlocks = new Set(flushed.parts.map((p) => p.columns));
      buffer.removeThrough(19_999, reuse);
      // ...then rows without a user and with ASCII data go where they were.
      const second = sampleEvents(20_000, 20_000).map((e) => ({ ...e, userId: null, data: `{"m":${e.seq}}` }));
      for (let i = 0; i < second.length; i += 1000) buffer.append(second.slice(i, i + 1000), 2000, 20_000 + i, false);
      const batch = buffer.through(ALL);
      const refilled = batch.parts.filter((p) => flushedBlocks.has(p.columns)).length;
      expect(refilled).toBe(reuse ? 2 : 0);
      expect(batch.events().map((e) => [e.id, e.seq, e.userId, e.data, e.receivedAt])).toEqual(
        second.map((e) => [e.id, e.seq, null, e.data, 2000]),
      );
      const table = batch.table();
      expect(table.getChild("user_id")?.nullCount).toBe(20_000);
      expect(table.getChild("data")?.get(19_999)).toBe('{"m":39999}');
      expect(buffer.bytes).toBe(EventColumns.from(batch.events()).bytes);
      expect(buffer.rows).toBe(20_000);
      if (!reuse) expect(flushed.events().map((e) => e.userId)).toEqual(first.map((e) => e.userId));
    }
  });

  it("does not keep a flushed block that grew far past full size (a burst's peak memory)", () => {
    const buffer = new EventBuffer(owner);
    const flush = (through: number) => {
      const blocks = new Set(buffer.range(-1, through).parts.map((p) => p.columns));
      buffer.removeThrough(through, true);
      return blocks;
    };
    const input = sampleEvents(10_000);
    for (let i = 0; i < input.length; i += 1000) buffer.append(input.slice(i, i + 1000), 1000, i, false);
    flush(9_999); // blocks sized for these rows, kept
    // A burst of rows ten times larger into a refilled block, flushed before it fills: its data
    // array doubled its way up to several times a full-size block's.
    const big = sampleEvents(3000, 10_000).map((e) => ({ ...e, data: JSON.stringify({ blob: "x".repeat(3000) }) }));
    for (let i = 0; i < big.length; i += 1000) buffer.append(big.slice(i, i + 1000), 1000, 10_000 + i, false);
    const grown = flush(12_999);
    buffer.append(sampleEvents(1000, 13_000), 2000, 13_000, false);
    const [open] = buffer.through(ALL).parts;
    expect(grown.has(open!.columns)).toBe(false);
  });

  it("stamps rows with the owner, the receipt time and consecutive seqs", () => {
    const buffer = new EventBuffer(owner);
    const input = sampleEvents(3).map((e) => ({ ...e, tenant: "other", replica: "x", seq: 99 }));
    buffer.append(input, 1234, 7, true);
    const rows = buffer.through(ALL).events();
    expect(rows.map((e) => [e.tenant, e.replica, e.receivedAt, e.seq])).toEqual([
      ["acme", "acme-0", 1234, 7],
      ["acme", "acme-0", 1234, 8],
      ["acme", "acme-0", 1234, 9],
    ]);
  });

  it("is due for an age flush by the oldest event of each importance class", () => {
    const buffer = new EventBuffer(owner);
    expect(buffer.dueAt(10, 100)).toBeNull();
    const [low, , high] = sampleEvents(3);
    buffer.append([low!], 1000, 0, false);
    expect(buffer.dueAt(10, 100)).toBe(1100);
    buffer.append([high!], 1050, 1, false);
    expect(buffer.dueAt(10, 100)).toBe(1060);
  });
});

describe("EventColumns", () => {
  it("gives back every field of every row, nulls and non-ASCII included, built from rows a chunk at a time", () => {
    const events = sampleEvents(2500); // several chunks, each row with its own receipt time and seq
    const columns = EventColumns.from(events);
    expect(columns.length).toBe(2500);
    for (let i = 0; i < events.length; i++) expect(columns.row(i)).toEqual(events[i]);
    const oneByOne = new EventColumns("acme", "acme-0", 1);
    for (const e of events) oneByOne.push(e, e.receivedAt, e.seq, false);
    expect(columns.encode(0, 2500)).toEqual(oneByOne.encode(0, 2500));
    expect(columns.bytes).toBe(oneByOne.bytes);
  });

  it("reads rows right before and after appends, ASCII-only columns and mixed ones alike", () => {
    const events = sampleEvents(12).map((e, i) => ({ ...e, data: JSON.stringify({ i }), source: `src-${i}` }));
    const columns = EventColumns.from(events.slice(0, 6));
    expect(columns.row(5)).toEqual(events[5]); // decodes the all-ASCII columns once
    for (const e of events.slice(6, 9)) columns.push(e, e.receivedAt, e.seq, false);
    const odd = { ...(events[9] as (typeof events)[number]), source: "ünïcode ✓", data: '{"x":"日本"}' };
    columns.push(odd, odd.receivedAt, odd.seq, false);
    for (const e of events.slice(10)) columns.push(e, e.receivedAt, e.seq, false);
    const expected = [...events.slice(0, 9), odd, ...events.slice(10)];
    for (let i = 0; i < expected.length; i++) expect(columns.row(i)).toEqual(expected[i]);
    const copy = new EventColumns("acme", "acme-0", 1);
    copy.appendEncoded(columns.encode(0, expected.length));
    for (let i = 0; i < expected.length; i++) expect(copy.row(i)).toEqual(expected[i]);
  });

  it("stores a batch exactly as row-by-row pushes do: non-ASCII, emoji, lone surrogates, nulls", () => {
    const rows = (events: ReturnType<typeof sampleEvents>) => {
      const one = new EventColumns("acme", "acme-0", 1);
      for (const e of events) one.push(e, e.receivedAt, e.seq, false);
      const batch = new EventColumns("acme", "acme-0", 1);
      batch.pushBatch(events, events[0]?.receivedAt ?? 0, events[0]?.seq ?? 0, false);
      return { one, batch };
    };
    const same = (events: ReturnType<typeof sampleEvents>) => {
      const stamped = events.map((e, i) => ({ ...e, receivedAt: events[0]?.receivedAt ?? 0, seq: i }));
      const { one, batch } = rows(stamped);
      expect(batch.length).toBe(stamped.length);
      expect(batch.bytes).toBe(one.bytes);
      expect(batch.encode(0, batch.length)).toEqual(one.encode(0, one.length));
      for (let i = 0; i < stamped.length; i++) expect(batch.row(i)).toEqual(one.row(i));
    };
    same(sampleEvents(40)); // ASCII and non-ASCII values, nulls in three columns
    same(sampleEvents(30).map((e) => ({ ...e, data: JSON.stringify({ text: e.id }) }))); // all ASCII
    const odd = sampleEvents(4);
    same([
      { ...(odd[0] as (typeof odd)[number]), source: "emoji 🦆", userId: "\ud83e" }, // a lone high surrogate
      { ...(odd[1] as (typeof odd)[number]), source: "\udd86 tail", userId: "" }, // then a lone low one
      { ...(odd[2] as (typeof odd)[number]), type: "日本", data: '{"d":"🦆🦆"}' },
      odd[3] as (typeof odd)[number],
    ]);
    // A high surrogate ending one value and a low one starting the next would join into one
    // character if encoded together: each must still get its own U+FFFD.
    same([
      { ...(odd[0] as (typeof odd)[number]), id: "a\ud83e" },
      { ...(odd[1] as (typeof odd)[number]), id: "\udd86b" },
    ]);
  });

  it("round-trips rows through the SQLite blob format, committed flags included", () => {
    const events = sampleEvents(120);
    const columns = EventColumns.from(events, true);
    const restored = new EventColumns("acme", "acme-0", 1);
    restored.appendEncoded(columns.encode(10, 110));
    expect(restored.length).toBe(100);
    expect(restored.bytes).toBe(
      Array.from({ length: 100 }, (_, i) => columns.rowBytes(10 + i)).reduce((a, b) => a + b, 0),
    );
    for (let i = 0; i < 100; i++) {
      expect(restored.row(i)).toEqual(events[10 + i]);
      expect(restored.committedAt(i)).toBe(true);
    }
    expect(() => restored.appendEncoded(new Uint8Array(16))).toThrow(/version/);
  });

  it("builds an Arrow table whose values match the rows, across slices of several blocks", () => {
    const events = sampleEvents(50);
    const a = EventColumns.from(events.slice(0, 25));
    const b = EventColumns.from(events.slice(25));
    const batch = new EventBatch([
      { columns: a, start: 5, end: 25 },
      { columns: b, start: 0, end: 10 },
    ]);
    const table = batch.table();
    expect(table.numRows).toBe(30);
    const ids = table.getChild("id")?.toArray() as string[];
    expect([...ids]).toEqual(events.slice(5, 35).map((e) => e.id));
    expect(table.getChild("seq")?.get(0)).toBe(5n);
    expect(table.getChild("user_id")?.get(0)).toBeNull();
    expect(table.getChild("tenant")?.get(29)).toBe("acme");
    expect(batch.seqRange()).toEqual({ first: 5, last: 34 });
  });

  it("splits a batch by UTC hour of receipt without reordering", () => {
    const hour = 3_600_000;
    const events = sampleEvents(6).map((e, i) => ({ ...e, receivedAt: [0, 1, 2, 0, 2, 1][i]! * hour + 5 }));
    const parts = EventBatch.from(events).byHour();
    expect(parts.map(([h, b]) => [h, b.events().map((e) => e.seq)])).toEqual([
      [0, [0, 3]],
      [hour, [1, 5]],
      [2 * hour, [2, 4]],
    ]);
  });
});
