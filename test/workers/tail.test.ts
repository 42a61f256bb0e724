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
    slow.send({ type: "tailAck", subscription: s, seq: 16 });
    const dropped = (await slow.next()) as Frame;
    expect(dropped).toMatchObject({ type: "dropped", subscription: s, count: stats.tailDropped });
    const rest = (await slow.next()) as Frame;
    expect(rest).toMatchObject({ type: "tail", seq: 17 });
    const firstKept = Number(String((rest.events as { id: string }[])[0]?.id).slice(2));
    expect(firstKept).toBe(16 * 100 + (stats.tailDropped as number));
    for (const c of [slow, fast, producer]) c.close();
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
