import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { identify } from "../../../src/dog";
import { eventually } from "../../helpers/eventually";
import type { FixtureEnv, FixtureReplica } from "./worker";

const e = env as unknown as FixtureEnv;

/** A client socket placed by dog's identify; resolves with its replica id and its received messages. */
async function connect(groupName: string, client: string) {
  const stub = await identify(e.GROUP.idFromName(groupName), client, { parent: e.GROUP, child: e.REPLICA });
  const res = await stub.fetch("http://fixture/ws", { headers: { Upgrade: "websocket" } });
  const ws = res.webSocket;
  if (res.status !== 101 || !ws) throw new Error(`upgrade failed: ${res.status}`);
  ws.accept();
  const messages: string[] = [];
  ws.addEventListener("message", (m) => {
    messages.push(m.data as string);
  });
  return { replica: stub.id.toString(), ws, messages };
}

function replica(id: string): DurableObjectStub {
  return e.REPLICA.get(e.REPLICA.idFromString(id));
}

function inside<R>(id: string, fn: (r: FixtureReplica, state: DurableObjectState) => R | Promise<R>): Promise<R> {
  return runInDurableObject(replica(id), (instance, state) => fn(instance as unknown as FixtureReplica, state));
}

/** Two clients on two replicas the group has introduced to each other. */
async function pair(groupName: string) {
  const a = await connect(groupName, "a");
  const b = await connect(groupName, "b");
  expect(a.replica).not.toBe(b.replica);
  await eventually(async () => (await inside(a.replica, (r) => r.known())).includes(b.replica));
  await eventually(async () => (await inside(b.replica, (r) => r.known())).includes(a.replica));
  return { a, b };
}

describe("HibernatingReplica", () => {
  it("persists the neighbors the group introduces and calls onneighbor", async () => {
    const { a, b } = await pair("hib-neighbors");
    expect(await inside(a.replica, (r) => r.seen.neighbors)).toEqual([b.replica]);
    const rows = await inside(b.replica, (_r, state) =>
      state.storage.sql.exec<{ id: string }>("SELECT id FROM neighbors").toArray(),
    );
    expect(rows.map((r) => r.id)).toEqual([a.replica]);
  });

  it("broadcasts, emits and whispers to hibernated sockets, also after the sender lost its memory", async () => {
    const { a, b } = await pair("hib-messages");
    await inside(a.replica, (_r, state) => state.abort("test crash")).catch(() => undefined);
    await inside(a.replica, (r) => r.broadcast("to all"));
    await eventually(() => b.messages.includes("to all"));
    await inside(a.replica, (r) => r.whisper("b", { to: "b" }));
    await eventually(() => b.messages.includes(JSON.stringify({ to: "b" })));
    await inside(b.replica, (r) => r.emit("local"));
    await eventually(() => b.messages.includes("local"));
    expect(b.messages).toEqual(["to all", JSON.stringify({ to: "b" }), "local"]);
  });

  it("gossips to one neighbor, also after a restart", async () => {
    const { a, b } = await pair("hib-gossip");
    await inside(a.replica, (_r, state) => state.abort("test crash")).catch(() => undefined);
    expect(await inside(a.replica, (r) => r.ask(b.replica, { n: 1 }))).toEqual({ from: b.replica, got: { n: 1 } });
    expect(await inside(a.replica, (r) => r.gossip({ n: 2 }))).toEqual([{ from: b.replica, got: { n: 2 } }]);
    expect(await inside(a.replica, (r) => r.ask("not-a-neighbor", { n: 3 }))).toBeUndefined();
  });

  it("reports a closed socket to the group, after onsocketclose, so its slot is reused", async () => {
    const { b } = await pair("hib-close");
    b.ws.close(1000);
    await eventually(async () => (await inside(b.replica, (r) => r.seen.closed)).includes("b"));
    // One socket per replica: a new client lands on b's replica only if the group counted b out.
    const c = await eventually(async () => {
      const next = await connect("hib-close", `c-${crypto.randomUUID()}`);
      if (next.replica === b.replica) return next;
      next.ws.close(1000);
      return null;
    });
    expect(c.replica).toBe(b.replica);
  });

  it("leaves other requests to dog by default (receive: 404)", async () => {
    const stub = await identify(e.GROUP.idFromName("hib-other"), "x", { parent: e.GROUP, child: e.REPLICA });
    expect((await stub.fetch("http://fixture/other")).status).toBe(404);
  });
});
