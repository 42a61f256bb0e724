import "../../src/columns/wasm";
import { env } from "cloudflare:workers";
import { tableFromIPC } from "apache-arrow";
import { ParquetFile, readParquet } from "parquet-wasm/esm";
import { describe, expect, it } from "vitest";
import { EventBatch } from "../../src/columns/batch";
import { encodeParquet } from "../../src/columns/parquet";
import type { Env } from "../../src/env";
import {
  type CompactionSummary,
  compactAll,
  compactHour,
  compactTenant,
  type HourRollup,
  listTenants,
  pendingHours,
} from "../../src/lake/compaction";
import { compactedKey, hourPrefix, manifestKey, rollupKey } from "../../src/lake/keys";
import type { StoredEvent } from "../../src/protocol/events";
import { objectKey } from "../../src/sinks/r2-parquet";
import { sampleEvents } from "../helpers/events";

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

/** Writes a flush object exactly as R2ParquetSink does (one replica's events of one hour). */
async function flushObject(hour: number, flushSeq: number, events: StoredEvent[]): Promise<string> {
  const first = events[0] as StoredEvent;
  const key = objectKey("events", first.tenant, hour, first.replica, flushSeq);
  await bucket.put(key, encodeParquet(EventBatch.from(events)));
  return key;
}

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

