import "../../src/columns/wasm";
import { env } from "cloudflare:workers";
import { tableFromIPC } from "apache-arrow";
import { ParquetFile, readParquet } from "parquet-wasm/esm";
import { describe, expect, it } from "vitest";
import { EventBatch } from "../../src/columns/batch";
import { encodeParquet, readTable } from "../../src/columns/parquet";
import { describeFile } from "../../src/columns/stats";
import type { Env } from "../../src/env";
import type { TenantCatalog } from "../../src/lake/catalog/client";
import {
  type CompactionSummary,
  compactAll,
  compactHour,
  compactTenant,
  listTenants,
  pendingHours,
} from "../../src/lake/compaction";
import { hourPrefix, manifestKey } from "../../src/lake/keys";
import { type RollupEntry, readRollups } from "../../src/lake/rollups";
import type { StoredEvent } from "../../src/protocol/events";
import { objectKey } from "../../src/sinks/r2-parquet";
import { HyperLogLog } from "../../src/views/hll";
import { sampleEvents } from "../helpers/events";
import { catalogOf, lakeKeys } from "./harness";

const HOUR = 3_600_000;
/** Two closed hours and one still open at NOW (closed = end + 15 min grace before now). */
const H1 = Date.UTC(2021, 2, 14, 10);
const H2 = H1 + HOUR;
const OPEN = H1 + 2 * HOUR;
const NOW = OPEN + 30 * 60_000;

const bucket = (env as unknown as Env).EVENTS;

/** One event with every column set; `at` places it. */
function event(
  tenant: string,
  id: string,
  at: { replica: number; seq: number; ts: number; receivedAt: number },
  extra: Partial<StoredEvent> = {},
): StoredEvent {
  return {
    id,
    tenant,
    ts: at.ts,
    receivedAt: at.receivedAt,
    source: "web",
    type: "click",
    importance: "normal",
    userId: `user-${id}`,
    anonymousId: null,
    sessionId: "sess-1",
    data: JSON.stringify({ id, replica: at.replica, seq: at.seq }),
    replica: `${tenant}-${at.replica}`,
    seq: at.seq,
    ...extra,
  };
}

/** Writes and commits a flush object as R2ParquetSink does (one replica's events of one hour). */
async function flushObject(hour: number, flushSeq: number, events: StoredEvent[]): Promise<string> {
  const first = events[0] as StoredEvent;
  const key = objectKey("events", first.tenant, hour, first.replica, flushSeq);
  const batch = EventBatch.from(events);
  const body = encodeParquet(batch);
  await bucket.put(key, body);
  const committed = await catalogOf(first.tenant).commit({
    change: "insert",
    add: [describeFile(key, hour, body, batch.table())],
  });
  if (!committed.ok) throw new Error(committed.conflict);
  return key;
}

/** What readers of the tenant's lake see of one hour now: its files at the latest snapshot. */
async function liveKeys(t: string, hour: number): Promise<string[]> {
  return (await lakeKeys(t)).filter((k) => k.startsWith(hourPrefix("events", t, hour)));
}

/** The catalog's latest snapshot. */
async function latest(t: string): Promise<number> {
  return (await catalogOf(t).snapshots(1)).snapshots[0]?.id as number;
}

/** The catalog's latest compaction snapshot (the hour's rollup is committed after it). */
async function lastCompaction(t: string): Promise<number> {
  const { snapshots } = await catalogOf(t).snapshots(10);
  return snapshots.find((s) => s.changes.includes("compacted_table:1"))?.id as number;
}

/** The compacted output of a whole hour: one part, under a fresh generation. */
const WHOLE = /\/compacted-\d+-[0-9a-z]+-0of1\.parquet$/;

/**
 * A small lake: H1 with duplicates across files (each tie-break exercised) and ts out of order,
 * H2 with files over 1,024 rows (several record batches when read back), OPEN with two files.
 * Returns every event written, by hour.
 */
