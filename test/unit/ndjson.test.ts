import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventBatch } from "../../src/columns/batch";
import { eventJson } from "../../src/columns/json";
import type { StoredEvent } from "../../src/protocol/events";
import { ndjsonBytes, toNdjson } from "../../src/sinks/ndjson";
import { sampleEvents } from "../helpers/events";

/** The slow, obviously right NDJSON: JSON.stringify per field of each decoded row. */
function reference(batch: EventBatch): string {
  return batch
    .events()
    .map((e) => `${eventJson(e)}\n`)
    .join("");
}

describe("NDJSON from columns", () => {
  it("writes the same text as JSON.stringify per field, nulls and non-ASCII included", () => {
    const batch = EventBatch.from(sampleEvents(3000));
    expect(toNdjson(batch)).toBe(reference(batch));
    const lines = new TextDecoder().decode(ndjsonBytes(batch)).trimEnd().split("\n");
    expect(lines).toHaveLength(3000);
    expect(JSON.parse(lines[7] as string)).toEqual({
      ...sampleEvents(1, 7)[0],
      data: JSON.parse(sampleEvents(1, 7)[0]?.data as string),
    });
  });

  it("escapes quotes, backslashes and control characters exactly as JSON.stringify does", () => {
    const text = fc.string({ unit: "grapheme", maxLength: 30 });
    fc.assert(
      fc.property(
        text,
        text,
        fc.option(text, { nil: null }),
        fc.integer({ min: -1e12, max: 4e12 }),
        (id, type, userId, ts) => {
          const [base] = sampleEvents(1) as [StoredEvent];
          const tricky = { ...base, id: `${id}"\\\u0001\n\t`, type, userId, ts, data: JSON.stringify({ s: type }) };
          const batch = EventBatch.from([tricky, base]);
          expect(toNdjson(batch)).toBe(reference(batch));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("is empty for an empty batch", () => {
    expect(ndjsonBytes(EventBatch.from([]))).toHaveLength(0);
  });
});
