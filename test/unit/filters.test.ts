import { describe, expect, it } from "vitest";
import { compileFilter, type TailEvent, validateFilter } from "../../src/gossip/filters";
import { TailQueue, TailRouter } from "../../src/gossip/tail";

const event = (over: Partial<TailEvent> = {}): TailEvent => ({
  id: "e1",
  ts: 1,
  receivedAt: 2,
  source: "web-app",
  type: "pageview",
  importance: "normal",
  userId: null,
  anonymousId: "a1",
  sessionId: null,
  data: { path: "/pricing", status: 503, nested: { ok: true } },
  replica: "t-0",
  seq: 0,
  ...over,
});

const matches = (filter: unknown, e = event()) => compileFilter(validateFilter(filter))(e);

describe("tail filters", () => {
  it("matches source/type globs, minimum importance and where predicates on fields and data paths", () => {
    expect(matches({})).toBe(true);
    expect(matches({ source: "web-*" })).toBe(true);
    expect(matches({ source: ["api", "worker:*"] })).toBe(false);
    expect(matches({ type: "page*", source: "web-app" })).toBe(true);
    expect(matches({ type: "p.geview" })).toBe(false); // glob, not regex
    expect(matches({ minImportance: "high" })).toBe(false);
    expect(matches({ minImportance: "high" }, event({ importance: "critical" }))).toBe(true);
    expect(matches({ where: [{ path: "data.status", op: "gte", value: 500 }] })).toBe(true);
    expect(matches({ where: [{ path: "data.status", op: "lt", value: 500 }] })).toBe(false);
    expect(matches({ where: [{ path: "data.path", op: "prefix", value: "/pri" }] })).toBe(true);
    expect(matches({ where: [{ path: "data.nested.ok", op: "eq", value: true }] })).toBe(true);
    expect(matches({ where: [{ path: "data.missing.deep", op: "ne", value: 1 }] })).toBe(true);
    expect(matches({ where: [{ path: "userId", op: "eq", value: null }] })).toBe(true);
    expect(matches({ where: [{ path: "data.path", op: "gt", value: 1 }] })).toBe(false); // strings never order
  });

  it("names what is wrong with a bad filter", () => {
    const err = (f: unknown) => {
      try {
        validateFilter(f);
        return "ok";
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(err([])).toBe("filter: must be an object");
    expect(err({ type: [] })).toMatch(/^filter: type must be a glob/);
    expect(err({ minImportance: "urgent" })).toMatch(/^filter: minImportance must be one of/);
    expect(err({ where: [{ path: "color", op: "eq", value: 1 }] })).toMatch(/^filter: where\[0\]\.path/);
    expect(err({ where: [{ path: "data.a", op: "like", value: 1 }] })).toMatch(/^filter: where\[0\]\.op/);
    expect(err({ where: [{ path: "data.a", op: "prefix", value: 1 }] })).toBe(
      "filter: where[0].value must be a string for prefix",
    );
  });
});

describe("tail routing and queues", () => {
  it("batches matches per owner and sends at once past the batch size", () => {
    const sent: [string, number][] = [];
    const router = new TailRouter((owner, batches) => sent.push([owner, batches[0]?.events.length ?? 0]), 10, 3);
    router.add({ id: "s1", owner: "r1", client: "c", filter: { type: "click" }, sample: 1 });
    router.offer([event(), event({ type: "click" }), event({ type: "click" })]);
    expect(sent).toEqual([]);
    router.offer([event({ type: "click" })]);
    expect(sent).toEqual([["r1", 3]]);
  });

  it("forwards about `sample` of the matches", () => {
    let forwarded = 0;
    const router = new TailRouter(
      (_owner, batches) => {
        forwarded += batches[0]?.events.length ?? 0;
      },
      10,
      100_000,
    );
    router.add({ id: "s1", owner: "r1", client: "c", filter: {}, sample: 0.25 });
    router.offer(Array.from({ length: 4000 }, (_, i) => event({ id: `e${i}` })));
    router.flush();
    expect(forwarded).toBeGreaterThan(800);
    expect(forwarded).toBeLessThan(1200);
  });

  it("keeps at most `window` frames unacknowledged and the newest `capacity` events, reporting drops first", () => {
    const frames: { type: string; seq?: number; count?: number; events?: unknown[] }[] = [];
    const q = new TailQueue("s", (f) => frames.push(f), 5, 2, 2);
    q.push([1, 2, 3, 4, 5, 6, 7, 8].map((n) => event({ id: `e${n}` })));
    // 8 pushed into room for 5: the 3 oldest go, and that is said before the first frame.
    expect(frames.map((f) => [f.type, f.seq ?? f.count])).toEqual([
      ["dropped", 3],
      ["tail", 1],
      ["tail", 2],
    ]);
    expect(q.queued).toBe(1);
    q.push([
      event({ id: "e9" }),
      event({ id: "e10" }),
      event({ id: "e11" }),
      event({ id: "e12" }),
      event({ id: "e13" }),
    ]);
    expect(frames).toHaveLength(3); // window full until the subscriber acks
    q.ack(2);
    expect(frames.slice(3).map((f) => [f.type, f.seq ?? f.count])).toEqual([
      ["dropped", 1],
      ["tail", 3],
      ["tail", 4],
    ]);
    expect((frames[4]?.events as TailEvent[] | undefined)?.map((e) => e.id)).toEqual(["e9", "e10"]);
    expect(q.droppedTotal).toBe(4);
  });
});
