// The systems the tail and views sections drive, behind one shape: DuckTail (a tenant per run,
// its keys, its admin routes) and a partyserver room (a room per run). Each has a name, its
// workerd's pid (for CPU), the protocol its subscribers speak, the URLs of its sockets, `prepare`
// (before a run) and `settle` (after it: until the closed sockets are gone on the server).
import { setTimeout as sleep } from "node:timers/promises";

const SETTLE_TIMEOUT_MS = 20_000;

/** The bench's key of `scope` for `tenant` (every section builds its DUCKTAIL_KEYS with it). */
export const keyOf = (tenant, scope) => `${scope}-${tenant}`;

export const wsBase = (url) => url.replace(/^http/, "ws");

export async function getJson(url, init = {}) {
  const res = await fetch(url, init);
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${url} answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

/** Pins `tenant` to `tier` (POST /buffer/scale with its admin key), opening its shards. */
export function pinTier(target, tenant, tier) {
  return getJson(`${target.url}/buffer/scale`, {
    method: "POST",
    headers: { authorization: `Bearer ${keyOf(tenant, "admin")}` },
    body: JSON.stringify({ tier }),
  });
}

/** Polls `read()` until `done(value)`, at most SETTLE_TIMEOUT_MS; returns the last value. */
async function until(read, done) {
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const value = await read();
    if (done(value) || performance.now() > deadline) return value;
    await sleep(100);
  }
}

/** DuckTail: a tenant per run, pinned to the scenario's tier; the real subscribe/tail/tailAck protocol. */
export function duckTailSystem(target) {
  const auth = (tenant) => ({ authorization: `Bearer ${keyOf(tenant, "admin")}` });
  const shards = (tenant) => getJson(`${target.url}/shards`, { headers: auth(tenant) });
  return {
    name: "ducktail",
    pid: target.pid,
    protocol: "ducktail",
    async prepare(tenant, scenario) {
      await pinTier(target, tenant, scenario.tier);
    },
    publisherUrl: (tenant) => `${wsBase(target.url)}/ws?key=${keyOf(tenant, "write")}`,
    subscriberUrl: (tenant) => `${wsBase(target.url)}/ws?key=${keyOf(tenant, "read")}`,
    /** Sockets per shard, from the coordinator's registry. */
    async placement(tenant) {
      return (await shards(tenant)).shards.map((s) => s.connections);
    },
    /** Until every closed socket was reported to the coordinator (after its unsubscribe went out). */
    async settle(tenant, open = 0) {
      const count = (list) => list.shards.reduce((n, s) => n + s.connections, 0);
      const last = await until(
        () => shards(tenant),
        (list) => count(list) <= open,
      );
      return count(last);
    },
  };
}

/**
 * A partyserver room (`kind` "broadcast", "hibernating-broadcast" or "tag"), one Durable Object per
 * run. `acks`: its subscribers send the acks a DuckTail subscriber sends (the room drops them).
 */
export function roomSystem(target, kind, { acks = false } = {}) {
  const room = (name) => `/parties/${kind}-room/${name}`;
  const count = (name) => getJson(`${target.url}${room(name)}`);
  return {
    name: `partyserver ${kind.replaceAll("-", " ")}${acks ? " + acks" : ""}`,
    pid: target.pid,
    protocol: acks ? "room-acks" : "room",
    async prepare() {},
    publisherUrl: (name) => `${wsBase(target.url)}${room(name)}?role=pub`,
    subscriberUrl: (name, i) => `${wsBase(target.url)}${room(name)}?k=${i}`,
    async settle(name) {
      const last = await until(
        () => count(name),
        (c) => c.connections === 0,
      );
      return last.connections;
    },
  };
}
