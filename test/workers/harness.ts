import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { Env } from "../../src/env";
import type { GossipMessage, GossipReply } from "../../src/gossip/messages";
import { type TenantCatalog, tenantCatalog } from "../../src/lake/catalog/client";
import { viewAggregatorName } from "../../src/protocol/routes";
import worker from "../../src/worker";

/** A tenant of its own per test (keys make tenants), so tests never share shards or files. */
export function tenant(name: string, scope: "write" | "read" | "admin" = "admin", extra: Partial<Env> = {}) {
  const key = `key-${name}-${scope}`;
  const keys: Record<string, { tenant: string; scope: string }> = {
    [key]: { tenant: name, scope },
    [`key-${name}-write`]: { tenant: name, scope: "write" },
    [`key-${name}-read`]: { tenant: name, scope: "read" },
  };
  const tenantEnv = { ...(env as unknown as Env), DUCKTAIL_KEYS: JSON.stringify(keys), ...extra } as Env;
  const call = async (path: string, init: RequestInit = {}, withKey = key) => {
    const url = new URL(path, "https://ducktail.test");
    if (withKey) url.searchParams.set("key", withKey);
    const ctx = createExecutionContext();
    const res = await worker.fetch(new Request(url, init), tenantEnv, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  };
  return {
    name,
    key,
    env: tenantEnv,
    fetch: call,
    post: (path: string, body: unknown) => call(path, { method: "POST", body: JSON.stringify(body) }),
    socket: (query = "", withKey = key) => Client.open(call, `/ws${query}`, withKey),
  };
}

type Frame = Record<string, unknown> & { type: string };

/** A WebSocket client to the Worker with awaitable replies. */
export class Client {
  private queue: Frame[] = [];
  private waiting: ((f: Frame) => void)[] = [];
  private nextId = 0;

  /** Resolves with the close code and reason once the server closes the socket. */
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })),
    );
    ws.addEventListener("message", (e) => {
      const frame = JSON.parse(e.data as string) as Frame;
      const w = this.waiting.shift();
      if (w) w(frame);
      else this.queue.push(frame);
    });
  }

  static async open(
    call: (path: string, init: RequestInit, key: string) => Promise<Response>,
    path: string,
    key: string,
  ): Promise<Client> {
    const res = await call(path, { headers: { Upgrade: "websocket" } }, key);
    if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
    res.webSocket.accept();
    return new Client(res.webSocket);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The next frame the server sends. */
  next(): Promise<Frame> {
    const f = this.queue.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** The next frame, or null if none comes within `ms` (the wait is withdrawn, so no frame is lost). */
  nextWithin(ms: number): Promise<Frame | null> {
    const f = this.queue.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve) => {
      const waiter = (frame: Frame) => {
        clearTimeout(timer);
        resolve(frame);
      };
      const timer = setTimeout(() => {
        this.waiting = this.waiting.filter((w) => w !== waiter);
        resolve(null);
      }, ms);
      this.waiting.push(waiter);
    });
  }

  /** Sends a frame with a fresh id and resolves with the reply that echoes it. */
  async request(frame: Record<string, unknown>): Promise<Frame> {
    const id = `r${this.nextId++}`;
    this.send({ ...frame, id });
    for (;;) {
      const reply = await this.next();
      if (reply.id === id) return reply;
    }
  }

  events(events: unknown[], storageMode?: string): Promise<Frame> {
    return this.request({ type: "events", events, ...(storageMode && { storageMode }) });
  }

  close(): void {
    this.ws.close(1000);
  }
}

/** The tenant's view aggregator (an object of the replica class, never a shard). */
export function aggregatorStub(tenantName: string): DurableObjectStub {
  const e = env as unknown as Env;
  return e.REPLICA.get(e.REPLICA.idFromName(viewAggregatorName(tenantName)));
}

/** The tenant's shard `n` replica stub. */
export function replicaStub(tenantName: string, n = 0): DurableObjectStub {
  const e = env as unknown as Env;
  return e.REPLICA.get(e.REPLICA.idFromName(`${tenantName}/${n}`));
}

export function bucket(): R2Bucket {
  return (env as unknown as Env).EVENTS;
}

/** The tenant's lake catalog (typed RPC to its LakeCatalog). */
export function catalogOf(tenantName: string): TenantCatalog {
  return tenantCatalog((env as unknown as Env).CATALOG, tenantName);
}

/** Keys of the files the tenant's catalog lists at its latest snapshot (what readers see), sorted. */
export async function lakeKeys(tenantName: string): Promise<string[]> {
  const read = await catalogOf(tenantName).read({});
  if ("missing" in read) throw new Error(read.missing);
  return read.files.map((f) => f.key).sort();
}

/** Every object key under a tenant's events prefix. */
export async function objectKeys(tenantName: string): Promise<string[]> {
  const listed = await bucket().list({ prefix: `events/tenant=${tenantName}/` });
  return listed.objects.map((o) => o.key).sort();
}

/** Reads a Parquet object from R2 back into plain rows (parquet-wasm → Arrow), inside workerd. */
export async function readObject(key: string): Promise<Record<string, unknown>[]> {
  await import("../../src/columns/wasm");
  const { readParquet } = await import("parquet-wasm/esm");
  const { tableFromIPC } = await import("apache-arrow");
  const obj = await bucket().get(key);
  if (!obj) throw new Error(`no object ${key}`);
  const table = tableFromIPC(readParquet(new Uint8Array(await obj.arrayBuffer())).intoIPCStream());
  return table.toArray().map((r) => r.toJSON() as Record<string, unknown>);
}

/** Every row of every object of a tenant. */
export async function allRows(tenantName: string): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (const key of await objectKeys(tenantName)) rows.push(...(await readObject(key)));
  return rows;
}

export function ev(type: string, extra: Record<string, unknown> = {}) {
  return { type, source: "test", ...extra };
}

export { eventually } from "../helpers/eventually";

/** Rows in the replica's SQLite `batches` table (committed, unflushed events). */
export async function committedRows(tenantName: string, n = 0): Promise<number> {
  const { runInDurableObject } = await import("cloudflare:test");
  return runInDurableObject(replicaStub(tenantName, n), (_instance, state) => {
    return state.storage.sql
      .exec<{ n: number }>("SELECT COALESCE(SUM(last_seq - first_seq + 1), 0) AS n FROM batches")
      .one().n;
  });
}

/** Resets a Durable Object as a crash would: memory gone, storage kept (`state.abort()`). */
export async function crash(stub: DurableObjectStub): Promise<void> {
  const { runInDurableObject } = await import("cloudflare:test");
  await runInDurableObject(stub, (_instance, state) => state.abort("test crash")).catch(() => undefined);
}

/** What tests reach inside a live replica (protected members included). */
export interface ReplicaInternals {
  env: Env;
  flush(): Promise<unknown>;
  gossipAll(msg: GossipMessage): Promise<GossipReply[]>;
  broadcast(msg: string): Promise<void>;
  whisper(target: string, msg: string): Promise<void>;
  emit(msg: string): void;
}

/** Runs `fn` inside shard `n` of a tenant, with the replica instance and its state. */
export async function inReplica<R>(
  tenantName: string,
  n: number,
  fn: (instance: ReplicaInternals, state: DurableObjectState) => R | Promise<R>,
): Promise<R> {
  const { runInDurableObject } = await import("cloudflare:test");
  return runInDurableObject(replicaStub(tenantName, n), (instance, state) =>
    fn(instance as unknown as ReplicaInternals, state),
  );
}
