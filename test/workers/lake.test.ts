import "../../src/columns/wasm";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { EventBatch } from "../../src/columns/batch";
import type { Env } from "../../src/env";
import type { LakeCatalog } from "../../src/lake/catalog/LakeCatalog";
import { compactHour } from "../../src/lake/compaction";
import type { SnapshotList } from "../../src/protocol/lake";
import { objectKey, R2ParquetSink } from "../../src/sinks/r2-parquet";
import type { FlushContext } from "../../src/sinks/sink";
import { sampleEvents } from "../helpers/events";
import { bucket, catalogOf, ev, lakeKeys, objectKeys, tenant } from "./harness";

const HOUR = 3_600_000;

interface EventsAnswer {
  snapshot: number;
  events: { id: string; type: string }[];
  count: number;
}

async function eventIds(t: ReturnType<typeof tenant>, query = ""): Promise<string[]> {
  const res = await t.fetch(`/events?limit=1000${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as EventsAnswer).events.map((e) => e.id).sort();
}

async function snapshotsOf(t: ReturnType<typeof tenant>): Promise<SnapshotList> {
  return (await (await t.fetch("/snapshots")).json()) as SnapshotList;
}

function catalogStub(name: string): LakeCatalog {
  const ns = (env as unknown as Env).CATALOG;
  return ns.get(ns.idFromName(name)) as unknown as LakeCatalog;
}

describe("the lake catalog", () => {
  it("makes a flush visible only once committed, and acks durable events only after the commit", async () => {
    const t = tenant("lake-durable");
    const ack = await t.post("/e", { events: [ev("d", { id: "d1" }), ev("d", { id: "d2" })], storageMode: "durable" });
    expect(await ack.json()).toMatchObject({ stored: 2, storageMode: "durable" });
    // The ack came after the commit: the catalog lists the object already.
    const keys = await lakeKeys(t.name);
    expect(keys).toEqual(await objectKeys(t.name));
    expect(keys).toHaveLength(1);
    const { snapshots } = await snapshotsOf(t);
    expect(snapshots[0]).toMatchObject({ changes: ["inserted_into_table:1"], rowsAdded: 2, filesAdded: 1 });
    expect(snapshots[0]?.message).toBe("flush lake-durable-0#0");
    const answer = (await (await t.fetch(`/events?snapshot=${snapshots[0]?.id}`)).json()) as EventsAnswer;
    expect(answer.snapshot).toBe(snapshots[0]?.id);
    expect(answer.events.map((e) => e.id).sort()).toEqual(["d1", "d2"]);
  });

  it("commits 128 concurrent flushes in a few group-commit rounds, each answered with its snapshot", async () => {
    const t = "lake-group-commit";
    const hour = Math.floor(Date.now() / HOUR) * HOUR;
    const catalog = catalogOf(t);
    await catalog.read({}); // created before the burst
    const before = await catalogStub(t).stats();
    const results = await Promise.all(
      Array.from({ length: 128 }, (_, n) => {
        const key = objectKey("events", t, hour, `${t}-${n}`, 0);
        return catalog.commit({
          change: "insert",
          flush: { replica: `${t}-${n}`, seq: 0 },
          add: [{ key, hour, rows: 1, bytes: 100, footerBytes: 10, columns: [] }],
        });
      }),
    );
    expect(results.every((r) => r.ok && !r.duplicate)).toBe(true);
    const after = await catalogStub(t).stats();
    expect(after.commits - before.commits).toBe(128);
    // Calls arriving during a round share the next one: 2-4 rounds on an idle machine; a loaded one
    // spreads the arrivals over a few more, never anywhere near one round per commit.
    expect(after.rounds - before.rounds).toBeLessThanOrEqual(16);
    const ids = new Set(results.map((r) => (r.ok ? r.snapshot : -1)));
    expect(ids.size).toBe(after.rounds - before.rounds);
    expect(await lakeKeys(t)).toHaveLength(128);
  });

  it("has every shard's flush in the lake when POST /flush answers, each flush in one snapshot", async () => {
    const t = tenant("lake-shards");
    await t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier: 2 }) });
    for (let i = 0; i < 8; i++) await t.post("/e", [ev("s", { id: `s${i}` })]);
    const flushed = (await (await t.post("/flush", {})).json()) as { files: string[] };
    expect(flushed.files.length).toBeGreaterThan(1);
    expect(await lakeKeys(t.name)).toEqual([...flushed.files].sort());
    const { snapshots } = await snapshotsOf(t);
    const inserts = snapshots.filter((s) => s.changes.includes("inserted_into_table:1"));
    // Shards that commit together share a snapshot; how many do depends on timing, the sum does not.
    expect(inserts.length).toBeLessThanOrEqual(flushed.files.length);
    expect(inserts.reduce((n, s) => n + s.filesAdded, 0)).toBe(flushed.files.length);
    expect(inserts.reduce((n, s) => n + s.rowsAdded, 0)).toBe(8);
    expect(await eventIds(t)).toEqual(Array.from({ length: 8 }, (_, i) => `s${i}`).sort());
  });

  it("leaves the object of a flush that died between put and commit invisible, and the cleanup deletes it after the grace period", async () => {
    const t = tenant("lake-orphan", "admin", { ORPHAN_GRACE_HOURS: "0" });
    await t.post("/e", [ev("kept", { id: "k1" })]);
    await t.post("/flush", {});
    const committed = await lakeKeys(t.name);

    // A flush whose put succeeded and whose commit never happened (the replica died in between).
    const events = sampleEvents(3).map((e, i) => ({ ...e, tenant: t.name, replica: `${t.name}-7`, seq: i }));
    const batch = EventBatch.from(events);
    const ctx: FlushContext = { tenant: t.name, replica: `${t.name}-7`, seq: 4, from: 0, to: 0, attempt: 0 };
    const dying = new R2ParquetSink(bucket(), "events", {
      commitFlush: () => Promise.reject(new Error("died before the commit (test)")),
    });
    await expect(dying.write(batch, ctx)).rejects.toThrow("(test)");
    const orphan = (await objectKeys(t.name)).find((k) => !committed.includes(k)) as string;
    expect(orphan).toMatch(/lake-orphan-7-4\.parquet$/);
    expect(await lakeKeys(t.name)).toEqual(committed);
    expect(await eventIds(t)).toEqual(["k1"]);

    // Within the grace period the cleanup keeps it (its flush may still commit it)...
    const graceful = tenant("lake-orphan", "admin", { ORPHAN_GRACE_HOURS: "6" });
    expect(await (await graceful.fetch("/lake/cleanup", { method: "POST" })).json()).toMatchObject({ orphans: [] });
    expect(await bucket().head(orphan)).not.toBeNull();
    // ...past it, the object goes; committed objects stay.
    const report = await (await t.fetch("/lake/cleanup", { method: "POST" })).json();
    expect(report).toMatchObject({ tenant: t.name, orphans: [orphan], deleted: [] });
    expect(await bucket().head(orphan)).toBeNull();
    expect(await objectKeys(t.name)).toEqual(committed);
    expect((await tenant("lake-orphan", "read").fetch("/lake/cleanup", { method: "POST" })).status).toBe(403);
  });

  it("commits a retried flush once: a retry that finds the earlier try's object commits that object", async () => {
    const t = "lake-retry";
    await catalogOf(t).read({});
    const events = sampleEvents(5).map((e, i) => ({ ...e, tenant: t, replica: `${t}-0`, seq: i }));
    const ctx: FlushContext = { tenant: t, replica: `${t}-0`, seq: 9, from: 0, to: 0, attempt: 0 };
    const dying = new R2ParquetSink(bucket(), "events", {
      commitFlush: () => Promise.reject(new Error("catalog down (test)")),
    });
    await expect(dying.write(EventBatch.from(events), ctx)).rejects.toThrow("(test)");
    // After a restart only part of the batch is left in memory: the earlier object is kept and committed.
    const { flushCommits } = await import("../../src/lake/catalog/client");
    const sink = new R2ParquetSink(bucket(), "events", flushCommits((env as unknown as Env).CATALOG));
    const keys = await sink.write(EventBatch.from(events.slice(0, 2)), { ...ctx, attempt: 1 });
    expect(await lakeKeys(t)).toEqual(keys);
    const read = await catalogOf(t).read({});
    expect("files" in read && read.files[0]?.rows).toBe(5);
    // Once more: already committed, nothing new.
    const snapshots = (await catalogOf(t).snapshots(10)).snapshots.length;
    await sink.write(EventBatch.from(events), { ...ctx, attempt: 2 });
    expect((await catalogOf(t).snapshots(10)).snapshots.length).toBe(snapshots);
  });

  it("keeps serving a reader's older snapshot after a compaction, until the snapshot expires", async () => {
    const t = tenant("lake-time-travel", "admin", { SNAPSHOT_RETENTION_HOURS: "0" });
    await t.post("/e", [ev("a", { id: "a1" }), ev("a", { id: "a2" })]);
    await t.post("/flush", {});
    await t.post("/e", [ev("b", { id: "b1" }), ev("b", { id: "a2" })]); // a2 again: a client's retry
    await t.post("/flush", {});
    const inputs = await lakeKeys(t.name);
    expect(inputs).toHaveLength(2);
    const before = (await snapshotsOf(t)).snapshots[0]?.id as number;
    const beforeTime = (await snapshotsOf(t)).snapshots[0]?.time as number;
    expect(await eventIds(t, `&snapshot=${before}`)).toEqual(["a1", "a2", "a2", "b1"]);

    const hour = Math.floor(Date.now() / HOUR) * HOUR;
    const summary = await compactHour(bucket(), catalogOf(t.name), hour);
    expect(summary).toMatchObject({ inputs: 2, rowsOut: 3, snapshot: before + 1 });
    expect(await lakeKeys(t.name)).toEqual([summary.key]);
    // The reader at the old snapshot still reads the inputs; the latest reads the compacted file.
    expect(await eventIds(t, `&snapshot=${before}`)).toEqual(["a1", "a2", "a2", "b1"]);
    expect(await eventIds(t, `&asOf=${beforeTime}`)).toEqual(["a1", "a2", "a2", "b1"]);
    expect(await eventIds(t)).toEqual(["a1", "a2", "b1"]);
    const { snapshots } = await snapshotsOf(t);
    expect(snapshots.find((s) => s.id === before + 1)).toMatchObject({
      changes: ["compacted_table:1"],
      rowsAdded: 3,
      rowsRemoved: 4,
    });
    // Then the hour's rollup (the first one also makes the rollup tables).
    expect(snapshots[0]).toMatchObject({ id: before + 3, changes: ["inserted_into_table:5"] });
    for (const key of inputs) expect(await bucket().head(key)).not.toBeNull();

    // Retention 0: the cleanup expires every snapshot but the latest and deletes the inputs.
    const report = (await (await t.fetch("/lake/cleanup", { method: "POST" })).json()) as { deleted: string[] };
    expect(report.deleted.sort()).toEqual(inputs);
    for (const key of inputs) expect(await bucket().head(key)).toBeNull();
    const gone = await t.fetch(`/events?snapshot=${before}`);
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({ error: { code: "not_found" } });
    expect(await eventIds(t)).toEqual(["a1", "a2", "b1"]);
    expect((await snapshotsOf(t)).snapshots.map((s) => s.id)).toEqual([before + 3]); // the rollup's
  });

  it("reads /events from the catalog's file list, never from a listing of the bucket", async () => {
    const t = tenant("lake-no-listing");
    await t.post("/e", [ev("x", { id: "x1" })]);
    await t.post("/flush", {});
    // An object in the tenant's folder that no snapshot lists.
    const stray = sampleEvents(2).map((e) => ({ ...e, tenant: t.name, id: `stray-${e.id}` }));
    const key = objectKey("events", t.name, Math.floor(Date.now() / HOUR) * HOUR, `${t.name}-9`, 1);
    const { encodeParquet } = await import("../../src/columns/parquet");
    await bucket().put(key, encodeParquet(EventBatch.from(stray)));
    expect(await eventIds(t)).toEqual(["x1"]);
  });

  it("checks /events' snapshot parameters and the routes' scopes", async () => {
    const t = tenant("lake-params");
    await t.post("/e", [ev("p")]);
    await t.post("/flush", {});
    for (const bad of ["snapshot=abc", "snapshot=-1", "snapshot=1&asOf=5", "asOf=yesterday"]) {
      expect((await t.fetch(`/events?${bad}`)).status, bad).toBe(400);
    }
    expect((await t.fetch("/events?snapshot=999999")).status).toBe(404);
    expect((await t.fetch(`/events?asOf=${Date.UTC(2000, 0, 1)}`)).status).toBe(404);
    const reader = tenant("lake-params", "read");
    expect((await reader.fetch("/snapshots")).status).toBe(200);
    expect((await reader.fetch("/snapshots?limit=0")).status).toBe(400);
    expect((await reader.fetch("/snapshots", { method: "POST" })).status).toBe(405);
    expect((await tenant("lake-params", "write").fetch("/snapshots")).status).toBe(403);
    const exported = await reader.fetch("/lake/catalog?dataPath=s3://my-bucket/");
    expect(exported.status).toBe(200);
    const body = (await exported.json()) as { version: string; dataPath: string; tables: Record<string, unknown> };
    expect(body).toMatchObject({ version: "1.0", dataPath: "s3://my-bucket/" });
    expect(Object.keys(body.tables)).toHaveLength(28);
    expect((await reader.fetch("/lake/catalog?dataPath=nowhere")).status).toBe(400);
    expect((await tenant("lake-params", "write").fetch("/lake/catalog")).status).toBe(403);
  });

  it("pages through /snapshots newest first", async () => {
    const t = tenant("lake-pages");
    for (let i = 0; i < 3; i++) {
      await t.post("/e", [ev("p", { id: `p${i}` })]);
      await t.post("/flush", {});
    }
    const first = (await (await t.fetch("/snapshots?limit=2")).json()) as SnapshotList;
    expect(first.snapshots.map((s) => s.id)).toEqual([4, 3]);
    const second = (await (await t.fetch(`/snapshots?limit=2&before=${first.next}`)).json()) as SnapshotList;
    expect(second.snapshots.map((s) => s.id)).toEqual([2, 1]);
    expect(first.snapshots[0]).toMatchObject({ rowsAdded: 1, rowsRemoved: 0, filesAdded: 1 });
    expect(typeof first.snapshots[0]?.time).toBe("number");
  });

  it("adopts the objects of a lake written before its catalog, which until then no reader sees and no cleanup deletes", async () => {
    const t = tenant("lake-legacy", "admin", { ORPHAN_GRACE_HOURS: "0" });
    const hour = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
    const { encodeParquet } = await import("../../src/columns/parquet");
    const old = (n: number, replica: number) =>
      sampleEvents(n).map((e, i) => ({
        ...e,
        id: `old-${replica}-${i}`,
        tenant: t.name,
        replica: `${t.name}-${replica}`,
        seq: i,
        receivedAt: hour + i,
      }));
    const keys = [0, 1].map((r) => objectKey("events", t.name, hour, `${t.name}-${r}`, 1));
    for (const [r, key] of keys.entries()) await bucket().put(key, encodeParquet(EventBatch.from(old(3, r))));
    // An hour with a split compaction under way waits for it.
    const splitting = objectKey("events", t.name, hour - HOUR, `${t.name}-0`, 1);
    await bucket().put(splitting, encodeParquet(EventBatch.from(old(1, 0))));
    await bucket().put(splitting.replace(/[^/]+$/, "_compaction.json"), "{}");

    const range = `&from=${hour - HOUR}&to=${Date.now() + 1}`;
    expect(await eventIds(t, range)).toEqual([]); // the catalog is created now, after them
    expect(await (await t.fetch("/lake/cleanup", { method: "POST" })).json()).toMatchObject({ orphans: [] });
    const report = await (await t.fetch("/lake/adopt", { method: "POST" })).json();
    expect(report).toMatchObject({ tenant: t.name, adopted: keys, remaining: 0 });
    expect(await eventIds(t, range)).toEqual([...old(3, 0), ...old(3, 1)].map((e) => e.id).sort());
    expect((await snapshotsOf(t)).snapshots[0]?.message).toBe("adopt 2 objects written before the catalog");
    expect(await (await t.fetch("/lake/adopt", { method: "POST" })).json()).toMatchObject({
      adopted: [],
      remaining: 0,
      snapshot: null,
    });
    expect((await tenant("lake-legacy", "read").fetch("/lake/adopt", { method: "POST" })).status).toBe(403);
  });
});
