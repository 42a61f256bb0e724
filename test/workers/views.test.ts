import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AggregatorCalls, type ViewAnswer, type ViewPush } from "../../src/protocol/calls";
import { BUCKET_MS, bucketStart, ViewStore } from "../../src/views/buckets";
import { pageviews } from "../../src/views/views";
import { aggregatorStub, crash, ev, eventually, inReplica, replicaStub, tenant } from "./harness";

type T = ReturnType<typeof tenant>;
type Row = Record<string, unknown>;
type Answer = Omit<ViewAnswer, "rows"> & { rows: Row[] };

async function mv(t: T, path: string): Promise<Answer> {
  const res = await t.fetch(`/buffer/mv/${path}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Answer;
}

const viewCount = (a: Answer) => a.rows.reduce((n, r) => n + (r.views as number), 0);

/** Replicas push within about a second of ingest: the answer once it counts `views` page views, no replica missing. */
function settled(t: T, path: string, views: number, ms = 10_000): Promise<Answer> {
  return eventually(async () => {
    const a = await mv(t, path);
    return viewCount(a) === views && a.replicas.missing.length === 0 ? a : null;
  }, ms);
}

const PATHS = ["/", "/pricing", "/docs"];

interface Sent {
  views: Map<string, number>;
  users: Map<string, Set<string>>;
  errors: Map<string, number>;
  durations: number[];
}

/** Pageviews, errors and timed requests, sent one batch per request so they spread over every shard. */
async function traffic(t: T, requests = 60): Promise<Sent> {
  const sent: Sent = { views: new Map(), users: new Map(), errors: new Map(), durations: [] };
  for (let i = 0; i < requests; i++) {
    const path = PATHS[i % 3] as string;
    const user = `u${i % 7}`;
    const message = i % 4 ? "x is undefined" : "boom";
    sent.views.set(path, (sent.views.get(path) ?? 0) + 1);
    sent.users.set(path, (sent.users.get(path) ?? new Set()).add(user));
    sent.errors.set(message, (sent.errors.get(message) ?? 0) + 1);
    sent.durations.push((i + 1) * 10);
    const batch = [
      ev("pageview", { userId: user, data: { path } }),
      ev("error", { data: { name: "TypeError", message, stack: "Error\n at f (a.js:1:2)" } }),
      ev("request", { data: { route: "/api", duration: (i + 1) * 10 } }),
    ];
    expect((await t.post("/e", batch)).status).toBe(200);
  }
  return sent;
}

/** Makes shard `n`'s pushes fail (as if the aggregator were unreachable), or work again. */
async function pushesFail(t: T, n: number, fail: boolean): Promise<void> {
  await inReplica(t.name, n, (instance) => {
    const r = instance as unknown as { aggregatorCalls?: unknown };
    if (fail) r.aggregatorCalls = () => ({ push: () => Promise.reject(new Error("aggregator unreachable")) });
    else delete r.aggregatorCalls;
  });
}

/** Whether shard `n` saved view changes its aggregator has not acked. */
function unacked(t: T, n: number): Promise<boolean> {
  return inReplica(t.name, n, (instance) => {
    const r = instance as unknown as { viewsCache?: { pusher: { pending: boolean } } };
    return r.viewsCache?.pusher.pending ?? false;
  });
}

describe("materialized views", () => {
  it.each([
    [2, 4],
    [4, 16],
  ])(
    "merges at tier %i (%i shards) into totals equal to a brute-force count of what was sent",
    async (tier, shards) => {
      const t = tenant(`mv-totals-${tier}`);
      await t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier }) });
      const sent = await traffic(t);

      const pv = await settled(t, "pageviews?window=1h", 60);
      expect(pv.replicas).toEqual({ asked: shards, answered: shards, missing: [] });
      expect(Object.fromEntries(pv.rows.map((r) => [r.path, r.views]))).toEqual(Object.fromEntries(sent.views));
      for (const row of pv.rows) {
        // HyperLogLog: exact at these sizes in practice, within its ~1.6 % error in principle.
        const uniques = sent.users.get(row.path as string)?.size as number;
        expect(Math.abs((row.uniques as number) - uniques)).toBeLessThanOrEqual(Math.max(1, uniques * 0.05));
      }

      const errs = await mv(t, "errors?window=5m");
      expect(Object.fromEntries(errs.rows.map((r) => [r.message, r.count]))).toEqual(Object.fromEntries(sent.errors));

      const lat = await mv(t, "latency?window=24h");
      expect(lat.rows).toHaveLength(1);
      // Durations 10..600 ms: nearest-rank p50 = 300, p99 = 600, within the histogram's 1 %.
      expect(lat.rows[0]).toMatchObject({ route: "/api", count: 60, min: 10, max: 600 });
      expect(Math.abs((lat.rows[0]?.p50 as number) - 300)).toBeLessThanOrEqual(3);
      expect(Math.abs((lat.rows[0]?.p99 as number) - 600)).toBeLessThanOrEqual(6);
    },
    30_000,
  );

  it("answers the socket's mv frame as the HTTP route does, and refuses bad queries", async () => {
    const t = tenant("mv-socket");
    await t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier: 2 }) });
    await traffic(t, 12);
    const pv = await settled(t, "pageviews?window=1h", 12);
    expect((await mv(t, "pageviews?limit=1")).rows).toHaveLength(1);

    const ws = await t.socket();
    expect(await ws.request({ type: "mv", name: "pageviews", window: "1h", limit: 2 })).toMatchObject({
      type: "mv",
      view: "pageviews",
      replicas: { asked: 4, answered: 4, missing: [] },
      rows: pv.rows.slice(0, 2),
    });
    expect(await ws.request({ type: "mv", name: "nope" })).toMatchObject({ type: "error", code: "not_found" });
    ws.close();

    expect((await t.fetch("/buffer/mv/nope")).status).toBe(404);
    expect((await t.fetch("/buffer/mv/pageviews?window=3y")).status).toBe(400);
    const writer = tenant("mv-socket", "write");
    expect((await writer.fetch("/buffer/mv/pageviews")).status).toBe(403);
  });

  it("answers after a replica restart, its alarm pushing what it saved but could not push before the crash", async () => {
    const t = tenant("mv-restart");
    await t.post("/e", [ev("pageview", { userId: "a", data: { path: "/x" } })]);
    await settled(t, "pageviews", 1);

    await pushesFail(t, 0, true);
    await t.post("/e", [ev("pageview", { userId: "b", data: { path: "/x" } })]);
    await eventually(() => unacked(t, 0));
    await crash(replicaStub(t.name, 0));
    // Nothing else wakes the restarted replica: its alarm does, and it pushes what it saved.
    expect(await runDurableObjectAlarm(replicaStub(t.name, 0))).toBe(true);
    expect((await settled(t, "pageviews", 2)).rows).toEqual([{ path: "/x", views: 2, uniques: 2 }]);

    // New events on the restarted replica join the same stream.
    await t.post("/e", [ev("pageview", { userId: "c", data: { path: "/x" } })]);
    expect((await settled(t, "pageviews", 3)).rows).toEqual([{ path: "/x", views: 3, uniques: 3 }]);
  });

  it("names a replica whose pushes did not arrive, and counts it again once they do", async () => {
    const t = tenant("mv-missing");
    await t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier: 2 }) });
    await traffic(t, 8);
    await settled(t, "pageviews?window=1h", 8);

    await pushesFail(t, 3, true);
    await traffic(t, 4); // one more page view on each of the 4 shards
    await eventually(() => unacked(t, 3));
    // Its load report tells the coordinator what it saved; the aggregator has less.
    await inReplica(t.name, 3, (instance) =>
      (instance as unknown as { load: { report(): Promise<void> } }).load.report(),
    );
    const silent = replicaStub(t.name, 3).id.toString();
    const body = await eventually(async () => {
      const a = await mv(t, "pageviews?window=1h");
      return a.replicas.missing.length > 0 ? a : null;
    }, 12_000);
    expect(body.replicas).toEqual({
      asked: 4,
      answered: 3,
      missing: [
        { replica: silent, reason: expect.stringMatching(/^its view changes through seq \d+, .* have not arrived/) },
      ],
    });
    // What it pushed before is still counted; only its latest page view is not.
    expect(viewCount(body)).toBe(11);

    await pushesFail(t, 3, false);
    await runDurableObjectAlarm(replicaStub(t.name, 3));
    expect((await settled(t, "pageviews?window=1h", 12)).replicas).toEqual({ asked: 4, answered: 4, missing: [] });
  }, 30_000);

  it("gets a full resync from every replica after the aggregator lost its state", async () => {
    const t = tenant("mv-resync");
    await t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier: 2 }) });
    await traffic(t, 8);
    await settled(t, "pageviews?window=1h", 8);
    // Reports that count every shard's changes, for the aggregator to learn what it lacks.
    for (let n = 0; n < 4; n++) {
      await inReplica(t.name, n, (instance) =>
        (instance as unknown as { load: { report(): Promise<void> } }).load.report(),
      );
    }

    await runInDurableObject(aggregatorStub(t.name), (_instance, state) => state.storage.deleteAll());
    await crash(aggregatorStub(t.name));
    // One shard has something new: its push builds on seqs the aggregator no longer has, so it resyncs.
    await t.post("/e", [ev("pageview", { userId: "z", data: { path: "/" } })]);
    // The idle shards are named missing, asked to push, and resync too.
    const answer = await settled(t, "pageviews?window=1h", 9, 15_000);
    expect(answer.replicas).toEqual({ asked: 4, answered: 4, missing: [] });
  }, 30_000);

  it("counts a window that spans closed and open minutes, a replica's new push replacing its old one", async () => {
    const t = tenant("mv-minutes");
    const aggregator = new AggregatorCalls(aggregatorStub(t.name), t.name);
    const current = bucketStart(Date.now());
    const closed = current - 10 * BUCKET_MS;
    const minute = (start: number, users: string[]) => {
      const store = new ViewStore([pageviews]);
      for (const u of users)
        store.add({
          ...ev("pageview"),
          id: u,
          ts: start,
          receivedAt: start,
          userId: u,
          anonymousId: null,
          sessionId: null,
          importance: "normal",
          data: { path: "/a" },
        });
      return store.serializeBucket("pageviews", start)!;
    };
    const push = (replica: string, from: number, through: number, buckets: ViewPush["buckets"]) =>
      aggregator.push({ replica, epoch: "e", from, through, more: false, buckets });

    expect(await push("r1", 0, 1, [minute(closed, ["a", "b"]), minute(current, ["c"])])).toEqual({ acked: 1 });
    await push("r2", 0, 1, [minute(current, ["d"])]);
    expect((await mv(t, "pageviews?window=5m")).rows).toEqual([{ path: "/a", views: 2, uniques: 2 }]);
    expect((await mv(t, "pageviews?window=15m")).rows).toEqual([{ path: "/a", views: 4, uniques: 4 }]);

    // r1's current minute grew to 2 views, and its closed minute shrank to 1 (say, pushed again after a restore).
    await push("r1", 1, 2, [minute(current, ["c", "e"])]);
    await push("r1", 2, 3, [minute(closed, ["a"])]);
    const answer = await mv(t, "pageviews?window=15m");
    expect(answer.rows).toEqual([{ path: "/a", views: 4, uniques: 4 }]);
    expect(answer.replicas).toEqual({ asked: 2, answered: 2, missing: [] });
  });

  it("keeps only the built-in views the VIEWS var names", async () => {
    const t = tenant("mv-var");
    await t.post("/e", [ev("warm")]);
    const names = await runInDurableObject(replicaStub(t.name), (instance) => {
      const r = instance as unknown as { env: { VIEWS?: string }; views(): { name: string }[] };
      const pick = (v: string | undefined) => {
        r.env.VIEWS = v;
        return r.views().map((x) => x.name);
      };
      return [pick(undefined), pick("errors, latency"), pick("none")];
    });
    expect(names).toEqual([["pageviews", "errors", "latency"], ["errors", "latency"], []]);
  });
});
