import { describe, expect, it } from "vitest";
import { EventBuffer } from "../../src/replica/buffer";
import { sampleEvents } from "../helpers/events";

describe("EventBuffer", () => {
  it("drops only uncommitted low events, oldest first, down to the limit", () => {
    const buffer = new EventBuffer();
    const events = sampleEvents(40); // importance cycles low, normal, high, critical
    buffer.append(events.slice(0, 20), true);
    buffer.append(events.slice(20), false);
    const before = buffer.bytes;
    const dropped = buffer.dropLow(before - 1);
    expect(dropped).toBe(1);
    expect(buffer.through(Number.MAX_SAFE_INTEGER).map((e) => e.seq)).not.toContain(20);
    expect(buffer.dropLow(0)).toBe(4);
    const left = buffer.through(Number.MAX_SAFE_INTEGER);
    expect(left.filter((e) => e.importance === "low").every((e) => e.seq < 20)).toBe(true);
  });

  it("removes flushed events by seq and keeps byte counts exact", () => {
    const buffer = new EventBuffer();
    buffer.append(sampleEvents(10), false);
    buffer.removeThrough(4);
    expect(buffer.rows).toBe(5);
    expect(buffer.through(7).map((e) => e.seq)).toEqual([5, 6, 7]);
    buffer.removeThrough(9);
    expect(buffer.bytes).toBe(0);
    expect(buffer.lastSeq).toBeNull();
  });
});
