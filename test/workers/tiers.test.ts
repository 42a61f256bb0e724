import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { allRows, Client, crash, ev, eventually, inReplica, replicaStub, tenant } from "./harness";

const e = env as unknown as Env;

type T = ReturnType<typeof tenant>;

interface ShardList {
  tier: number;
  pinned: number | null;
  routed: number;
  shards: { n: number; id: string; state: string; connections: number; health: string }[];
}

async function shards(t: T): Promise<ShardList> {
  return (await (await t.fetch("/shards")).json()) as ShardList;
}

async function scale(t: T, tier: number | "auto"): Promise<Response> {
  return t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier }) });
}

function coordinatorStub(name: string): DurableObjectStub {
  return e.COORDINATOR.get(e.COORDINATOR.idFromName(name));
}

async function routingRequests(t: T): Promise<number> {
  const stats = (await (await t.fetch("/buffer/stats")).json()) as { routingRequests: number };
  return stats.routingRequests;
}

async function replicaRequests(t: T): Promise<number[]> {
  const s = (await (await t.fetch("/buffer/stats")).json()) as { shards: { stats: { requests: number } }[] };
  return s.shards.map((x) => x.stats.requests);
}

describe("load tiers and routing", () => {
  it("spreads 1,000 HTTP requests over the tier's shards with a handful of coordinator calls", async () => {
    const t = tenant("tier-routing");
    expect((await scale(t, 2)).status).toBe(200);
    const before = await routingRequests(t);
    for (let i = 0; i < 1000; i++) {
      const res = await t.post("/e", [ev("hit", { id: `hit-${i}` })]);
      expect(res.status).toBe(200);
    }
    expect((await routingRequests(t)) - before).toBeLessThanOrEqual(2);
    expect(await replicaRequests(t)).toEqual([250, 250, 250, 250]);
  });

  it("pins a tier and releases it, answering bad tiers with 400 and non-admins with 403", async () => {
    const t = tenant("tier-pin");
    expect((await scale(t, 3)).status).toBe(200);
    expect(await shards(t)).toMatchObject({ tier: 3, pinned: 3, routed: 8 });
    expect((await shards(t)).shards.map((s) => s.id)).toEqual(
      Array.from({ length: 8 }, (_, n) => e.REPLICA.idFromName(`tier-pin/${n}`).toString()),
    );
    expect((await scale(t, 9)).status).toBe(400);
    expect((await t.fetch("/buffer/scale", { method: "POST", body: "{}" })).status).toBe(400);
    const reader = tenant("tier-pin", "read");
    expect((await scale(reader, 1)).status).toBe(403);
    expect((await scale(t, "auto")).status).toBe(200);
    expect((await shards(t)).pinned).toBeNull();
  });

  it("scales up from the replicas' load reports, and up one tier at once on rate-limit pressure", async () => {
    const t = tenant("tier-reports");
    await t.post("/e", [ev("warm")]);
    // A report of 3,000 req/s from shard 0: past tier 2's and tier 3's thresholds (450, 2,200).
    const res = await coordinatorStub(t.name).fetch("http://coordinator/_/report", {
      method: "POST",
      headers: { "x-ducktail-tenant": t.name },
      body: JSON.stringify({
        n: 0,
        requests: 30_000,
        events: 30_000,
        seconds: 10,
        bufferedBytes: 0,
        bufferedRows: 0,
        connections: 0,
        at: Date.now(),
      }),
    });
    expect(res.status).toBe(204);
    expect(await shards(t)).toMatchObject({ tier: 3, routed: 8 });

    const limited = tenant("tier-pressure", "admin", {
      RATE_LIMITER: { limit: async () => ({ success: false }) },
    });
    await limited.post("/e", [ev("over-budget")]);
    expect((await shards(limited)).tier).toBe(2);
  });

  it("sends its load report from a replica once the report interval has passed", async () => {
    const t = tenant("tier-replica-report");
    await t.post("/e", [ev("first")]);
    // Age the replica's report window past REPORT_INTERVAL_MS instead of waiting for it.
    await runInDurableObject(replicaStub(t.name), (instance) => {
      (instance as unknown as { load: { window: { since: number } } }).load.window.since = Date.now() - 60_000;
    });
    await t.post("/e", [ev("second"), ev("third")]);
    const list = await eventually(async () => {
      const s = (await (await t.fetch("/shards")).json()) as {
        shards: { health: string; lastReport: { requests: number; events: number } | null }[];
      };
      return s.shards[0]?.lastReport ? s : null;
    });
    expect(list.shards[0]).toMatchObject({ health: "ok", lastReport: { requests: 2, events: 3 } });
  });

  it("resumes with the same tier and shards after a coordinator restart", async () => {
    const t = tenant("tier-restart");
    await scale(t, 2);
    const before = await shards(t);
    await crash(coordinatorStub(t.name));
    const after = await shards(t);
    expect(after.tier).toBe(2);
    expect(after.shards.map((s) => s.id)).toEqual(before.shards.map((s) => s.id));
  });

  it("drains shards leaving the tier: flushes what they hold and moves their sockets", async () => {
    const t = tenant("tier-drain");
    await scale(t, 2);
    const sent: string[] = [];
    for (let i = 0; i < 40; i++) {
      sent.push(`d-${i}`);
      await t.post("/e", [ev("drain", { id: `d-${i}` })]);
    }
    const sockets = await Promise.all([t.socket(), t.socket(), t.socket(), t.socket()]);
    for (const [i, s] of sockets.entries()) {
      sent.push(`ws-${i}`);
      expect(await s.events([ev("drain", { id: `ws-${i}` })])).toMatchObject({ stored: 1 });
    }
    // Four sockets on four routed shards (least-loaded placement): three of them must move.
    expect((await shards(t)).shards.map((s) => s.connections)).toEqual([1, 1, 1, 1]);

    await scale(t, 1);
    const closes = await Promise.all(sockets.slice(1).map((s) => s.closed));
    expect(closes.map((c) => c.code)).toEqual([1012, 1012, 1012]);
    const list = await eventually(async () => {
      const l = await shards(t);
      return l.shards.slice(1).every((s) => s.connections === 0) ? l : null;
    });
    expect(list.shards.map((s) => s.state)).toEqual(["routed", "draining", "draining", "draining"]);
    // Shards 1..3 flushed on drain; shard 0 flushes now. Every acked event is in R2, once.
    await t.post("/flush", {});
    const ids = (await allRows(t.name)).map((r) => r.id as string).sort();
    expect(ids).toEqual(sent.sort());
    // A socket that reconnects lands on the shard that stays.
    const again = await t.socket();
    expect(await again.request({ type: "stats" })).toMatchObject({ replica: "tier-drain-0" });
    for (const s of [sockets[0], again]) s?.close();
  });

  it("keeps a drained shard refusing placed sockets across an eviction, and takes them again once routed again", async () => {
    const t = tenant("tier-resume");
    await scale(t, 2);
    const draining = (n: number) =>
      inReplica(t.name, n, (r) => (r as unknown as { stats(): { draining: boolean } }).stats().draining);
    await scale(t, 1);
    await eventually(async () => ((await draining(1)) ? true : null));
    // Evicted while drained (its memory gone): it still knows, from its storage.
    await evictDurableObject(replicaStub(t.name, 1));
    expect(await draining(1)).toBe(true);
    await scale(t, 2);
    await eventually(async () => ((await draining(1)) ? null : true));
    // Sockets the Worker places go to all four shards again, none through identify.
    const before = ((await (await t.fetch("/buffer/stats")).json()) as { identifyRequests: number }).identifyRequests;
    const sockets = await Promise.all([t.socket(), t.socket(), t.socket(), t.socket(), t.socket(), t.socket()]);
    const replicas = await Promise.all(sockets.map(async (s) => (await s.request({ type: "stats" })).replica));
    expect(new Set(replicas)).toEqual(new Set(["tier-resume-0", "tier-resume-1", "tier-resume-2", "tier-resume-3"]));
    const after = ((await (await t.fetch("/buffer/stats")).json()) as { identifyRequests: number }).identifyRequests;
    expect(after).toBe(before);
    for (const s of sockets) s.close();
  });
});

