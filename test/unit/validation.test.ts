import { describe, expect, it } from "vitest";
import { IMPORTANCE, importanceRank, validateBatch } from "../../src/protocol/events";
import { DEFAULT_LIMITS } from "../../src/protocol/limits";

const NOW = 1_764_000_000_000;
const check = (events: unknown[]) => validateBatch(events, NOW, DEFAULT_LIMITS);

describe("event validation", () => {
  it("normalizes a minimal event with defaults and a generated id", () => {
    const { events, rejected } = check([{ type: "pageview" }]);
    expect(rejected).toEqual([]);
    expect(events[0]).toMatchObject({
      ts: NOW,
      source: "unknown",
      type: "pageview",
      importance: "normal",
      userId: null,
      anonymousId: null,
      sessionId: null,
      data: "{}",
    });
    expect(events[0]?.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("accepts timestamps as epoch ms and as ISO-8601, and rejects anything else", () => {
    const { events, rejected } = check([
      { type: "a", timestamp: 1_700_000_000_123 },
      { type: "b", timestamp: "2026-11-25T01:02:03.456Z" },
      { type: "c", timestamp: "2026-11-25T02:02:03+01:00" },
      { type: "d", timestamp: "last tuesday" },
      { type: "e", timestamp: -5 },
      { type: "f", timestamp: Number.NaN },
    ]);
    expect(events.map((e) => e.ts)).toEqual([
      1_700_000_000_123,
      Date.UTC(2026, 10, 25, 1, 2, 3, 456),
      Date.UTC(2026, 10, 25, 1, 2, 3),
    ]);
    expect(rejected.map((r) => [r.index, r.code])).toEqual([
      [3, "invalid_timestamp"],
      [4, "invalid_timestamp"],
      [5, "invalid_timestamp"],
    ]);
  });

  it("rejects each invalid event with its index and keeps the valid ones (partial success)", () => {
    const { events, indexes, rejected } = check([
      { type: "ok" },
      "string",
      null,
      { type: "" },
      { type: "x", importance: "urgent" },
      { type: "x", data: [1, 2] },
      { type: "x", userId: 7 },
      { type: "x", properties: {} },
      { type: "ok2", data: { nested: { a: [1, "ü"] } } },
    ]);
    expect(events.map((e) => e.type)).toEqual(["ok", "ok2"]);
    expect(indexes).toEqual([0, 8]);
    expect(rejected.map((r) => [r.index, r.code])).toEqual([
      [1, "invalid_event"],
      [2, "invalid_event"],
      [3, "invalid_field"],
      [4, "invalid_field"],
      [5, "invalid_field"],
      [6, "invalid_field"],
      [7, "invalid_field"],
    ]);
    expect(rejected.every((r) => r.message.length > 0)).toBe(true);
    expect(events[1]?.data).toBe('{"nested":{"a":[1,"ü"]}}');
  });

  it("rejects events over the per-event size limit", () => {
    const { rejected } = check([{ type: "big", data: { s: "x".repeat(DEFAULT_LIMITS.maxEventBytes) } }]);
    expect(rejected).toMatchObject([{ index: 0, code: "event_too_large" }]);
  });

  it("ranks importances in IMPORTANCE's order, and anything else as -1", () => {
    expect(IMPORTANCE.map(importanceRank)).toEqual([0, 1, 2, 3]);
    for (const other of ["", "Critical", "urgent", null, undefined, 2]) expect(importanceRank(other)).toBe(-1);
  });
});
