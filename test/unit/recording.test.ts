import { describe, expect, it } from "vitest";
import { withoutInlineHandlers } from "../../sdk/dashboard/inline-handlers";
import { overLimits, recordOptions, sampled } from "../../sdk/recorder/options";
import { Outbox } from "../../sdk/recorder/outbox";
import { parseChunk, type SessionSummary } from "../../src/protocol/recording";
import { chunkKey, daysBetween, indexKey, seqOfKey } from "../../src/recording/keys";
import { addChunk, fromIndexBody, fromMetadata, summarizeChunk, toMetadata } from "../../src/recording/summary";

const meta = (at: number, href: string) => ({ type: 4, timestamp: at, data: { href } });
const error = (at: number) => ({ type: 5, timestamp: at, data: { tag: "error", payload: {} } });
const move = (at: number) => ({ type: 3, timestamp: at, data: { source: 1 } });

describe("recording chunks", () => {
  it("takes a well-formed chunk and keeps a non-empty userId and anonymousId only", () => {
    expect(parseChunk({ session: "a-1", seq: 3, events: [move(1)], userId: "", anonymousId: null })).toEqual({
      session: "a-1",
      seq: 3,
      events: [move(1)],
    });
    expect(parseChunk({ session: "a", seq: 0, events: [move(1)], userId: "u", anonymousId: "anon-1" })).toMatchObject({
      userId: "u",
      anonymousId: "anon-1",
    });
  });

  it.each([
    ["no session", { seq: 0, events: [move(1)] }, /session/],
    ["a session with a slash", { session: "a/b", seq: 0, events: [move(1)] }, /session/],
    ["a fractional seq", { session: "a", seq: 0.5, events: [move(1)] }, /seq/],
    ["no events", { session: "a", seq: 0, events: [] }, /events/],
    ["an event without a timestamp", { session: "a", seq: 0, events: [{ type: 3 }] }, /rrweb event/],
    ["a numeric userId", { session: "a", seq: 0, events: [move(1)], userId: 7 }, /userId/],
    ["an anonymousId that is an object", { session: "a", seq: 0, events: [move(1)], anonymousId: {} }, /anonymousId/],
    [
      "an anonymousId of 1025 characters",
      { session: "a", seq: 0, events: [move(1)], anonymousId: "a".repeat(1025) },
      /anonymousId must be a string of at most 1024/,
    ],
  ])("refuses %s, saying what is wrong", (_, raw, why) => {
    expect(() => parseChunk(raw)).toThrow(why);
  });
});

describe("session index", () => {
  it("spans every chunk's events, lists each page once in order and counts error events", () => {
    const first = summarizeChunk([meta(100, "https://a/"), move(150), error(160)]);
    const second = summarizeChunk([move(50), meta(300, "https://a/"), meta(310, "https://a/b"), error(320)]);
    const index = addChunk(addChunk(null, "s", first, 40, { anonymousId: "a1" }), "s", second, 60, { userId: "u1" });
    expect(index).toEqual({
      session: "s",
      start: 50,
      end: 320,
      pages: ["https://a/", "https://a/b"],
      userId: "u1",
      anonymousId: "a1",
      errors: 2,
      chunks: 2,
      bytes: 100,
    });
  });

  const metadataBytes = (m: Record<string, string>) =>
    new TextEncoder().encode(Object.entries(m).flat().join("")).byteLength;
  const pages = Array.from({ length: 50 }, (_, i) => `https://example.com/${"p".repeat(80)}/${i}`);
  const summary = { session: "s", start: 1, end: 2, pages, errors: 3, chunks: 4, bytes: 5 };

  it("keeps both ids and every other field in R2's 2 KB of custom metadata, with as many pages as fit", () => {
    const index = { ...summary, userId: "u".repeat(512), anonymousId: "ä".repeat(256) };
    const m = toMetadata(index);
    expect(metadataBytes(m)).toBeLessThanOrEqual(2048);
    const back = fromMetadata("s", m);
    expect(back).toEqual({ ...index, pages: pages.slice(0, back?.pages.length) });
    expect(back?.pages.length).toBeGreaterThan(0);
    expect(m.pageCount).toBe("50");
  });

  it("leaves ids too long for the metadata out and says to read the index object, still within 2 KB", () => {
    const index = { ...summary, userId: "ü".repeat(1024), anonymousId: "a".repeat(1024) };
    const m = toMetadata(index);
    expect(metadataBytes(m)).toBeLessThanOrEqual(2048);
    expect(JSON.stringify(m)).not.toContain("aaaa");
    expect(fromMetadata("s", m)).toBeNull();
    expect(fromIndexBody(JSON.stringify(index))).toEqual(index);
  });

  it("keeps the other ids a session's chunks carried (one user after another on a device), in the metadata too", () => {
    const chunk = summarizeChunk([move(1)]);
    let index = addChunk(null, "s", chunk, 10, { anonymousId: "a1" });
    index = addChunk(index, "s", chunk, 10, { userId: "alice", anonymousId: "a1" });
    index = addChunk(index, "s", chunk, 10, {}); // a chunk that names nobody changes nothing
    expect(index.otherUserIds).toBeUndefined();
    index = addChunk(index, "s", chunk, 10, { userId: "bob", anonymousId: "a2" });
    index = addChunk(index, "s", chunk, 10, { userId: "carol" });
    index = addChunk(index, "s", chunk, 10, { userId: "alice" });
    expect(index).toMatchObject({
      userId: "alice",
      otherUserIds: ["bob", "carol"],
      anonymousId: "a2",
      otherAnonymousIds: ["a1"],
    });
    expect(fromMetadata("s", toMetadata(index))).toEqual(index);
    // Too many to fit: the listing reads the index object, as for one long id.
    const crowd = { ...index, otherUserIds: Array.from({ length: 60 }, (_, i) => `user-${i}`) };
    const m = toMetadata(crowd);
    expect(metadataBytes(m)).toBeLessThanOrEqual(2048);
    expect(fromMetadata("s", m)).toBeNull();
    expect(fromIndexBody(JSON.stringify(crowd))).toEqual(crowd);
  });

  it("reads an index written before chunks had an anonymousId as having none", () => {
    const { anonymousId: _, ...old } = addChunk(null, "s", summarizeChunk([move(1)]), 10, { userId: "u" });
    expect(fromMetadata("s", toMetadata({ ...old, anonymousId: null }))?.anonymousId).toBeNull();
    expect(fromIndexBody(JSON.stringify(old)).anonymousId).toBeNull();
    expect(addChunk(old as SessionSummary, "s", summarizeChunk([move(2)]), 10, {}).anonymousId).toBeNull();
  });
});