describe("shard endpoints", () => {
  it("sums every shard's counters at /buffer/stats/aggregate and takes POST /buffer/events", async () => {
    const t = tenant("agg");
    await scale(t, 2);
    for (let i = 0; i < 8; i++) {
      const res = await t.post("/buffer/events", { events: [ev("a"), ev("b"), { bad: true }] });
      expect(res.status).toBe(200);
    }
    const agg = (await (await t.fetch("/buffer/stats/aggregate")).json()) as Record<string, unknown>;
    expect(agg).toMatchObject({ tier: 2, shards: 4, missing: [], requests: 8, received: 24, stored: 16, rejected: 8 });
    expect(agg.bufferedRows).toBe(16);
    await t.post("/flush", {});
    const after = (await (await t.fetch("/buffer/stats/aggregate")).json()) as Record<string, unknown>;
    expect(after).toMatchObject({ flushed: 16, bufferedRows: 0 });
    expect((await t.fetch("/buffer/events")).status).toBe(405);
  });

  it("opens an admin socket on a named shard with GET /buffer/ws, and refuses unknown shards and non-admins", async () => {
    const t = tenant("admin-ws");
    await scale(t, 2);
    const direct = await Client.open(t.fetch, "/buffer/ws?shard=3", t.key);
    expect(await direct.request({ type: "stats" })).toMatchObject({ replica: "admin-ws-3" });
    expect((await shards(t)).shards[3]?.connections).toBe(0); // not one of dog's placements
    direct.close();
    const missing = await t.fetch("/buffer/ws?shard=9", { headers: { Upgrade: "websocket" } });
    expect(missing.status).toBe(404);
    const writer = tenant("admin-ws", "write");
    expect((await writer.fetch("/buffer/ws?shard=0", { headers: { Upgrade: "websocket" } })).status).toBe(403);
  });
});