async function seed(t: string): Promise<Map<number, StoredEvent[]>> {
  const at = (replica: number, seq: number, ts: number, received: number) => ({
    replica,
    seq,
    ts: H1 + ts,
    receivedAt: H1 + received,
  });
  const h1 = [
    [
      event(t, "e1", at(0, 1, 9_000, 1_000)),
      event(t, "e2", at(0, 2, -60_000, 1_000), { importance: "high", userId: null }),
      event(t, "e3", at(0, 3, 5_000, 2_000), { data: '{"copy":"later"}' }),
      event(t, "e4", at(0, 4, 5_000, 2_000), { source: "api", type: "error", data: '{"note":"héllo ✓ 日本"}' }),
    ],
    [
      // e3 received earlier on replica 1: this copy is kept.
      event(t, "e3", at(1, 7, 5_000, 1_500), { data: '{"copy":"earlier"}' }),
      event(t, "e5", at(1, 8, 5_000, 2_000), { sessionId: null, anonymousId: "anon-5" }),
      event(t, "e6", at(1, 9, 2_000, 3_000), { data: '{"replica":"one"}' }),
    ],
    [
      // Same receipt time as replica 1's e6: the smaller replica name wins.
      event(t, "e6", at(0, 10, 2_000, 3_000), { data: '{"replica":"zero"}' }),
      // Same receipt time and replica as e1 above, larger seq: the first one wins.
      event(t, "e1", at(0, 11, 9_000, 1_000), { data: '{"seq":"larger"}' }),
    ],
  ];
  const h2 = sampleEvents(2500).map((e, i) => ({
    ...e,
    tenant: t,
    replica: `${t}-2`,
    ts: H2 - i * 1_000, // descending client time
    receivedAt: H2 + i * 1_000,
  }));
  const h2Retry = h2.slice(2000).map((e) => ({ ...e, replica: `${t}-3`, receivedAt: e.receivedAt + 500 }));
  const open = [
    [event(t, "o1", at(0, 20, 2 * HOUR, 2 * HOUR + 1))],
    [event(t, "o2", at(1, 21, 2 * HOUR, 2 * HOUR + 2))],
  ];

  let flushSeq = 0;
  for (const events of h1) await flushObject(H1, flushSeq++, events);
  await flushObject(H2, flushSeq++, h2);
  await flushObject(H2, flushSeq++, h2Retry);
  for (const events of open) await flushObject(OPEN, flushSeq++, events);
  return new Map([
    [H1, h1.flat()],
    [H2, [...h2, ...h2Retry]],
    [OPEN, open.flat()],
  ]);
}

