import { describe, expect, it } from "vitest";
import { compileFilter, validateFilter } from "../../src/gossip/filters";
import { type LaterText, type LocalSink, offerOf, TailQueue, TailRouter } from "../../src/gossip/tail";
import type { TailEvent } from "../../src/protocol/tail";

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

/** A batch as the tests read them: forwarded (JSON texts), or what the local sink took in one offer. */
interface LocalBatch {
  texts: (string | LaterText)[];
  subs: { subscription: string; events: number[]; dropped?: number }[];
}

/** A local sink that collects what one offer gave this replica's own subscribers as one batch, passed to `sent`. */
function collect(sent: (batch: LocalBatch) => void): LocalSink {
  let batch: LocalBatch | null = null;
  return {
    take(subscription, text) {
      batch ??= { texts: [], subs: [] };
      let at = batch.texts.indexOf(text);
      if (at < 0) at = batch.texts.push(text) - 1;
      let forSub = batch.subs.find((s) => s.subscription === subscription);
      if (!forSub) {
        forSub = { subscription, events: [] };
        batch.subs.push(forSub);
      }
      forSub.events.push(at);
    },
    end() {
      if (batch) sent(batch);
      batch = null;
    },
  };
}

describe("tail routing and queues", () => {
  /** A router whose forwards settle only when the test says so. */
  const manual = (self = "me") => {
    const sent: { owner: string; batch: LocalBatch; settle: () => void }[] = [];
    const router = new TailRouter(
      self,
      (owner, batch) => new Promise<void>((settle) => sent.push({ owner, batch, settle })),
      collect((batch) => sent.push({ owner: self, batch, settle: () => {} })),
    );
    return { router, sent };
  };
  const text = (t: string | LaterText | undefined) => (typeof t === "string" ? t : (t as LaterText).text());
  const textsOf = (batch: LocalBatch, sub: string) =>
    batch.subs.find((s) => s.subscription === sub)?.events.map((i) => JSON.parse(text(batch.texts[i])).id);

  it("sends the first matches at once, batches the rest while that forward is in flight, and sends them when it settles", async () => {
    const { router, sent } = manual();
    router.add({ id: "s1", owner: "r1", client: "c", filter: { type: "click" }, sample: 1 });
    router.offer(offerOf([event({ id: "a" }), event({ id: "b", type: "click" })]));
    expect(sent.map((s) => [s.owner, textsOf(s.batch, "s1")])).toEqual([["r1", ["b"]]]);
    router.offer(offerOf([event({ id: "c", type: "click" })]));
    router.offer(offerOf([event({ id: "d", type: "click" }), event({ id: "e", type: "click" })]));
    expect(sent).toHaveLength(1);
    expect(router.waiting).toBe(3);
    sent[0]?.settle();
    await Promise.resolve();
    await Promise.resolve();
    expect(sent.map((s) => textsOf(s.batch, "s1"))).toEqual([["b"], ["c", "d", "e"]]);
    expect(router.waiting).toBe(0);
  });

  it("delivers its own subscribers' matches at once, with no forward in flight to wait for", () => {
    const { router, sent } = manual("me");
    router.add({ id: "mine", owner: "me", client: "c", filter: {}, sample: 1 });
    for (const id of ["a", "b", "c"]) router.offer(offerOf([event({ id })]));
    expect(sent.map((s) => textsOf(s.batch, "mine"))).toEqual([["a"], ["b"], ["c"]]);
  });

  it("makes each matched event's JSON once, shared by every subscription it matched; for its own subscribers, only when sent", () => {
    const { router, sent } = manual("me");
    for (let i = 0; i < 50; i++) {
      router.add({ id: `s${i}`, owner: "r1", client: `c${i}`, filter: {}, sample: 1 });
      router.add({ id: `m${i}`, owner: "me", client: `d${i}`, filter: {}, sample: 1 });
    }
    let made = 0;
    let later = 0;
    const events = [event({ id: "x" }), event({ id: "y" })];
    const json = (i: number) => {
      made++;
      return JSON.stringify(events[i]);
    };
    router.offer({
      count: events.length,
      event: (i) => events[i] as TailEvent,
      json,
      later: (i) => {
        later++;
        return { bytes: 300, text: () => json(i) };
      },
    });
    expect([made, later]).toEqual([2, 2]); // the other replica's texts now, ours deferred
    for (const owner of ["r1", "me"]) {
      const batch = sent.find((s) => s.owner === owner)?.batch as LocalBatch;
      expect(batch.texts).toHaveLength(2);
      expect(batch.subs).toHaveLength(50);
      for (const sub of batch.subs) expect(textsOf(batch, sub.subscription)).toEqual(["x", "y"]);
    }
  });

  it("finds filters by their eq value, and still checks the rest of such a filter", () => {
    const { router, sent } = manual("me");
    for (let i = 0; i < 1000; i++) {
      router.add({
        id: `k${i}`,
        owner: "me",
        client: "c",
        filter: { where: [{ path: "data.k", op: "eq", value: i }] },
        sample: 1,
      });
    }
    router.add({
      id: "k7-clicks",
      owner: "me",
      client: "c",
      filter: { type: "click", where: [{ path: "data.k", op: "eq", value: 7 }] },
      sample: 1,
    });
    router.add({ id: "all", owner: "me", client: "c", filter: {}, sample: 1 });
    router.offer(offerOf([event({ id: "p7", data: { k: 7 } }), event({ id: "c7", type: "click", data: { k: 7 } })]));
    router.offer(offerOf([event({ id: "s7", data: { k: "7" } })])); // a string is not the number 7
    const got = (sub: string) => sent.flatMap((s) => textsOf(s.batch, sub) ?? []);
    expect(got("k7")).toEqual(["p7", "c7"]);
    expect(got("k7-clicks")).toEqual(["c7"]);
    expect(got("k8")).toEqual([]);
    expect(got("all")).toEqual(["p7", "c7", "s7"]);
    router.remove("k7");
    router.offer(offerOf([event({ id: "q7", data: { k: 7 } })]));
    expect(got("k7")).toEqual(["p7", "c7"]);
    expect(router.size).toBe(1001);
  });

  it("drops (and counts per subscription) matches past maxPending while its owner is slow", async () => {
    const sent: { batch: LocalBatch; settle: () => void }[] = [];
    const router = new TailRouter(
      "me",
      (_owner, batch) => new Promise<void>((settle) => sent.push({ batch, settle })),
      collect(() => {}),
      5,
    );
    router.add({ id: "s", owner: "r1", client: "c", filter: {}, sample: 1 });
    router.offer(offerOf([event({ id: "first" })]));
    router.offer(offerOf(Array.from({ length: 9 }, (_, i) => event({ id: `e${i}` }))));
    expect(sent).toHaveLength(1);
    expect(router.waiting).toBe(5);
    sent[0]?.settle();
    await new Promise((r) => setTimeout(r, 0));
    const next = sent[1]?.batch as LocalBatch;
    expect(textsOf(next, "s")).toEqual(["e0", "e1", "e2", "e3", "e4"]);
    expect(next.subs[0]?.dropped).toBe(4); // the owner reports them to the subscriber as `dropped`
  });

  it("forwards about `sample` of the matches", () => {
    let forwarded = 0;
    const router = new TailRouter(
      "me",
      () => {},
      collect((batch) => {
        forwarded += batch.subs[0]?.events.length ?? 0;
      }),
    );
    router.add({ id: "s1", owner: "me", client: "c", filter: {}, sample: 0.25 });
    router.offer(offerOf(Array.from({ length: 4000 }, (_, i) => event({ id: `e${i}` }))));
    expect(forwarded).toBeGreaterThan(800);
    expect(forwarded).toBeLessThan(1200);
  });

  it("keeps at most `window` frames unacknowledged and the newest `capacity` events, reporting drops first", () => {
    const frames: { type: string; seq?: number; count?: number; events?: TailEvent[] }[] = [];
    // Seqs one apart here, to read; the real ones are random steps apart (below).
    const q = new TailQueue(
      "s",
      (text) => frames.push(JSON.parse(text)),
      5,
      2,
      2,
      () => 1,
    );
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
    expect(frames[4]?.events?.map((e) => e.id)).toEqual(["e9", "e10"]);
    expect(frames[4]?.events?.[0]).toEqual(event({ id: "e9" }));
    expect(q.droppedTotal).toBe(4);
  });

  it("releases frames only for seqs it sent: a blind acker counting 1, 2, 3... releases nothing", () => {
    const frames: { seq: number }[] = [];
    const q = new TailQueue("s", (text) => frames.push(JSON.parse(text)), 1000, 2, 1);
    q.push(Array.from({ length: 10 }, (_, i) => event({ id: `e${i}` })));
    expect(frames).toHaveLength(2);
    const held = q.heldBytes;
    for (let seq = -1; seq <= 10_000; seq++) expect(q.ack(seq), `seq ${seq}`).toBe(frames.some((f) => f.seq === seq));
    expect(frames.length).toBeLessThanOrEqual(4); // a guess may hit a real seq, once in 2^23
    const blindHits = frames.length - 2;
    expect(q.ack(frames.at(-1)?.seq as number)).toBe(true); // the seq it was sent releases every frame before
    expect(frames).toHaveLength(blindHits + 4);
    expect(q.heldBytes).toBeLessThan(held);
    // Seqs increase, by unpredictable steps.
    const seqs = frames.map((f) => f.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs.slice(1).map((s, i) => s - (seqs[i] as number))).size).toBeGreaterThan(1);
  });

  it("counts what it holds in bytes of the text it sends: queued, plus sent and unacknowledged", () => {
    const sent: string[] = [];
    const q = new TailQueue("s", (text) => sent.push(text), 4, 2, 2);
    const events = Array.from({ length: 9 }, (_, i) => event({ id: `e${i}`, data: { pad: "x".repeat(100 * i) } }));
    q.push(events);
    // 9 into room for 4: 5 dropped, then the "dropped" frame and two frames of 2 events; none queued.
    const texts = sent.map((t) => JSON.parse(t) as { type: string; seq?: number });
    expect(texts.map((f) => f.type)).toEqual(["dropped", "tail", "tail"]);
    const frameBytes = (sent[1] as string).length + (sent[2] as string).length;
    expect(q.heldBytes).toBe(frameBytes);
    expect(frameBytes).toBeGreaterThan(JSON.stringify(events.slice(5)).length);
    q.push([events[0] as TailEvent]);
    expect(q.heldBytes).toBe(frameBytes + JSON.stringify(events[0]).length);
    q.ack(texts[2]?.seq as number);
    expect(q.heldBytes).toBe((sent[3] as string).length);
    q.ack(JSON.parse(sent[3] as string).seq);
    expect(q.heldBytes).toBe(0);
  });
});
