import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/protocol/errors";
import { ackFrame, type FrameError, type IngestResult, parseFrame } from "../../src/protocol/frames";
import { DEFAULT_LIMITS } from "../../src/protocol/limits";

function code(text: string): [string, string | undefined] {
  try {
    parseFrame(text, DEFAULT_LIMITS);
    return ["ok", undefined];
  } catch (err) {
    return [(err as FrameError).code, (err as FrameError).frameId];
  }
}

describe("frame parsing", () => {
  it("reads events frames, leaving the storage mode to the socket when absent", () => {
    expect(parseFrame('{"type":"events","id":"1","events":[]}', DEFAULT_LIMITS)).toEqual({
      type: "events",
      id: "1",
      events: [],
      storageMode: undefined,
    });
  });

  it("names the error and keeps the frame id where it can be read", () => {
    expect(code("nope")).toEqual(["bad_json", undefined]);
    expect(code("[1]")).toEqual(["bad_frame", undefined]);
    expect(code('{"type":"x","id":9}')).toEqual(["unknown_type", "9"]);
    expect(code('{"type":"events","id":"e"}')).toEqual(["bad_frame", "e"]);
    expect(code('{"type":"events","id":"m","events":[],"storageMode":"eventually"}')).toEqual([
      "invalid_storage_mode",
      "m",
    ]);
    expect(code(`{"type":"ping","pad":"${"é".repeat(DEFAULT_LIMITS.maxFrameBytes / 2)}"}`)).toEqual([
      "frame_too_large",
      undefined,
    ]);
  });
});

describe("ack frames", () => {
  it("are written by hand exactly as JSON.stringify would write them", () => {
    const results: IngestResult[] = [
      { received: 100, stored: 100, rejected: [], storageMode: "buffered" },
      { received: 0, stored: 0, rejected: [], storageMode: "fire-and-forget" },
      {
        received: 3,
        stored: 2,
        rejected: [{ index: 1, code: ErrorCode.invalidField, message: 'type "x"' }],
        storageMode: "confirmed",
      },
      { received: 2, stored: 1, rejected: [], storageMode: "durable", duplicates: 1 },
    ];
    for (const id of [undefined, "f-1", 'quote " and \\ back\nslash', "ünï ✓"]) {
      for (const r of results) {
        const text = ackFrame(id, r);
        expect(text).toBe(JSON.stringify({ type: "ack", id, ...r }));
        expect(JSON.parse(text)).toEqual(id === undefined ? { type: "ack", ...r } : { type: "ack", id, ...r });
      }
    }
  });
});
