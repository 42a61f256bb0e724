import { EventEmitter } from "node:events";
import type { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { parseEventLine } from "../../sdk/cli/lines";
import { bucketRows } from "../../sdk/cli/mv";
import { eventLine, formatTable, outputMode, writeOrWait } from "../../sdk/cli/output";
import { type SendSummary, summaryText } from "../../sdk/cli/send";
import { shardRows } from "../../sdk/cli/stats";
import type { TailEvent } from "../../sdk/types";

const event: TailEvent = {
  id: "e1",
  ts: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
  receivedAt: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
  source: "web-app",
  type: "signup",
  importance: "high",
  userId: "u1",
  anonymousId: null,
  sessionId: null,
  data: { plan: "pro" },
  replica: "acme-0",
  seq: 1,
} as TailEvent;

describe("ducktail CLI output", () => {
  it("prints for a person on a TTY and JSON into a pipe; colours unless NO_COLOR", () => {
    expect(outputMode({ isTTY: true }, {})).toEqual({ tty: true, color: true });
    expect(outputMode({ isTTY: true }, { NO_COLOR: "1" })).toEqual({ tty: true, color: false });
    expect(outputMode({}, {})).toEqual({ tty: false, color: false });
    expect(outputMode({}, { FORCE_COLOR: "1" })).toEqual({ tty: false, color: true });
  });

  it("formats a tail event on one line, coloured only when asked", () => {
    expect(eventLine(event, false)).toBe('03:04:05.006 high     web-app signup user=u1 {"plan":"pro"}');
    const coloured = eventLine(event, true);
    expect(coloured).toContain("\x1b[33mhigh");
    expect(coloured.replace(new RegExp(`${String.fromCharCode(27)}\\[\\d+m`, "g"), "")).toBe(eventLine(event, false));
  });

  it("aligns a table, numbers to the right, nested values as JSON", () => {
    const table = formatTable([
      { path: "/pricing", views: 120, tags: ["a"] },
      { path: "/", views: 7, tags: null },
    ]);
    expect(table).toBe(
      ["path      views  tags", "--------  -----  -----", '/pricing    120  ["a"]', "/             7", ""].join("\n"),
    );
    expect(formatTable([], ["type", "n"])).toContain("(no rows)");
  });

  it("flattens each shard's main counters into a row", () => {
    const rows = shardRows({ shards: [{ n: 0, name: "acme-0", state: "routed", stats: { received: 5, stored: 4 } }] });
    expect(rows[0]).toMatchObject({ n: 0, name: "acme-0", state: "routed", received: 5, stored: 4 });
  });

  it("waits for 'drain' only when the stream says it is full", async () => {
    const stream = Object.assign(new EventEmitter(), { full: false, write: () => !stream.full });
    await writeOrWait(stream as unknown as Writable, "a\n"); // resolves at once
    stream.full = true;
    let resolved = false;
    const waiting = writeOrWait(stream as unknown as Writable, "b\n").then(() => {
      resolved = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(resolved).toBe(false);
    stream.emit("drain");
    await waiting;
    expect(resolved).toBe(true);
    expect(stream.listenerCount("drain")).toBe(0);
  });
});

describe("ducktail send input and summary", () => {
  it("reads an NDJSON line as an event and passes its fields through for the server to check", () => {
    const parsed = parseEventLine('{"type":"signup","data":{"a":1},"userId":"u1","importance":"loud","extra":1}');
    expect(parsed).toEqual({
      ok: true,
      type: "signup",
      data: { a: 1 },
      options: expect.objectContaining({ userId: "u1", importance: "loud" }),
    });
  });

  it("refuses what is not a JSON object", () => {
    expect(parseEventLine("{oops")).toMatchObject({ ok: false, message: expect.stringMatching(/^bad JSON/) });
    expect(parseEventLine("[1]")).toEqual({ ok: false, message: "not a JSON object" });
    expect(parseEventLine("null")).toEqual({ ok: false, message: "not a JSON object" });
  });

  it("lists every problem by line in the summary", () => {
    const summary: SendSummary = {
      lines: 5,
      sent: 4,
      accepted: 3,
      rejected: [{ line: 4, code: "invalid_field", message: "type is required" }],
      invalid: [{ line: 2, message: "bad JSON: x" }],
      storageMode: "buffered",
    };
    expect(summaryText(summary, false)).toBe(
      [
        "3 accepted, 1 rejected, 1 invalid lines skipped (5 lines, storage mode buffered)",
        "line  problem        reason",
        "----  -------------  ----------------",
        "   2  invalid        bad JSON: x",
        "   4  invalid_field  type is required",
        "",
      ].join("\n"),
    );
  });
});

describe("mv --step's table", () => {
  it("has one row per bucket: its start and its total's numbers, blank when empty", () => {
    const rows = bucketRows([
      { start: 0, total: { path: "*", views: 3, uniques: 2 }, rows: [] },
      { start: 300_000, total: null, rows: [] },
    ]);
    expect(rows).toEqual([
      { time: "1970-01-01T00:00:00.000Z", views: 3, uniques: 2 },
      { time: "1970-01-01T00:05:00.000Z" },
    ]);
    expect(formatTable(rows)).toMatch(/1970-01-01T00:05:00.000Z\s*\n/);
  });
});