/** What compaction must produce, computed the slow way: one row per id, then sorted. */
function expected(events: StoredEvent[]): StoredEvent[] {
  const byId = new Map<string, StoredEvent>();
  for (const e of events) {
    const kept = byId.get(e.id);
    const earlier =
      !kept ||
      e.receivedAt < kept.receivedAt ||
      (e.receivedAt === kept.receivedAt &&
        (e.replica < kept.replica || (e.replica === kept.replica && e.seq < kept.seq)));
    if (earlier) byId.set(e.id, e);
  }
  return [...byId.values()].sort(
    (a, b) => a.ts - b.ts || a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}

async function bytesOf(key: string): Promise<Uint8Array> {
  const obj = await bucket.get(key);
  if (!obj) throw new Error(`no object ${key}`);
  return new Uint8Array(await obj.arrayBuffer());
}

/** A Parquet object read back inside workerd, as events. */
async function readEvents(key: string): Promise<StoredEvent[]> {
  const table = tableFromIPC(readParquet(await bytesOf(key)).intoIPCStream());
  return table.toArray().map((row) => {
    const r = row.toJSON() as Record<string, unknown>;
    return {
      id: r.id,
      tenant: r.tenant,
      ts: Number(r.ts),
      receivedAt: Number(r.received_at),
      source: r.source,
      type: r.type,
      importance: r.importance,
      userId: r.user_id,
      anonymousId: r.anonymous_id,
      sessionId: r.session_id,
      data: r.data,
      replica: r.replica,
      seq: Number(r.seq),
    } as StoredEvent;
  });
}

async function keysUnder(prefix: string): Promise<string[]> {
  const listed = await bucket.list({ prefix });
  return listed.objects.map((o) => o.key).sort();
}

/** Key → etag and upload time of every object of a tenant: equal snapshots mean nothing was rewritten. */
async function snapshot(t: string): Promise<Record<string, string>> {
  const listed = await bucket.list({ prefix: `events/tenant=${t}/` });
  return Object.fromEntries(listed.objects.map((o) => [o.key, `${o.etag}@${o.uploaded.getTime()}`]));
}

/** Decoded bytes over which an hour is split: H1 stays whole, H2 (3,000 rows) becomes several parts. */
const SPLIT_AT = 200_000;

/** The bucket, with the first put of a key matching `pattern` throwing as a crash would. */
function putsFailing(pattern: RegExp): R2Bucket {
  let failed = false;
  return new Proxy(bucket, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (prop === "put") {
        return async (key: string, ...rest: unknown[]) => {
          if (!failed && pattern.test(key)) {
            failed = true;
            throw new Error(`died writing ${key} (test)`);
          }
          return (value as (...args: unknown[]) => unknown).call(target, key, ...rest);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The tenant's catalog, with its first `failures` commits throwing as a crash between put and commit would. */
function commitsFailing(t: string, failures: number): TenantCatalog {
  const catalog = catalogOf(t);
  return {
    ...catalog,
    commit: async (req) => {
      if (failures-- > 0) throw new Error("died between write and commit (test)");
      return catalog.commit(req);
    },
  };
}

/** Events per (source, type, importance), sorted. */
function rollupCounts(events: StoredEvent[]): { source: string; type: string; importance: string; events: number }[] {
  const counts = new Map<string, number>();
  for (const e of events) {
    const k = JSON.stringify([e.source, e.type, e.importance]);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts.keys()].sort().map((k) => {
    const [source, type, importance] = JSON.parse(k) as [string, string, string];
    return { source, type, importance, events: counts.get(k) as number };
  });
}

/** The hour's rollup rows: the file the hourly rollup table lists for it (one), read back. */
async function hourRollup(t: string, hour: number): Promise<{ key: string; rows: RollupEntry[] }> {
  const read = await catalogOf(t).read({ rollup: "hour", from: hour, to: hour + HOUR });
  if ("missing" in read) throw new Error(read.missing);
  expect(read.files).toHaveLength(1);
  const key = read.files[0]?.key as string;
  return { key, rows: readRollups(readTable(await bytesOf(key))) };
}

/** The (source, type, importance) rows of a rollup as rollupCounts gives them. */
function groupCounts(rows: RollupEntry[]) {
  return rows
    .filter((r) => r.path === null)
    .map((r) => ({ source: r.source, type: r.type, importance: r.importance, events: r.events }))
    .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}

describe("compaction", () => {
  it("merges each closed hour into one compacted object with every event once, in ts order, every column intact, committed in place of its inputs", async () => {
    const t = "compact-clean";
    const written = await seed(t);
    const inputs = { [H1]: await liveKeys(t, H1), [H2]: await liveKeys(t, H2) };
    const before = await latest(t);
    const openBefore = await snapshot(t);
    const summaries = await compactTenant(bucket, catalogOf(t), NOW);

    expect(summaries.map((s) => [s.hour, s.skipped])).toEqual([
      [H1, undefined],
      [H2, undefined],
    ]);
    for (const hour of [H1, H2]) {
      const summary = summaries.find((s) => s.hour === hour) as CompactionSummary;
      const key = summary.key;
      expect(key.startsWith(`${hourPrefix("events", t, hour)}compacted-${hour}-`)).toBe(true);
      expect(key).toMatch(WHOLE);
      expect(summary.objects).toEqual([key]);
      expect(await liveKeys(t, hour)).toEqual([key]);
      const want = expected(written.get(hour) as StoredEvent[]);
      const rows = await readEvents(key);
      expect(rows).toEqual(want);
      expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
      expect(summary).toMatchObject({
        rollupKey: (await hourRollup(t, hour)).key,
        rowsIn: written.get(hour)?.length,
        rowsOut: want.length,
        duplicates: (written.get(hour)?.length as number) - want.length,
        bytesOut: (await bytesOf(key)).length,
      });
      // The inputs stay in R2, and the snapshot before the compaction still lists them.
      const all = await keysUnder(hourPrefix("events", t, hour));
      expect(all).toEqual(expect.arrayContaining(inputs[hour] as string[]));
      const old = await catalogOf(t).read({ snapshot: before, from: hour, to: hour + HOUR });
      expect("files" in old && old.files.map((f) => f.key).sort()).toEqual(inputs[hour]);
    }
    // One snapshot per hour, each "compacted_table", each followed by the hour's rollup (table 5,
    // the rollup tables made by the first one, in a snapshot of their own).
    const { snapshots } = await catalogOf(t).snapshots(5);
    expect(snapshots.map((s) => [s.id, s.changes])).toEqual([
      [before + 5, ["inserted_into_table:5"]],
      [before + 4, ["compacted_table:1"]],
      [before + 3, ["inserted_into_table:5"]],
      [
        before + 2,
        [
          'created_schema:"rollups"',
          'created_table:"rollups"."hourly"',
          'created_table:"rollups"."daily"',
          'created_table:"rollups"."monthly"',
        ],
      ],
      [before + 1, ["compacted_table:1"]],
    ]);
    expect(snapshots[4]).toMatchObject({ rowsAdded: 6, rowsRemoved: 9, filesAdded: 1, filesRemoved: 3 });
    // The tie-breaks: earliest receipt, then smaller replica, then smaller seq.
    const h1 = await readEvents(summaries[0]?.key as string);
    expect(h1.map((e) => e.id)).toEqual(["e2", "e6", "e3", "e4", "e5", "e1"]);
    expect(h1.find((e) => e.id === "e3")?.data).toBe('{"copy":"earlier"}');
    expect(h1.find((e) => e.id === "e6")?.data).toBe('{"replica":"zero"}');
    expect(h1.find((e) => e.id === "e1")?.seq).toBe(1);
    expect(summaries[0]).toMatchObject({ inputs: 3, rowsIn: 9, rowsOut: 6, duplicates: 3 });
    expect(summaries[1]).toMatchObject({ inputs: 2, rowsIn: 3000, rowsOut: 2500, duplicates: 500 });

    // The open hour is untouched.
    const openPrefix = hourPrefix("events", t, OPEN);
    const openAfter = await snapshot(t);
    for (const key of Object.keys(openBefore).filter((k) => k.startsWith(openPrefix))) {
      expect(openAfter[key]).toBe(openBefore[key]);
    }
    expect(await liveKeys(t, OPEN)).toHaveLength(2);
    expect(await keysUnder(`rollups/tenant=${t}/`)).toEqual(summaries.map((s) => s.rollupKey).sort());
  });

  it("writes each hour's rollup to the hourly rollup table under rollups/: events per source, type and importance, and distinct users", async () => {
    const t = "compact-rollup";
    const written = await seed(t);
    const summaries = await compactTenant(bucket, catalogOf(t), NOW);
    for (const hour of [H1, H2]) {
      const want = expected(written.get(hour) as StoredEvent[]);
      const { key, rows } = await hourRollup(t, hour);
      expect(key).toBe(summaries.find((s) => s.hour === hour)?.rollupKey);
      expect(key.startsWith(`rollups/tenant=${t}/grain=hour/`)).toBe(true);
      expect(groupCounts(rows)).toEqual(rollupCounts(want));
      expect(rows.every((r) => r.period === hour)).toBe(true);
      const users = new Set(want.map((e) => e.userId ?? e.anonymousId).filter((u) => u !== null)).size;
      const estimate = rows
        .filter((r) => r.path === null)
        .reduce((n, r) => n.merge(r.sketch), new HyperLogLog())
        .count();
      expect(Math.abs(estimate - users)).toBeLessThanOrEqual(Math.max(2, users * 0.03));
    }
  });

  it("writes the compacted object with the flush's Parquet writer settings", async () => {
    const t = "compact-settings";
    const written = await seed(t);
    const summaries = await compactTenant(bucket, catalogOf(t), NOW);
    const flushed = encodeParquet(EventBatch.from((written.get(H2) as StoredEvent[]).slice(0, 2500)));
    const compacted = await bytesOf(summaries[1]?.key as string);
    const describe = async (bytes: Uint8Array) => {
      const meta = (await ParquetFile.fromFile(new Blob([bytes]))).metadata();
      return {
        createdBy: meta.fileMetadata().createdBy(),
        columns: meta
          .rowGroup(0)
          .columns()
          .map((c) => ({ path: c.columnPath().join("."), compression: c.compression(), encodings: c.encodings() })),
      };
    };
    expect(await describe(compacted)).toEqual(await describe(flushed));
  });

  it("after dying between writing its output and committing it, leaves an orphan no reader sees; a re-run compacts as a clean run would", async () => {
    const t = "compact-crash";
    const written = await seed(t);
    const inputsH1 = await liveKeys(t, H1);

    // The first commit dies: H1's output is written but not committed; H2 goes through.
    const crashed = await compactTenant(bucket, commitsFailing(t, 1), NOW);
    expect(crashed.map((s) => s.skipped)).toEqual(["failed: died between write and commit (test)", undefined]);
    expect(await liveKeys(t, H1)).toEqual(inputsH1);
    const orphans = (await keysUnder(hourPrefix("events", t, H1))).filter((k) => !inputsH1.includes(k));
    expect(orphans).toHaveLength(1);
    expect(orphans[0]).toMatch(WHOLE);
    expect((await catalogOf(t).unknownKeys(orphans)).unknown).toEqual(orphans);
    expect(await pendingHours(catalogOf(t), NOW)).toEqual([H1]);

    const rerun = await compactTenant(bucket, catalogOf(t), NOW);
    const want = expected(written.get(H1) as StoredEvent[]);
    expect(rerun).toHaveLength(1);
    expect(rerun[0]).toMatchObject({ hour: H1, inputs: inputsH1.length, rowsOut: want.length });
    expect(rerun[0]?.skipped).toBeUndefined();
    expect(rerun[0]?.key).not.toBe(orphans[0]);
    expect(await liveKeys(t, H1)).toEqual([rerun[0]?.key]);
    expect(await readEvents(rerun[0]?.key as string)).toEqual(want);
    expect(groupCounts((await hourRollup(t, H1)).rows)).toEqual(rollupCounts(want));
    expect(await pendingHours(catalogOf(t), NOW)).toEqual([]);
  });

  it("compactHour throws when it dies before committing, and changes nothing a reader sees", async () => {
    const t = "compact-crash-hour";
    await seed(t);
    const before = await liveKeys(t, H1);
    const snapshotBefore = await latest(t);
    await expect(compactHour(bucket, commitsFailing(t, 1), H1)).rejects.toThrow("died between write and commit");
    expect(await liveKeys(t, H1)).toEqual(before);
    expect(await latest(t)).toBe(snapshotBefore);
  });

  it("leaves an already compacted hour alone", async () => {
    const t = "compact-twice";
    await seed(t);
    await compactTenant(bucket, catalogOf(t), NOW);
    const before = await snapshot(t);
    const snapshotBefore = await latest(t);
    expect(await compactTenant(bucket, catalogOf(t), NOW)).toEqual([]);
    expect(await compactHour(bucket, catalogOf(t), H1)).toMatchObject({ skipped: "already compacted", inputs: 1 });
    expect(await snapshot(t)).toEqual(before);
    expect(await latest(t)).toBe(snapshotBefore);
  });

  it("merges a flush that lands after compaction into a new compacted object", async () => {
    const t = "compact-late";
    const written = await seed(t);
    const [first] = await compactTenant(bucket, catalogOf(t), NOW);
    const late = [event(t, "late-1", { replica: 5, seq: 1, ts: H1, receivedAt: H1 + 59 * 60_000 })];
    const dup = [event(t, "e5", { replica: 9, seq: 1, ts: H1, receivedAt: H1 + 59 * 60_000 })];
    await flushObject(H1, 100, late);
    await flushObject(H1, 101, dup);
    const [summary] = await compactTenant(bucket, catalogOf(t), NOW);
    expect(summary).toMatchObject({ hour: H1, inputs: 3, duplicates: 1 });
    expect(summary?.key).not.toBe(first?.key);
    expect(await readEvents(summary?.key as string)).toEqual(
      expected([...(written.get(H1) as StoredEvent[]), ...late, ...dup]),
    );
    expect(await liveKeys(t, H1)).toEqual([summary?.key]);
    // The first output is untouched: a reader at an earlier snapshot still reads it.
    expect(await readEvents(first?.key as string)).toEqual(expected(written.get(H1) as StoredEvent[]));
  });

  it("skips an hour over maxInputBytes and says why, touching nothing", async () => {
    const t = "compact-limits";
    await seed(t);
    const before = await snapshot(t);
    const snapshotBefore = await latest(t);
    const bySize = await compactTenant(bucket, catalogOf(t), NOW, { maxInputBytes: 100 });
    expect(bySize.map((s) => s.skipped)).toEqual([
      expect.stringMatching(/over maxInputBytes \(100\)/),
      expect.stringMatching(/over maxInputBytes \(100\)/),
    ]);
    expect(bySize[0]?.bytesIn).toBeGreaterThan(100);
    expect(await snapshot(t)).toEqual(before);
    expect(await latest(t)).toBe(snapshotBefore);
  });

  it("splits an hour over maxDecodedBytes into parts by id: every event once, each part sorted, one rollup, one snapshot", async () => {
    const t = "compact-split";
    const written = await seed(t);
    const listed = await bucket.list({ prefix: hourPrefix("events", t, H2) });
    const bytesIn = listed.objects.reduce((n, o) => n + o.size, 0);
    const summaries = await compactTenant(bucket, catalogOf(t), NOW, { maxDecodedBytes: SPLIT_AT });
    expect(summaries.map((s) => [s.hour, s.skipped])).toEqual([
      [H1, undefined],
      [H2, undefined],
    ]);
    const split = summaries[1] as CompactionSummary;
    expect(summaries[0]?.objects).toEqual([summaries[0]?.key]);
    expect(split.objects.length).toBeGreaterThan(2);
    expect(split).toMatchObject({
      inputs: 2,
      rowsIn: 3000,
      rowsOut: 2500,
      duplicates: 500,
      key: split.objects[0],
      bytesIn,
      snapshot: await lastCompaction(t),
    });
    expect(await liveKeys(t, H2)).toEqual([...split.objects].sort());

    const want = expected(written.get(H2) as StoredEvent[]);
    const parts = await Promise.all(split.objects.map(readEvents));
    for (const part of parts) {
      expect(part.length).toBeGreaterThan(0);
      expect(part).toEqual(expected(part));
    }
    expect(expected(parts.flat())).toEqual(want);

    // One rollup of the hour, from every part.
    const rollup = await hourRollup(t, H2);
    expect(rollup.key).toBe(split.rollupKey);
    expect(groupCounts(rollup.rows)).toEqual(rollupCounts(want));
    expect(await pendingHours(catalogOf(t), NOW)).toEqual([]);
    expect(await compactHour(bucket, catalogOf(t), H2, { maxDecodedBytes: SPLIT_AT })).toMatchObject({
      skipped: "already compacted",
    });
    expect(await keysUnder(`events-spill/tenant=${t}/`)).toEqual([]);
  });

  it("after dying between parts, or before the commit, a re-run finishes the split from its manifest", async () => {
    for (const [t, crashing, catalog] of [
      ["compact-split-part", putsFailing(/-2of\d+\.parquet$/), catalogOf("compact-split-part")],
      ["compact-split-commit", bucket, commitsFailing("compact-split-commit", 1)],
    ] as const) {
      const written = await seed(t);
      const inputs = await liveKeys(t, H2);
      await expect(compactHour(crashing, catalog, H2, { maxDecodedBytes: SPLIT_AT })).rejects.toThrow("(test)");
      const left = await keysUnder(hourPrefix("events", t, H2));
      expect(left).toEqual(expect.arrayContaining([...inputs, manifestKey("events", t, H2)]));
      expect(await liveKeys(t, H2)).toEqual(inputs);
      expect(await pendingHours(catalogOf(t), NOW)).toEqual([H1, H2]);

      const rerun = await compactHour(bucket, catalogOf(t), H2, { maxDecodedBytes: SPLIT_AT });
      expect(rerun.skipped).toBeUndefined();
      expect(rerun.objects.length).toBeGreaterThan(2);
      // The parts the crashed run wrote are kept: the same generation finishes.
      for (const key of left.filter((k) => k.includes("compacted-"))) expect(rerun.objects).toContain(key);
      expect(await liveKeys(t, H2)).toEqual([...rerun.objects].sort());
      expect(await keysUnder(hourPrefix("events", t, H2))).not.toContain(manifestKey("events", t, H2));
      const parts = await Promise.all(rerun.objects.map(readEvents));
      expect(expected(parts.flat())).toEqual(expected(written.get(H2) as StoredEvent[]));
      const rollup = await hourRollup(t, H2);
      expect(groupCounts(rollup.rows).reduce((n, r) => n + r.events, 0)).toBe(2500);
      expect(await pendingHours(catalogOf(t), NOW)).toEqual([H1]);
    }
  });

  it("pauses a split between steps past its deadline, and the next run resumes it", async () => {
    const t = "compact-split-pause";
    const written = await seed(t);
    const paused = await compactHour(bucket, catalogOf(t), H2, { maxDecodedBytes: SPLIT_AT, deadline: Date.now() - 1 });
    expect(paused.skipped).toMatch(/^split paused before group 1 of 2 \(time budget\)/);
    const left = await keysUnder(hourPrefix("events", t, H2));
    expect(left).toContain(manifestKey("events", t, H2));
    expect(left.some((k) => k.includes("/compacted-"))).toBe(false);
    const resumed = await compactHour(bucket, catalogOf(t), H2, { maxDecodedBytes: SPLIT_AT });
    expect(resumed.skipped).toBeUndefined();
    const parts = await Promise.all(resumed.objects.map(readEvents));
    expect(expected(parts.flat())).toEqual(expected(written.get(H2) as StoredEvent[]));
    expect(await keysUnder(`events-spill/tenant=${t}/`)).toEqual([]);
  });

  it("gives up a split when the hour changed before its commit, so the hour is not stuck, and loses nothing", async () => {
    const t = "compact-split-changed";
    const written = await seed(t);
    await expect(
      compactHour(putsFailing(/\/g1\/b\d+\.parquet$/), catalogOf(t), H2, { maxDecodedBytes: SPLIT_AT }),
    ).rejects.toThrow("(test)");
    // Meanwhile another change replaced one input with a copy of its rows (as a rewrite would).
    const moved = (await liveKeys(t, H2)).at(-1) as string;
    const rows = await readEvents(moved);
    const copy = moved.replace(/\.parquet$/, "-copy.parquet");
    const batch = EventBatch.from(rows);
    const body = encodeParquet(batch);
    await bucket.put(copy, body);
    const replaced = await catalogOf(t).commit({
      change: "compact",
      remove: [moved],
      add: [describeFile(copy, H2, body, batch.table())],
    });
    expect(replaced.ok).toBe(true);

    const abandoned = await compactHour(bucket, catalogOf(t), H2, { maxDecodedBytes: SPLIT_AT });
    expect(abandoned.skipped).toMatch(/^split \w+ abandoned: the hour changed meanwhile/);
    const left = await keysUnder(hourPrefix("events", t, H2));
    expect(left).not.toContain(manifestKey("events", t, H2));
    expect(left.some((k) => k.includes("/compacted-"))).toBe(false);
    expect(await keysUnder(`events-spill/tenant=${t}/`)).toEqual([]);
    const done = await compactHour(bucket, catalogOf(t), H2, { maxDecodedBytes: SPLIT_AT });
    expect(done.skipped).toBeUndefined();
    const parts = await Promise.all(done.objects.map(readEvents));
    expect(expected(parts.flat())).toEqual(expected(written.get(H2) as StoredEvent[]));
    expect(await liveKeys(t, H2)).toEqual([...done.objects].sort());
  });

  it("rolls back a split whose part is over the bound (one id repeated), touching no input", async () => {
    const t = "compact-split-skew";
    const same = sampleEvents(3000).map((e, i) => ({
      ...e,
      id: "same-id",
      tenant: t,
      replica: `${t}-1`,
      seq: i,
      ts: H1 + i,
      receivedAt: H1 + i,
    }));
    await flushObject(H1, 1, same.slice(0, 1500));
    await flushObject(H1, 2, same.slice(1500));
    const before = await snapshot(t);
    const snapshotBefore = await latest(t);
    const summary = await compactHour(bucket, catalogOf(t), H1, { maxDecodedBytes: SPLIT_AT });
    expect(summary.skipped).toMatch(/abandoned: part \d+ of \d+ decodes to over maxDecodedBytes/);
    expect(await snapshot(t)).toEqual(before);
    expect(await latest(t)).toBe(snapshotBefore);
  });

  it("merges a flush that lands after a split into a new split, dropping the old parts", async () => {
    const t = "compact-split-late";
    const written = await seed(t);
    const [, first] = await compactTenant(bucket, catalogOf(t), NOW, { maxDecodedBytes: SPLIT_AT });
    const late = [event(t, "late-1", { replica: 5, seq: 1, ts: H2, receivedAt: H2 + 59 * 60_000 })];
    const dup = [{ ...(written.get(H2)?.[7] as StoredEvent), replica: `${t}-9`, receivedAt: H2 + 59 * 60_000 }];
    await flushObject(H2, 100, late);
    await flushObject(H2, 101, dup);
    const [second] = await compactTenant(bucket, catalogOf(t), NOW, { maxDecodedBytes: SPLIT_AT });
    expect(second?.skipped).toBeUndefined();
    expect(second).toMatchObject({ hour: H2, rowsOut: 2501, duplicates: 1 });
    expect(second?.objects.some((k) => first?.objects.includes(k))).toBe(false);
    expect(await liveKeys(t, H2)).toEqual([...(second?.objects ?? [])].sort());
    const parts = await Promise.all((second?.objects ?? []).map(readEvents));
    expect(expected(parts.flat())).toEqual(expected([...(written.get(H2) as StoredEvent[]), ...late, ...dup]));
  });

  it("loses a race with another compaction of the hour cleanly: the other's output stays, its own is deleted", async () => {
    const t = "compact-race";
    const written = await seed(t);
    const own: string[] = [];
    let otherRun: Promise<CompactionSummary> | null = null;
    // Another run compacts the hour (and commits) while this one reads its inputs.
    const racing = new Proxy(bucket, {
      get(target, prop) {
        if (prop === "get") {
          return async (k: string) => {
            otherRun ??= compactHour(bucket, catalogOf(t), H1);
            await otherRun;
            return target.get(k);
          };
        }
        if (prop === "put") {
          return (k: string, ...rest: unknown[]) => {
            own.push(k);
            return (target.put as (...args: unknown[]) => unknown).call(target, k, ...rest);
          };
        }
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const summary = await compactHour(racing, catalogOf(t), H1);
    const other = await (otherRun as Promise<CompactionSummary> | null);
    expect(summary.skipped).toMatch(/the hour changed while compacting/);
    expect(await liveKeys(t, H1)).toEqual([other?.key]);
    expect(await readEvents(other?.key as string)).toEqual(expected(written.get(H1) as StoredEvent[]));
    const ownOutput = own.find((k) => WHOLE.test(k)) as string;
    expect(ownOutput).toBeDefined();
    expect(await bucket.head(ownOutput)).toBeNull();
  });

  it("compactAll stops past the budget, reports what it left, and takes tenants in turn", async () => {
    // Its own day, before the other tests' hours, so `now` closes only these.
    const day = Date.UTC(2020, 5, 1);
    const now = day + 3 * HOUR;
    for (const t of ["compact-all-a", "compact-all-b"]) {
      for (const hour of [day, day + HOUR]) {
        await flushObject(hour, 1, [event(t, `${hour}-1`, { replica: 0, seq: 1, ts: hour, receivedAt: hour })]);
        await flushObject(hour, 2, [event(t, `${hour}-2`, { replica: 1, seq: 1, ts: hour, receivedAt: hour })]);
      }
    }
    expect(await listTenants(bucket)).toEqual(expect.arrayContaining(["compact-all-a", "compact-all-b"]));

    const first = await compactAll(bucket, catalogOf, now, { budgetMs: 0 });
    expect(first.summaries.map((s) => [s.tenant, s.hour, s.skipped])).toEqual([["compact-all-a", day, undefined]]);
    // Listing stops once an hour is found, so the next tenant is left unlisted.
    expect(first.remaining).toEqual([{ tenant: "compact-all-a", hour: day + HOUR }]);
    expect(first.unlistedTenants).toContain("compact-all-b");

    const second = await compactAll(bucket, catalogOf, now);
    expect(second.remaining).toEqual([]);
    expect(second.unlistedTenants).toEqual([]);
    // One hour per tenant per round.
    expect(second.summaries.map((s) => [s.tenant, s.hour, s.rowsOut])).toEqual([
      ["compact-all-a", day + HOUR, 2],
      ["compact-all-b", day, 2],
      ["compact-all-b", day + HOUR, 2],
    ]);
    for (const t of ["compact-all-a", "compact-all-b"]) {
      const keys = await lakeKeys(t);
      expect(keys).toHaveLength(2);
      for (const key of keys) expect(key).toMatch(WHOLE);
    }
  });
});