describe("hibernating sockets", () => {
  it("keeps sockets open across a replica eviction, with state, dog broadcast and whisper working", async () => {
    const t = tenant("hib-evict");
    const a = await t.socket("?client=alice&storageMode=confirmed");
    const b = await t.socket("?client=bob");
    const c = await t.socket("?client=carol");
    const d = await t.socket("?client=dave"); // the connection limit (3) puts dave on shard 1
    expect(await a.events([ev("before")])).toMatchObject({ stored: 1, storageMode: "confirmed" });
    const marked = (m: unknown) => (m as { marker?: number }).marker;
    await runInDurableObject(replicaStub(t.name, 0), (r) => {
      (r as unknown as { marker: number }).marker = 1;
    });
    await evictDurableObject(replicaStub(t.name, 0));
    await evictDurableObject(replicaStub(t.name, 1));
    // The objects really were torn down: in-memory state is gone, the sockets are not.
    expect(await runInDurableObject(replicaStub(t.name, 0), marked)).toBeUndefined();
    // Woken by the next frame: the socket, its per-socket state (storage mode) and its events survive.
    expect(await a.events([ev("after")])).toMatchObject({ stored: 1, storageMode: "confirmed" });
    expect(await a.request({ type: "stats" })).toMatchObject({ committedRows: 2, connections: 3 });
    // dog's broadcast from shard 1 reaches every socket on both shards; whisper reaches one client.
    const note = (text: string) => JSON.stringify({ type: "note", text });
    await inReplica(t.name, 1, (r) => r.broadcast(note("hello all")));
    for (const s of [a, b, c, d]) expect(await s.next()).toEqual({ type: "note", text: "hello all" });
    await inReplica(t.name, 1, (r) => r.whisper("bob", note("psst")));
    await inReplica(t.name, 0, (r) => r.emit(note("local")));
    expect(await b.next()).toEqual({ type: "note", text: "psst" });
    for (const s of [a, b, c]) expect(await s.next()).toEqual({ type: "note", text: "local" });
    for (const s of [a, b, c, d]) s.close();
  }, 60_000);
});