describe("recording keys", () => {
  it("files chunks and the index under the session's day", () => {
    expect(chunkKey("t", "2026-12-03", "s", 12)).toBe("recordings/tenant=t/dt=2026-12-03/s/12.json.gz");
    expect(indexKey("t", "2026-12-03", "s")).toBe("recordings/tenant=t/sessions/dt=2026-12-03/s.json");
    expect(seqOfKey("recordings/tenant=t/dt=2026-12-03/s/12.json.gz")).toBe(12);
    expect(seqOfKey("recordings/tenant=t/sessions/dt=2026-12-03/s.json")).toBeNull();
    expect(daysBetween(Date.parse("2026-12-01T23:00:00Z"), Date.parse("2026-12-03T01:00:00Z"))).toEqual([
      "2026-12-01",
      "2026-12-02",
      "2026-12-03",
    ]);
  });
});

describe("the recorder's outbox", () => {
  it("numbers chunks from 0 with the page's ids, sends each once until resendMs passes without an ack, then again", () => {
    const box = new Outbox("s", 1000);
    box.add(['{"type":3}']);
    box.add(['{"type":2,"timestamp":5}'], { userId: "u", anonymousId: "a" });
    expect(box.due(0).map((c) => c.seq)).toEqual([0, 1]);
    expect(box.due(500)).toEqual([]);
    box.ack(0);
    expect(box.due(1000).map((c) => c.seq)).toEqual([1]);
    const sent = JSON.parse(box.unacked()[0]?.text ?? "");
    expect(sent).toEqual({
      session: "s",
      seq: 1,
      userId: "u",
      anonymousId: "a",
      events: [{ type: 2, timestamp: 5 }],
    });
    expect(parseChunk(sent)).toEqual(sent); // the server takes the chunk, ids and all
  });

  it("sends everything unacked again at once after a new socket", () => {
    const box = new Outbox("s", 60_000);
    box.add(["{}"], undefined);
    box.due(0);
    expect(box.due(1)).toEqual([]);
    box.resendAll();
    expect(box.due(2).map((c) => c.seq)).toEqual([0]);
  });

  it("stops a page's recording past maxMinutes or maxBytes, not before", () => {
    const o = recordOptions({ maxMinutes: 2, maxBytes: 1000 });
    expect(overLimits(o, 120_000, 1000)).toBe(false);
    expect(overLimits(o, 120_001, 0)).toBe(true);
    expect(overLimits(o, 0, 1001)).toBe(true);
  });

  it("picks a share of sessions by id: all at 1, none at 0, about the share between", () => {
    const ids = Array.from({ length: 2000 }, () => crypto.randomUUID());
    expect(ids.every((id) => sampled(id, 1))).toBe(true);
    expect(ids.some((id) => sampled(id, 0))).toBe(false);
    const share = ids.filter((id) => sampled(id, 0.25)).length / ids.length;
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.3);
    expect(sampled(ids[0] as string, 0.25)).toBe(sampled(ids[0] as string, 0.25));
  });

  it("takes recordOptions over the defaults and ignores values of the wrong type", () => {
    const o = recordOptions({ maxMinutes: 5, chunkMs: "fast", maxBytes: -1 });
    expect(o).toMatchObject({ maxMinutes: 5, chunkMs: 5000, maxBytes: 10_000_000 });
  });
});

describe("replay events", () => {
  it("lose their inline event handlers (snapshot, added nodes, attribute changes) and nothing else", () => {
    const events = [
      {
        type: 2,
        data: {
          node: {
            type: 0,
            childNodes: [
              { type: 2, tagName: "form", attributes: { id: "f", onsubmit: "return false" }, childNodes: [] },
            ],
          },
        },
      },
      {
        type: 3,
        data: {
          source: 0,
          adds: [{ parentId: 1, node: { type: 2, tagName: "a", attributes: { href: "/x", onClick: "go()" } } }],
          attributes: [{ id: 2, attributes: { onmouseover: "x()", class: "on" } }],
        },
      },
      { type: 3, data: { source: 2, onwhatever: 1 } },
    ];
    expect(withoutInlineHandlers(events)).toEqual([
      {
        type: 2,
        data: {
          node: { type: 0, childNodes: [{ type: 2, tagName: "form", attributes: { id: "f" }, childNodes: [] }] },
        },
      },
      {
        type: 3,
        data: {
          source: 0,
          adds: [{ parentId: 1, node: { type: 2, tagName: "a", attributes: { href: "/x" } } }],
          attributes: [{ id: 2, attributes: { class: "on" } }],
        },
      },
      { type: 3, data: { source: 2, onwhatever: 1 } },
    ]);
  });
});