/** The bucket, with its first `failures` deletes throwing as a crash between write and delete would. */
function deletesFailing(failures: number): R2Bucket {
  return new Proxy(bucket, {
    get(target, prop) {
      if (prop === "delete" && failures > 0) {
        return async () => {
          failures--;
          throw new Error("died between write and delete (test)");
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function rollupCounts(events: StoredEvent[]): HourRollup["counts"] {
  const counts = new Map<string, number>();
  for (const e of events) {
    const k = JSON.stringify([e.source, e.type, e.importance]);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts.keys()].sort().map((k) => {
    const [source, type, importance] = JSON.parse(k) as string[];
    return { source, type, importance, count: counts.get(k) } as HourRollup["counts"][number];
  });
}

describe("compaction", () => {
  it("merges each closed hour into one compacted object with every event once, in ts order, every column intact", async () => {
    const t = "compact-clean";
    const written = await seed(t);
    const openBefore = await snapshot(t);
    const summaries = await compactTenant(bucket, t, NOW);

    expect(summaries.map((s) => [s.hour, s.skipped])).toEqual([
      [H1, undefined],
      [H2, undefined],
    ]);
    for (const hour of [H1, H2]) {
      const key = compactedKey("events", t, hour);
      expect(key).toBe(`${hourPrefix("events", t, hour)}compacted-${hour}.parquet`);
      expect(objectKey("events", t, hour, `${t}-0`, 1).startsWith(hourPrefix("events", t, hour))).toBe(true);
      expect(await keysUnder(hourPrefix("events", t, hour))).toEqual([key]);
      const want = expected(written.get(hour) as StoredEvent[]);
      const rows = await readEvents(key);
      expect(rows).toEqual(want);
      expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
      const summary = summaries.find((s) => s.hour === hour) as CompactionSummary;
      expect(summary).toMatchObject({
        key,
        rollupKey: rollupKey("rollups", t, hour),
        rowsIn: written.get(hour)?.length,
        rowsOut: want.length,
        duplicates: (written.get(hour)?.length as number) - want.length,
        bytesOut: (await bytesOf(key)).length,
      });
    }
    // The tie-breaks: earliest receipt, then smaller replica, then smaller seq.
    const h1 = await readEvents(compactedKey("events", t, H1));
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
    expect(await keysUnder(openPrefix)).toHaveLength(2);
    expect(await keysUnder(`rollups/tenant=${t}/`)).toEqual([rollupKey("rollups", t, H1), rollupKey("rollups", t, H2)]);
  });

  it("writes an hourly rollup outside events/ with counts, distinct ids and the ts range", async () => {
    const t = "compact-rollup";
    const written = await seed(t);
    await compactTenant(bucket, t, NOW);
    for (const hour of [H1, H2]) {
      const want = expected(written.get(hour) as StoredEvent[]);
      const rollup = (await (await bucket.get(rollupKey("rollups", t, hour)))?.json()) as HourRollup;
      expect(rollupKey("rollups", t, hour).startsWith("rollups/")).toBe(true);
      expect(rollup).toEqual({
        tenant: t,
        hour,
        key: compactedKey("events", t, hour),
        objects: [compactedKey("events", t, hour)],
        rows: want.length,
        distinctIds: new Set(want.map((e) => e.id)).size,
        duplicates: (written.get(hour)?.length as number) - want.length,
        minTs: Math.min(...want.map((e) => e.ts)),
        maxTs: Math.max(...want.map((e) => e.ts)),
        counts: rollupCounts(want),
      });
      expect(rollup.counts.reduce((n, c) => n + c.count, 0)).toBe(want.length);
    }
  });

  it("writes the compacted object with the flush's Parquet writer settings", async () => {
    const t = "compact-settings";
    const written = await seed(t);
    await compactTenant(bucket, t, NOW);
    const flushed = encodeParquet(EventBatch.from((written.get(H2) as StoredEvent[]).slice(0, 2500)));
    const compacted = await bytesOf(compactedKey("events", t, H2));
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

  it("after dying between write and delete, a re-run ends as a clean run would: same object, leftovers gone", async () => {
    const t = "compact-crash";
    const written = await seed(t);
    const inputsH1 = await keysUnder(hourPrefix("events", t, H1));

    // The first delete dies: H1 is written (object and rollup) but its inputs stay; H2 goes through.
    const crashed = await compactTenant(deletesFailing(1), t, NOW);
    expect(crashed.map((s) => s.skipped)).toEqual(["failed: died between write and delete (test)", undefined]);
    const key = compactedKey("events", t, H1);
    expect(await keysUnder(hourPrefix("events", t, H1))).toEqual([...inputsH1, key].sort());
    const firstWrite = await bytesOf(key);
    expect(await pendingHours(bucket, t, NOW)).toEqual([H1]);

    const rerun = await compactTenant(bucket, t, NOW);
    const want = expected(written.get(H1) as StoredEvent[]);
    expect(rerun).toHaveLength(1);
    expect(rerun[0]).toMatchObject({ hour: H1, inputs: inputsH1.length + 1, rowsOut: want.length });
    expect(rerun[0]?.skipped).toBeUndefined();
    expect(await keysUnder(hourPrefix("events", t, H1))).toEqual([key]);
    expect(await bytesOf(key)).toEqual(firstWrite);
    expect(await readEvents(key)).toEqual(want);
    const rollup = (await (await bucket.get(rollupKey("rollups", t, H1)))?.json()) as HourRollup;
    expect(rollup).toMatchObject({ rows: want.length, distinctIds: want.length, counts: rollupCounts(want) });
    expect(await pendingHours(bucket, t, NOW)).toEqual([]);
  });

  it("compactHour throws when it dies before deleting, and deletes nothing", async () => {
    const t = "compact-crash-hour";
    await seed(t);
    const before = await keysUnder(hourPrefix("events", t, H1));
    await expect(compactHour(deletesFailing(1), t, H1)).rejects.toThrow("died between write and delete");
    expect(await keysUnder(hourPrefix("events", t, H1))).toEqual([...before, compactedKey("events", t, H1)].sort());
  });

  it("leaves an already compacted hour alone", async () => {
    const t = "compact-twice";
    await seed(t);
    await compactTenant(bucket, t, NOW);
    const before = await snapshot(t);
    expect(await compactTenant(bucket, t, NOW)).toEqual([]);
    expect(await compactHour(bucket, t, H1)).toMatchObject({ skipped: "already compacted", inputs: 1 });
    expect(await snapshot(t)).toEqual(before);
  });

  it("merges a flush that lands after compaction into the compacted object", async () => {
    const t = "compact-late";
    const written = await seed(t);
    await compactTenant(bucket, t, NOW);
    const late = [event(t, "late-1", { replica: 5, seq: 1, ts: H1, receivedAt: H1 + 59 * 60_000 })];
    const dup = [event(t, "e5", { replica: 9, seq: 1, ts: H1, receivedAt: H1 + 59 * 60_000 })];
    await flushObject(H1, 100, late);
    await flushObject(H1, 101, dup);
    const [summary] = await compactTenant(bucket, t, NOW);
    expect(summary).toMatchObject({ hour: H1, inputs: 3, duplicates: 1 });
    expect(await readEvents(compactedKey("events", t, H1))).toEqual(
      expected([...(written.get(H1) as StoredEvent[]), ...late, ...dup]),
    );
    expect(await keysUnder(hourPrefix("events", t, H1))).toEqual([compactedKey("events", t, H1)]);
  });

  it("skips an hour over maxInputBytes and says why, touching nothing", async () => {
    const t = "compact-limits";
    await seed(t);
    const before = await snapshot(t);
    const bySize = await compactTenant(bucket, t, NOW, { maxInputBytes: 100 });
    expect(bySize.map((s) => s.skipped)).toEqual([
      expect.stringMatching(/over maxInputBytes \(100\)/),
      expect.stringMatching(/over maxInputBytes \(100\)/),
    ]);
    expect(bySize[0]?.bytesIn).toBeGreaterThan(100);
    expect(await snapshot(t)).toEqual(before);
  });

  it("splits an hour over maxDecodedBytes into parts by id: every event once, each part sorted, one rollup", async () => {
    const t = "compact-split";
    const written = await seed(t);
    const listed = await bucket.list({ prefix: hourPrefix("events", t, H2) });
    const bytesIn = listed.objects.reduce((n, o) => n + o.size, 0);
    const summaries = await compactTenant(bucket, t, NOW, { maxDecodedBytes: SPLIT_AT });
    expect(summaries.map((s) => [s.hour, s.skipped])).toEqual([
      [H1, undefined],
      [H2, undefined],
    ]);
    const split = summaries[1] as CompactionSummary;
    expect(summaries[0]?.objects).toEqual([compactedKey("events", t, H1)]);
    expect(split.objects.length).toBeGreaterThan(2);
    expect(split).toMatchObject({
      inputs: 2,
      rowsIn: 3000,
      rowsOut: 2500,
      duplicates: 500,
      key: split.objects[0],
      bytesIn,
    });
    expect(await keysUnder(hourPrefix("events", t, H2))).toEqual([...split.objects].sort());

    const want = expected(written.get(H2) as StoredEvent[]);
    const parts = await Promise.all(split.objects.map(readEvents));
    for (const part of parts) {
      expect(part.length).toBeGreaterThan(0);
      expect(part).toEqual(expected(part));
    }
    expect(expected(parts.flat())).toEqual(want);

    const rollup = (await (await bucket.get(rollupKey("rollups", t, H2)))?.json()) as HourRollup;
    expect(rollup).toMatchObject({
      key: split.objects[0],
      objects: split.objects,
      rows: 2500,
      distinctIds: 2500,
      duplicates: 500,
      minTs: want[0]?.ts,
      maxTs: want.at(-1)?.ts,
      counts: rollupCounts(want),
    });
    expect(await pendingHours(bucket, t, NOW)).toEqual([]);
    expect(await compactHour(bucket, t, H2, { maxDecodedBytes: SPLIT_AT })).toMatchObject({
      skipped: "already compacted",
    });
  });

  it("after dying between parts, or before the deletes, a re-run finishes the split from its manifest", async () => {
    for (const [t, crashing] of [
      ["compact-split-part", putsFailing(/-2of\d+\.parquet$/)],
      ["compact-split-delete", deletesFailing(1)],
    ] as const) {
      const written = await seed(t);
      const inputs = await keysUnder(hourPrefix("events", t, H2));
      await expect(compactHour(crashing, t, H2, { maxDecodedBytes: SPLIT_AT })).rejects.toThrow("(test)");
      const left = await keysUnder(hourPrefix("events", t, H2));
      expect(left).toEqual(expect.arrayContaining([...inputs, manifestKey("events", t, H2)]));
      expect(await pendingHours(bucket, t, NOW)).toEqual([H1, H2]);

      const rerun = await compactHour(bucket, t, H2, { maxDecodedBytes: SPLIT_AT });
      expect(rerun.skipped).toBeUndefined();
      expect(rerun.objects.length).toBeGreaterThan(2);
      // The parts the crashed run wrote are kept: the same generation finishes.
      for (const key of left.filter((k) => k.includes("compacted-"))) expect(rerun.objects).toContain(key);
      expect(await keysUnder(hourPrefix("events", t, H2))).toEqual([...rerun.objects].sort());
      const parts = await Promise.all(rerun.objects.map(readEvents));
      expect(expected(parts.flat())).toEqual(expected(written.get(H2) as StoredEvent[]));
      const rollup = (await (await bucket.get(rollupKey("rollups", t, H2)))?.json()) as HourRollup;
      expect(rollup).toMatchObject({ rows: 2500, objects: rerun.objects });
      expect(await pendingHours(bucket, t, NOW)).toEqual([H1]);
    }
  });

  it("pauses a split between steps past its deadline, and the next run resumes it", async () => {
    const t = "compact-split-pause";
    const written = await seed(t);
    const paused = await compactHour(bucket, t, H2, { maxDecodedBytes: SPLIT_AT, deadline: Date.now() - 1 });
    expect(paused.skipped).toMatch(/^split paused before group 1 of 2 \(time budget\)/);
    const left = await keysUnder(hourPrefix("events", t, H2));
    expect(left).toContain(manifestKey("events", t, H2));
    expect(left.some((k) => k.includes("/compacted-"))).toBe(false);
    const resumed = await compactHour(bucket, t, H2, { maxDecodedBytes: SPLIT_AT });
    expect(resumed.skipped).toBeUndefined();
    const parts = await Promise.all(resumed.objects.map(readEvents));
    expect(expected(parts.flat())).toEqual(expected(written.get(H2) as StoredEvent[]));
    expect(await keysUnder(`events-spill/tenant=${t}/`)).toEqual([]);
  });

  it("gives up a split whose input vanished before it was read, so the hour is not stuck, and loses nothing", async () => {
    const t = "compact-split-vanished";
    const written = await seed(t);
    await expect(
      compactHour(putsFailing(/\/g1\/b\d+\.parquet$/), t, H2, { maxDecodedBytes: SPLIT_AT }),
    ).rejects.toThrow("(test)");
    // Meanwhile another run moved the unread input's rows elsewhere (as a single-file compaction would).
    const inputs = (await keysUnder(hourPrefix("events", t, H2))).filter(
      (k) => k.endsWith(".parquet") && !k.includes("/compacted-"),
    );
    const moved = inputs.at(-1) as string;
    const rows = await readEvents(moved);
    await bucket.delete(moved);
    await flushObject(H2, 500, rows);
    const abandoned = await compactHour(bucket, t, H2, { maxDecodedBytes: SPLIT_AT });
    expect(abandoned.skipped).toMatch(/^split \w+ abandoned: an input vanished/);
    expect(await keysUnder(hourPrefix("events", t, H2))).not.toContain(manifestKey("events", t, H2));
    expect(await keysUnder(`events-spill/tenant=${t}/`)).toEqual([]);
    const done = await compactHour(bucket, t, H2, { maxDecodedBytes: SPLIT_AT });
    expect(done.skipped).toBeUndefined();
    const parts = await Promise.all(done.objects.map(readEvents));
    expect(expected(parts.flat())).toEqual(expected(written.get(H2) as StoredEvent[]));
    expect(await keysUnder(hourPrefix("events", t, H2))).toEqual([...done.objects].sort());
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
    const summary = await compactHour(bucket, t, H1, { maxDecodedBytes: SPLIT_AT });
    expect(summary.skipped).toMatch(/abandoned: part \d+ of \d+ decodes to over maxDecodedBytes/);
    expect(await snapshot(t)).toEqual(before);
  });

  it("merges a flush that lands after a split into a new split, dropping the old parts", async () => {
    const t = "compact-split-late";
    const written = await seed(t);
    const [, first] = await compactTenant(bucket, t, NOW, { maxDecodedBytes: SPLIT_AT });
    const late = [event(t, "late-1", { replica: 5, seq: 1, ts: H2, receivedAt: H2 + 59 * 60_000 })];
    const dup = [{ ...(written.get(H2)?.[7] as StoredEvent), replica: `${t}-9`, receivedAt: H2 + 59 * 60_000 }];
    await flushObject(H2, 100, late);
    await flushObject(H2, 101, dup);
    const [second] = await compactTenant(bucket, t, NOW, { maxDecodedBytes: SPLIT_AT });
    expect(second?.skipped).toBeUndefined();
    expect(second).toMatchObject({ hour: H2, rowsOut: 2501, duplicates: 1 });
    expect(second?.objects.some((k) => first?.objects.includes(k))).toBe(false);
    expect(await keysUnder(hourPrefix("events", t, H2))).toEqual([...(second?.objects ?? [])].sort());
    const parts = await Promise.all((second?.objects ?? []).map(readEvents));
    expect(expected(parts.flat())).toEqual(expected([...(written.get(H2) as StoredEvent[]), ...late, ...dup]));
  });

  it("neither overwrites a compacted object written meanwhile nor deletes anything then", async () => {
    const t = "compact-race";
    await seed(t);
    const key = compactedKey("events", t, H1);
    const inputs = await keysUnder(hourPrefix("events", t, H1));
    // Another run writes the compacted object while this one reads its inputs.
    let raced = false;
    const racing = new Proxy(bucket, {
      get(target, prop) {
        if (prop === "get") {
          return async (k: string) => {
            if (!raced) {
              raced = true;
              await target.put(key, "written by another run");
            }
            return target.get(k);
          };
        }
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const summary = await compactHour(racing, t, H1);
    expect(summary.skipped).toMatch(/changed while compacting/);
    expect(await (await bucket.get(key))?.text()).toBe("written by another run");
    expect(await keysUnder(hourPrefix("events", t, H1))).toEqual([...inputs, key].sort());
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

    const first = await compactAll(bucket, now, { budgetMs: 0 });
    expect(first.summaries.map((s) => [s.tenant, s.hour, s.skipped])).toEqual([["compact-all-a", day, undefined]]);
    // Listing stops once an hour is found, so the next tenant is left unlisted.
    expect(first.remaining).toEqual([{ tenant: "compact-all-a", hour: day + HOUR }]);
    expect(first.unlistedTenants).toContain("compact-all-b");

    const second = await compactAll(bucket, now);
    expect(second.remaining).toEqual([]);
    expect(second.unlistedTenants).toEqual([]);
    // One hour per tenant per round.
    expect(second.summaries.map((s) => [s.tenant, s.hour, s.rowsOut])).toEqual([
      ["compact-all-a", day + HOUR, 2],
      ["compact-all-b", day, 2],
      ["compact-all-b", day + HOUR, 2],
    ]);
    for (const t of ["compact-all-a", "compact-all-b"]) {
      expect(await keysUnder(`events/tenant=${t}/`)).toEqual([
        compactedKey("events", t, day),
        compactedKey("events", t, day + HOUR),
      ]);
    }
  });
});
