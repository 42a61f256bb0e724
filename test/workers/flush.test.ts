import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  allRows,
  bucket,
  committedRows,
  crash,
  ev,
  eventually,
  inReplica,
  objectKeys,
  replicaStub,
  tenant,
} from "./harness";

/** The oldest open flush, as replica stats show it. */
interface PendingFlush {
  seq: number;
  maxEventSeq: number;
  attempt: number;
  retryAt: number;
  error: string | null;
}

const KEY = /^events\/tenant=[\w-]+\/dt=\d{4}-\d{2}-\d{2}\/hour=\d{2}\/[\w-]+-\d+\.parquet$/;

/** Makes the replica's R2 puts fail until the returned function is called. */
async function breakR2(tenantName: string): Promise<() => Promise<void>> {
  type Patched = R2Bucket & { _put?: R2Bucket["put"] };
  await inReplica(tenantName, 0, (instance) => {
    const b = instance.env.EVENTS as Patched;
    b._put = b.put;
    b.put = async () => {
      throw new Error("R2 unavailable (test)");
    };
  });
  return () =>
    inReplica(tenantName, 0, (instance) => {
      const b = instance.env.EVENTS as Patched;
      if (b._put) b.put = b._put;
    });
}

async function pendingFlush(tenantName: string): Promise<PendingFlush | null> {
  const t = tenant(tenantName);
  const stats = (await (await t.fetch("/buffer/stats")).json()) as {
    shards: { stats: { pendingFlush: PendingFlush } }[];
  };
  return stats.shards[0]?.stats.pendingFlush ?? null;
}

describe("flush", () => {
  it("writes hive-partitioned Parquet on POST /flush and answers the objects written", async () => {
    const t = tenant("flush-post");
    await t.post("/e", [ev("a"), ev("b")]);
    const res = (await (await t.post("/flush", {})).json()) as { files: string[]; rows: number };
    expect(res.rows).toBe(2);
    expect(res.files).toHaveLength(1);
    expect(res.files[0]).toMatch(KEY);
    const hour = new Date().toISOString().slice(11, 13);
    expect(res.files[0]).toContain(
      `/tenant=flush-post/dt=${new Date().toISOString().slice(0, 10)}/hour=${hour}/flush-post-0-`,
    );
    expect(await objectKeys(t.name)).toEqual(res.files);
  });

  it("flushes over WebSocket and answers flushed with the files", async () => {
    const t = tenant("flush-ws");
    const ws = await t.socket();
    await ws.events([ev("x")]);
    const flushed = await ws.request({ type: "flush" });
    expect(flushed).toMatchObject({ type: "flushed" });
    expect(flushed.files).toEqual(await objectKeys(t.name));
    ws.close();
  });

  it("flushes once the buffer reaches the row threshold", async () => {
    const t = tenant("flush-rows");
    const ws = await t.socket();
    await ws.events(Array.from({ length: 399 }, () => ev("r")));
    expect(await objectKeys(t.name)).toEqual([]);
    await ws.events([ev("r")]);
    await eventually(async () => (await objectKeys(t.name)).length > 0);
    expect((await allRows(t.name)).length).toBe(400);
    ws.close();
  });

  it("flushes high-importance events by age from the alarm", async () => {
    const t = tenant("flush-age");
    await t.post("/e", [ev("h", { importance: "high" })]);
    const alarm = await runInDurableObject(replicaStub(t.name), (_i, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect((alarm as number) - Date.now()).toBeLessThanOrEqual(1000);
    await eventually(async () => (await objectKeys(t.name)).length > 0, 10_000);
  });

  it("keeps rows in SQLite when R2 fails, retries with backoff under the same key, then deletes them", async () => {
    const t = tenant("flush-retry");
    await t.post("/e", { events: [ev("a"), ev("b")], storageMode: "confirmed" });
    const repair = await breakR2(t.name);
    const failed = await t.post("/flush", {});
    expect(failed.status).toBe(502);
    expect(await failed.json()).toMatchObject({ error: { code: "flush_failed", files: [], failed: [{ shard: 0 }] } });
    expect(await committedRows(t.name)).toBe(2);
    const pending = await pendingFlush(t.name);
    expect(pending).toMatchObject({ attempt: 1, error: "R2 unavailable (test)" });
    expect((pending as PendingFlush).retryAt).toBeGreaterThan(Date.now() - 1000);
    // A second failure doubles the delay.
    await t.post("/flush", {});
    expect(await pendingFlush(t.name)).toMatchObject({ attempt: 2, seq: pending?.seq });
    await repair();
    // The retry alarm delivers it under the pending flush's seq (written, then committed to the lake).
    await eventually(async () => (await pendingFlush(t.name)) === null, 10_000);
    const keys = await objectKeys(t.name);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(new RegExp(`flush-retry-0-${pending?.seq}\\.parquet$`));
    expect(await committedRows(t.name)).toBe(0);
    expect(await pendingFlush(t.name)).toBeNull();
  });

  it("after a crash mid-flush, keeps the object an earlier try wrote instead of overwriting it", async () => {
    const t = tenant("flush-crash");
    await t.post("/e", { events: [ev("c", { id: "confirmed-1" })], storageMode: "confirmed" });
    await t.post("/e", [ev("b", { id: "buffered-1" })]);
    // Simulate: the object was written on the first try, then the replica died before deleting its rows.
    const repair = await breakR2(t.name);
    await t.post("/flush", {});
    const pending = (await pendingFlush(t.name)) as PendingFlush;
    await repair();
    await inReplica(t.name, 0, (instance) => instance.flush());
    const [key] = await objectKeys(t.name);
    const bytes = await (await bucket().get(key as string))?.arrayBuffer();
    await runInDurableObject(replicaStub(t.name), (_i, state) => {
      // The flush is recorded again as open, its delivery to R2 not yet confirmed.
      state.storage.sql.exec(
        "INSERT INTO flushes (seq, after_seq, max_event_seq, created_at) VALUES (?, -1, ?, 0)",
        pending.seq,
        pending.maxEventSeq,
      );
      state.storage.sql.exec(
        "INSERT INTO deliveries (flush_seq, sink, state, attempt, retry_at, error) VALUES (?, 'r2-parquet', 'pending', 0, 0, NULL)",
        pending.seq,
      );
      state.storage.sql.exec(
        "INSERT INTO batches (first_seq, last_seq, body) VALUES (0, 0, ?)",
        JSON.stringify([
          {
            id: "confirmed-1",
            tenant: t.name,
            ts: 1,
            receivedAt: Date.now(),
            source: "test",
            type: "c",
            importance: "normal",
            userId: null,
            anonymousId: null,
            sessionId: null,
            data: "{}",
            replica: `${t.name}-0`,
            seq: 0,
          },
        ]),
      );
    });
    await crash(replicaStub(t.name));
    await t.post("/flush", {});
    const after = await (await bucket().get(key as string))?.arrayBuffer();
    expect(new Uint8Array(after as ArrayBuffer)).toEqual(new Uint8Array(bytes as ArrayBuffer));
    expect((await allRows(t.name)).map((r) => r.id).sort()).toEqual(["buffered-1", "confirmed-1"]);
    expect(await committedRows(t.name)).toBe(0);
  });

  it("runs the alarm without flushing when nothing is due yet", async () => {
    const t = tenant("flush-not-due");
    await t.post("/e", [ev("n")]);
    await runDurableObjectAlarm(replicaStub(t.name));
    expect(await objectKeys(t.name)).toEqual([]);
  });
});
