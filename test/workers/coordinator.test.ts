import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { crash, ev, eventually, inReplica, replicaStub, tenant } from "./harness";

interface CoordinatorStats {
  shards: { n: number; id: string; connections: number; stats: { replica: string } }[];
}

const e = env as unknown as Env;

function coordinatorStub(name: string): DurableObjectStub {
  return e.COORDINATOR.get(e.COORDINATOR.idFromName(name));
}

async function stats(t: ReturnType<typeof tenant>): Promise<CoordinatorStats> {
  return (await (await t.fetch("/buffer/stats")).json()) as CoordinatorStats;
}

async function neighbors(tenantName: string, n: number): Promise<string[]> {
  return runInDurableObject(replicaStub(tenantName, n), (_i, state) =>
    state.storage.sql
      .exec<{ id: string }>("SELECT id FROM neighbors")
      .toArray()
      .map((r) => r.id),
  );
}

describe("BufferCoordinator", () => {
  it("derives replica ids from the tenant name (REPLICA.idFromName(tenant/n))", async () => {
    const t = tenant("coord-ids");
    await t.post("/e", [ev("a")]);
    const s = await stats(t);
    expect(s.shards.map((x) => x.id)).toEqual([e.REPLICA.idFromName("coord-ids/0").toString()]);
    expect(s.shards[0]?.stats.replica).toBe("coord-ids-0");
  });

  it("opens another shard past the connection limit and introduces the shards to each other", async () => {
    const t = tenant("coord-limit");
    const sockets = await Promise.all([t.socket(), t.socket(), t.socket(), t.socket()]);
    const s = await stats(t);
    expect(s.shards.map((x) => [x.n, x.connections])).toEqual([
      [0, 3],
      [1, 1],
    ]);
    expect(await neighbors(t.name, 0)).toEqual([e.REPLICA.idFromName("coord-limit/1").toString()]);
    expect(await neighbors(t.name, 1)).toEqual([e.REPLICA.idFromName("coord-limit/0").toString()]);
    for (const ws of sockets) ws.close();
  });

  it("places sockets on the routed shards itself and asks the coordinator only past a full shard; counts follow", async () => {
    const t = tenant("coord-edge");
    const before = await stats(t);
    expect(before).toMatchObject({ identifyRequests: 0 });
    // The connection limit is 3: three sockets go straight to shard 0, the replica counts them.
    const sockets = [await t.socket(), await t.socket(), await t.socket()];
    let s = (await stats(t)) as CoordinatorStats & { identifyRequests: number };
    expect(s.identifyRequests).toBe(0);
    expect(s.shards.map((x) => [x.n, x.connections])).toEqual([[0, 3]]);
    // Shard 0 refuses the fourth (409 to the Worker), which asks identify: the coordinator opens shard 1.
    sockets.push(await t.socket());
    s = (await stats(t)) as CoordinatorStats & { identifyRequests: number };
    expect(s.identifyRequests).toBe(1);
    expect(s.shards.map((x) => [x.n, x.connections])).toEqual([
      [0, 3],
      [1, 1],
    ]);
    expect(await sockets[3]?.request({ type: "stats" })).toMatchObject({ replica: "coord-edge-1" });
    // Closing two on shard 0 frees their slots, and the replica's report says so: the next socket goes there again.
    sockets[0]?.close();
    sockets[1]?.close();
    await eventually(async () => (await stats(t)).shards[0]?.connections === 1);
    const again = await t.socket();
    expect(await again.request({ type: "stats" })).toMatchObject({ replica: "coord-edge-0" });
    for (const ws of [...sockets.slice(2), again]) ws.close();
  });

  it("sends a client that names itself back to the shard it was on", async () => {
    const t = tenant("coord-sticky");
    await t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier: 2 }) });
    const replicaOf = async (client: string) => {
      const ws = await t.socket(`?client=${client}`);
      const replica = (await ws.request({ type: "stats" })).replica;
      ws.close();
      await ws.closed;
      return replica;
    };
    for (const client of ["alice", "bob", "carol"]) {
      const first = await replicaOf(client);
      expect(await replicaOf(client)).toBe(first);
    }
  });

  it("counts closed sockets down so their slots are reused", async () => {
    const t = tenant("coord-close");
    const a = await t.socket();
    const b = await t.socket();
    expect((await stats(t)).shards[0]?.connections).toBe(2);
    a.close();
    await eventually(async () => (await stats(t)).shards[0]?.connections === 1);
    b.close();
  });

  it("reuses the persisted shards and counts after a coordinator restart", async () => {
    const t = tenant("coord-restart");
    const first = await Promise.all([t.socket(), t.socket(), t.socket()]);
    await crash(coordinatorStub(t.name));
    const next = await t.socket();
    const s = await stats(t);
    // Shard 0 is still full after the restart, so the new socket opens shard 1, not a second shard 0.
    expect(s.shards.map((x) => [x.n, x.connections])).toEqual([
      [0, 3],
      [1, 1],
    ]);
    expect(await next.events([ev("after-restart")])).toMatchObject({ stored: 1 });
    for (const ws of [...first, next]) ws.close();
  });

  it("keeps the gossip mesh whole after a replica loses its memory", async () => {
    const t = tenant("coord-mesh");
    const sockets = await Promise.all([t.socket(), t.socket(), t.socket(), t.socket()]);
    await crash(replicaStub(t.name, 0));
    const replies = await inReplica(t.name, 0, (instance) =>
      instance.gossipAll({ type: "ping", from: "test", sentAt: Date.now() }),
    );
    expect(replies).toEqual([expect.objectContaining({ type: "pong", from: "coord-mesh-1" })]);
    for (const ws of sockets) ws.close();
  });
});
