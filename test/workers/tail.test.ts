import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type Client, ev, eventually, inReplica, replicaStub, tenant } from "./harness";

type Frame = Record<string, unknown> & { type: string };

/** Reads tail frames for `subscription` until `count` events arrived, acking each frame. */
async function collect(c: Client, subscription: string, count: number): Promise<Record<string, unknown>[]> {
  const got: Record<string, unknown>[] = [];
  while (got.length < count) {
    const f = (await c.next()) as Frame;
    if (f.type !== "tail" || f.subscription !== subscription) throw new Error(`unexpected frame ${JSON.stringify(f)}`);
    got.push(...(f.events as Record<string, unknown>[]));
    c.send({ type: "tailAck", subscription, seq: f.seq });
  }
  return got;
}

const nextWithin = (c: Client, ms: number) => c.nextWithin(ms);

const clicks = (from: number, n: number, extra: Record<string, unknown> = {}) =>
  Array.from({ length: n }, (_, i) =>
    ev(i % 2 ? "click" : "view", { id: `e-${from + i}`, data: { n: from + i }, ...extra }),
  );

describe("live tail", () => {
  it("delivers exactly the matching events from every replica, and none of another tenant's", async () => {
    const t = tenant("tail-match");
    const sub = await t.socket("?client=watcher");
    const producers = await Promise.all([t.socket(), t.socket(), t.socket()]); // the third is on shard 1
    const reply = await sub.request({
      type: "subscribe",
      filter: { type: "cli*", source: ["test"], where: [{ path: "data.n", op: "gte", value: 10 }] },
    });
    expect(reply).toMatchObject({ type: "subscribed", replicas: 2 });
    const other = tenant("tail-other");
    const stranger = await other.socket();
    await stranger.events(clicks(0, 40));
    for (const [i, p] of producers.entries()) {
      expect(await p.events(clicks(i * 20, 20))).toMatchObject({ stored: 20 });
    }
    const expected = [...Array(60).keys()].filter((n) => n % 2 === 1 && n >= 10).map((n) => `e-${n}`);
    const got = await collect(sub, reply.subscription as string, expected.length);
    expect(got.map((e) => e.id).sort()).toEqual(expected.sort());
    expect(new Set(got.map((e) => e.replica))).toEqual(new Set(["tail-match-0", "tail-match-1"]));
    expect(got[0]).toMatchObject({ type: "click", source: "test", data: { n: expect.any(Number) } });
    expect(await nextWithin(sub, 100)).toBeNull(); // nothing extra: no duplicates, nothing from tail-other
    for (const c of [sub, stranger, ...producers]) c.close();
  });

  it("rejects bad filters with a clear error, needs read scope, and stops after unsubscribe everywhere", async () => {
    const t = tenant("tail-unsub");
    const sub = await t.socket();
    expect(await sub.request({ type: "subscribe", filter: { color: "red" } })).toMatchObject({
      type: "error",
      code: "bad_request",
      message: 'filter: unknown part "color"',
    });
    expect(
      await sub.request({ type: "subscribe", filter: { where: [{ path: "data.x", op: "gt", value: "a" }] } }),
    ).toMatchObject({ code: "bad_request", message: "filter: where[0].value must be a number for gt" });
    const writer = await tenant("tail-unsub", "write").socket();
    expect(await writer.request({ type: "subscribe", filter: {} })).toMatchObject({ code: "forbidden" });

    const others = await Promise.all([t.socket(), t.socket(), t.socket()]);
    const { subscription } = await sub.request({ type: "subscribe", filter: {} });
    expect(
      await inReplica(t.name, 1, (r) => (r as unknown as { stats(): { subscriptions: number } }).stats()),
    ).toMatchObject({ subscriptions: 1 });
    expect(await sub.request({ type: "unsubscribe", subscription })).toMatchObject({ type: "unsubscribed" });
    expect(
      await inReplica(t.name, 1, (r) => (r as unknown as { stats(): { subscriptions: number } }).stats()),
    ).toMatchObject({ subscriptions: 0 });
    await others[2]?.events(clicks(0, 5));
    expect(await nextWithin(sub, 100)).toBeNull();
    for (const c of [sub, writer, ...others]) c.close();
  });

  it("bounds a subscriber that never reads: drops the oldest, reports it, and slows nobody", async () => {
    const t = tenant("tail-slow");
    const slow = await t.socket();
    const fast = await t.socket();
    const producer = await t.socket();
    const s = (await slow.request({ type: "subscribe", filter: { type: "view" } })).subscription as string;
    const f = (await fast.request({ type: "subscribe", filter: { type: "view" } })).subscription as string;
    const total = 4000;
    const fastGot = collect(fast, f, total);
    for (let i = 0; i < total / 100; i++) {
      const batch = Array.from({ length: 100 }, (_, k) => ev("view", { id: `v-${i * 100 + k}` }));
      expect(await producer.events(batch)).toMatchObject({ stored: 100 });
    }
    expect((await fastGot).map((e) => e.id)).toEqual(Array.from({ length: total }, (_, i) => `v-${i}`));
    // The slow one got its window of 16 frames and nothing since; its queue holds the newest 1,000.
    const frames: Frame[] = [];
    for (let i = 0; i < 16; i++) frames.push((await slow.next()) as Frame);
    expect(frames.every((x) => x.type === "tail")).toBe(true);
    expect(await nextWithin(slow, 100)).toBeNull();
    const stats = (await producer.request({ type: "stats" })) as Frame;
    expect(stats.tailDropped).toBeGreaterThan(0);
    const lastSeq = frames[15]?.seq as number;
    slow.send({ type: "tailAck", subscription: s, seq: lastSeq });
    const dropped = (await slow.next()) as Frame;
    expect(dropped).toMatchObject({ type: "dropped", subscription: s, count: stats.tailDropped });
    const rest = (await slow.next()) as Frame;
    expect(rest).toMatchObject({ type: "tail" });
    expect(rest.seq).toBeGreaterThan(lastSeq);
    const firstKept = Number(String((rest.events as { id: string }[])[0]?.id).slice(2));
    expect(firstKept).toBe(16 * 100 + (stats.tailDropped as number));
    for (const c of [slow, fast, producer]) c.close();
  });

  it("closes a subscriber that acks blindly without reading once it holds 4 MiB, and ingest keeps its pace", async () => {
    const t = tenant("tail-blind");
    const blind = await t.socket();
    const producer = await t.socket(); // both on shard 0: the tail is delivered on the ingest path
    const limit = 4 * 1024 * 1024; // TAIL_MAX_BUFFERED_BYTES by default
    // ~8 KB events; 20 batches of 40 is 6.4 MB. The small test buffer (MAX_BUFFER_BYTES) takes a
    // batch whole when it is empty, so each batch follows a flush (untimed).
    const batch = (b: number) =>
      Array.from({ length: 40 }, (_, i) => ev("blob", { id: `b-${b}-${i}`, data: { pad: "x".repeat(8000) } }));
    const ingest = async (b: number) => {
      expect((await t.post("/flush", {})).status).toBe(200);
      const start = performance.now();
      expect(await producer.events(batch(b))).toMatchObject({ stored: 40 });
      return performance.now() - start;
    };
    const baseline: number[] = [];
    for (let b = 0; b < 5; b++) baseline.push(await ingest(b));

    const { subscription } = await blind.request({ type: "subscribe", filter: { type: "blob" } });
    let closed: { code: number; reason: string } | null = null;
    void blind.closed.then((c) => {
      closed = c;
    });
    let guess = 0;
    const withBlind: number[] = [];
    for (let b = 5; b < 25; b++) {
      withBlind.push(await ingest(b));
      // Acks for 50 more frames than could have been sent, counting up, and one far ahead.
      for (let i = 0; i < 50 && !closed; i++) blind.send({ type: "tailAck", subscription, seq: ++guess });
      if (!closed) blind.send({ type: "tailAck", subscription, seq: 2 ** 40 });
    }
    const { code, reason } = await Promise.race([
      blind.closed,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("the blind subscriber was never closed")), 5000),
      ),
    ]);
    expect(code).toBe(1008);
    expect(reason).toMatch(/^tail: subscriber not reading; \d+ bytes unsent$/);
    // Closed at the first delivery past the limit: over it by at most one delivery (<= 200 events).
    const held = Number(/(\d+) bytes/.exec(reason)?.[1]);
    expect(held).toBeGreaterThan(limit);
    expect(held).toBeLessThan(limit + 200 * 8200);
    // What the server wrote to it never passed the limit: its blind acks released nothing.
    let received = 0;
    for (let f = await nextWithin(blind, 0); f; f = await nextWithin(blind, 0)) {
      if (f.type === "tail") received += JSON.stringify(f).length;
    }
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThanOrEqual(limit);
    expect(await producer.request({ type: "stats" })).toMatchObject({
      subscribers: 0,
      tailBufferedBytes: 0,
      tailNotReadingClosed: 1,
    });
    // Ingest kept its pace: every batch was stored and the slowest ack is of the order of the ones
    // without the subscriber (generous, as two shared cores make any timing noisy).
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
    expect(median(withBlind)).toBeLessThan(3 * median(baseline) + 50);
    producer.close();
  });

  it("still gives an honest slow reader `dropped` counts, never a close, and frees what it held", async () => {
    const t = tenant("tail-honest");
    const reader = await t.socket();
    const producer = await t.socket();
    const { subscription } = await reader.request({ type: "subscribe", filter: { type: "view" } });
    let delivered = 0;
    let dropped = 0;
    /** Reads and acks one frame (or a drop report and the frame after it). */
    const readOne = async () => {
      for (;;) {
        const f = await nextWithin(reader, 5000);
        if (!f) throw new Error(`no frame within 5 s; delivered ${delivered}, dropped ${dropped}`);
        if (f.type === "dropped") {
          dropped += f.count as number;
          continue;
        }
        expect(f).toMatchObject({ type: "tail", subscription });
        delivered += (f.events as unknown[]).length;
        reader.send({ type: "tailAck", subscription, seq: f.seq });
        return;
      }
    };
    const total = 4000;
    let peak = 0;
    for (let b = 0; b < total / 100; b++) {
      const batch = Array.from({ length: 100 }, (_, k) => ev("view", { id: `h-${b * 100 + k}` }));
      expect(await producer.events(batch)).toMatchObject({ stored: 100 });
      if (b % 4 === 0) await readOne(); // a frame now and then: far behind the producer
      const stats = (await producer.request({ type: "stats" })) as Frame;
      peak = Math.max(peak, stats.tailBufferedBytes as number);
    }
    while (delivered + dropped < total) await readOne();
    expect(delivered + dropped).toBe(total);
    expect(dropped).toBeGreaterThan(0);
    expect(peak).toBeGreaterThan(0); // it held events for the reader...
    expect(peak).toBeLessThan(4 * 1024 * 1024); // ...far below the limit, so it was never closed
    const stats = (await producer.request({ type: "stats" })) as Frame;
    expect(stats).toMatchObject({ tailBufferedBytes: 0, tailNotReadingClosed: 0, tailDropped: dropped });
    expect(await reader.request({ type: "ping" })).toMatchObject({ type: "pong" });
    for (const c of [reader, producer]) c.close();
  });

  it("teaches shards opened later (scale-up) the subscriptions that already exist", async () => {
    const t = tenant("tail-scale");
    const sub = await t.socket();
    const { subscription } = await sub.request({ type: "subscribe", filter: { type: "click" } });
    await t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier: 2 }) });
    // HTTP ingest is now spread over 4 shards, 3 of which did not exist when the filter was set.
    await eventually(
      async () =>
        (await inReplica(t.name, 3, (r) => (r as unknown as { stats(): { subscriptions: number } }).stats()))
          .subscriptions === 1,
    );
    for (let i = 0; i < 8; i++) await t.post("/e", [ev("click", { id: `c-${i}` })]);
    const got = await collect(sub, subscription as string, 8);
    expect(new Set(got.map((e) => e.replica)).size).toBe(4);
    sub.close();
  });

  it("keeps forwarding after a replica without the subscriber is evicted (filters are persisted)", async () => {
    const t = tenant("tail-evict");
    const sub = await t.socket();
    const producers = await Promise.all([t.socket(), t.socket(), t.socket()]);
    const { subscription } = await sub.request({ type: "subscribe", filter: { type: "click" } });
    await evictDurableObject(replicaStub(t.name, 1));
    await producers[2]?.events(clicks(0, 10));
    const got = await collect(sub, subscription as string, 5);
    expect(got.map((e) => e.replica)).toEqual(Array(5).fill("tail-evict-1"));
    for (const c of [sub, ...producers]) c.close();
    // Closing the subscriber's socket removes its subscription everywhere.
    await eventually(
      async () =>
        (await inReplica(t.name, 1, (r) => (r as unknown as { stats(): { subscriptions: number } }).stats()))
          .subscriptions === 0,
    );
  }, 30_000);
});
