import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { NormalizedEvent } from "../../src/protocol/events";
import type { TailEvent } from "../../src/protocol/tail";
import { TakenOffer } from "../../src/replica/ingest";

const text = fc.string({ unit: "grapheme", maxLength: 12 });
const normalized = fc.record({
  id: text,
  ts: fc.integer({ min: 0, max: 2 ** 45 }),
  source: text,
  type: text,
  importance: fc.constantFrom("low", "normal", "high", "critical" as const),
  userId: fc.option(text),
  anonymousId: fc.option(text),
  sessionId: fc.option(text),
  data: fc.dictionary(text, fc.jsonValue({ maxDepth: 2 })),
});

describe("tail event JSON", () => {
  it("is built from the normalized event, byte for byte what JSON.stringify makes of the tail event it describes", () => {
    fc.assert(
      fc.property(fc.array(normalized, { minLength: 1, maxLength: 4 }), fc.boolean(), (rows, withContext) => {
        const context = withContext ? JSON.stringify({ country: "DE", city: 'Köln "am Rhein"', bot: false }) : null;
        const accepted: NormalizedEvent[] = rows.map((r) => ({ ...r, data: JSON.stringify(r.data) }));
        const events: TailEvent[] = rows.map((r, i) => ({
          ...(accepted[i] as NormalizedEvent),
          data: JSON.parse(JSON.stringify(r.data)),
          receivedAt: 1_700_000_000_000,
          replica: "acme-3",
          seq: 40 + i,
          ...(context && { context: JSON.parse(context) }),
        }));
        // As a frame's JSON.parse gives them (data's -0 arrives as 0 once sent as JSON text).
        const raw = rows.map((r) => JSON.parse(JSON.stringify(r)));
        const batch = { events: accepted, indexes: rows.map((_, i) => i), rejected: [] };
        const taken = { accepted, raw, batch, now: 1_700_000_000_000, transformed: null, context };
        const offer = new TakenOffer(taken, 40 + rows.length - 1, "acme-3");
        events.forEach((e, i) => {
          expect(offer.json(i)).toBe(JSON.stringify(e));
          expect(offer.event(i)).toEqual(e);
        });
      }),
    );
  });
});
