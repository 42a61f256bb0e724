import "../../src/columns/wasm";
import { describe, expect, it } from "vitest";
import { EventBatch } from "../../src/columns/batch";
import { encodeParquet } from "../../src/columns/parquet";
import { describeFile } from "../../src/columns/stats";
import { compactHour } from "../../src/lake/compaction";
import { rollupClosedPeriods, rollupCompactedHours } from "../../src/lake/rollup-run";
import type { StoredEvent } from "../../src/protocol/events";
import type { RetentionReport, RollupAnswer } from "../../src/protocol/lake";
import { objectKey } from "../../src/sinks/r2-parquet";
import { bucket, catalogOf, tenant } from "./harness";

const HOUR = 3_600_000;
const H9 = Date.UTC(2025, 4, 17, 9);
const H10 = H9 + HOUR;
const DAY = Date.UTC(2025, 4, 17);
const MONTH = Date.UTC(2025, 4, 1);

/** `n` page views of /home in `hour` by users u0..u<users-1> in turn, plus `n` clicks. */
function visits(t: string, hour: number, n: number, users: number, seq: number): StoredEvent[] {
  const base = (i: number, type: string): StoredEvent => ({
    id: `${type}-${hour}-${i}`,
    tenant: t,
    ts: hour + i,
    receivedAt: hour + i,
    source: "web",
    type,
    importance: "normal",
    userId: `u${i % users}`,
    anonymousId: null,
    sessionId: null,
    data: JSON.stringify({ path: "/home" }),
    replica: `${t}-0`,
    seq: seq + i,
  });
  return Array.from({ length: n }, (_, i) => [base(i, "pageview"), base(i, "click")]).flat();
}

/** Writes and commits a flush object, compacts its hour (which writes the hour's rollup). */
async function compacted(t: string, hour: number, events: StoredEvent[]): Promise<void> {
  const key = objectKey("events", t, hour, `${t}-0`, hour);
  const batch = EventBatch.from(events);
  const body = encodeParquet(batch);
  await bucket().put(key, body);
  const committed = await catalogOf(t).commit({
    change: "insert",
    add: [describeFile(key, hour, body, batch.table())],
  });
  expect(committed.ok).toBe(true);
  expect((await compactHour(bucket(), catalogOf(t), hour)).skipped).toBeUndefined();
}

async function rollups(t: ReturnType<typeof tenant>, query: string): Promise<RollupAnswer> {
  const res = await t.fetch(`/rollups?${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as RollupAnswer;
}

describe("rollups", () => {
  it("writes each compacted hour's rollup under rollups/ in its own table, and GET /rollups answers it by hour", async () => {
    const t = tenant("rollups-hour");
    await compacted(t.name, H9, visits(t.name, H9, 200, 50, 0));
    const read = await catalogOf(t.name).read({ rollup: "hour" });
    expect("files" in read && read.files.map((f) => f.key)).toEqual([
      expect.stringMatching(
        new RegExp(`^rollups/tenant=${t.name}/grain=hour/dt=2025-05-17/hour=09/rollup-.*\\.parquet$`),
      ),
    ]);
    const answer = await rollups(t, `grain=hour&from=${H9}&to=${H10}`);
    expect(answer.rows).toEqual([
      {
        grain: "hour",
        period: "2025-05-17T09:00:00.000Z",
        source: "web",
        type: "click",
        importance: "normal",
        path: null,
        events: 200,
        uniques: 50,
      },
      {
        grain: "hour",
        period: "2025-05-17T09:00:00.000Z",
        source: "web",
        type: "pageview",
        importance: "normal",
        path: null,
        events: 200,
        uniques: 50,
      },
      {
        grain: "hour",
        period: "2025-05-17T09:00:00.000Z",
        source: null,
        type: null,
        importance: null,
        path: "/home",
        events: 200,
        uniques: 50,
      },
    ]);
  });

  it("rolls closed days and months up from the finer table, merging sketches: the same users two hours running count once", async () => {
    const t = tenant("rollups-day");
    await compacted(t.name, H9, visits(t.name, H9, 300, 120, 0));
    await compacted(t.name, H10, visits(t.name, H10, 300, 120, 1000));
    expect(await rollupClosedPeriods(bucket(), catalogOf(t.name), Date.now())).toBe(2); // the day, the month
    expect(await rollupClosedPeriods(bucket(), catalogOf(t.name), Date.now())).toBe(0); // nothing new
    const day = await rollups(t, `grain=day&from=2025-05-17&to=2025-05-18`);
    const home = day.rows.find((r) => r.path === "/home");
    expect(home).toMatchObject({ grain: "day", period: new Date(DAY).toISOString(), events: 600 });
    expect(Math.abs((home?.uniques as number) - 120)).toBeLessThanOrEqual(3);
    const month = await rollups(t, `grain=month&from=2025-05-01&to=2025-06-01`);
    expect(month.rows.find((r) => r.type === "click")).toMatchObject({
      period: new Date(MONTH).toISOString(),
      events: 600,
    });

    // A late hour of the day, compacted after it was rolled up: the day and month are rolled up again.
    await compacted(t.name, H10 + HOUR, visits(t.name, H10 + HOUR, 10, 10, 2000));
    expect(await rollupClosedPeriods(bucket(), catalogOf(t.name), Date.now())).toBe(2);
    const again = await rollups(t, `grain=day&from=2025-05-17&to=2025-05-18`);
    expect(again.rows.find((r) => r.path === "/home")?.events).toBe(610);
  });

  it("rolls up a compacted hour whose rollup is missing", async () => {
    const t = tenant("rollups-catch-up");
    await compacted(t.name, H9, visits(t.name, H9, 20, 5, 0));
    const read = await catalogOf(t.name).read({ rollup: "hour" });
    const key = "files" in read ? (read.files[0]?.key as string) : "";
    await catalogOf(t.name).commit({ change: "delete", rollup: "hour", remove: [key] });
    expect((await rollups(t, `grain=hour&from=${H9}&to=${H10}`)).rows).toEqual([]);
    expect(await rollupCompactedHours(bucket(), catalogOf(t.name))).toBe(1);
    expect(await rollupCompactedHours(bucket(), catalogOf(t.name))).toBe(0);
    expect((await rollups(t, `grain=hour&from=${H9}&to=${H10}`)).rows).toHaveLength(3);
  });

  it("answers 400 with the reason for a missing or unknown grain and a bad range, and needs a read key", async () => {
    const t = tenant("rollups-params");
    const error = async (query: string) => {
      const res = await t.fetch(`/rollups?${query}`);
      expect(res.status).toBe(400);
      return ((await res.json()) as { error: { message: string } }).error.message;
    };
    expect(await error("")).toMatch(/grain must be one of hour, day, month/);
    expect(await error("grain=week")).toMatch(/grain must be one of/);
    expect(await error("grain=day&from=yesterday")).toMatch(/from must be epoch ms or ISO-8601/);
    expect(await error("grain=day&from=2025-06-01&to=2025-05-01")).toMatch(/from must be before to/);
    expect(await error("grain=hour&from=2025-01-01&to=2025-03-01")).toMatch(/at most 31 days apart for grain=hour/);
    expect((await t.fetch("/rollups?grain=day", {}, `key-${t.name}-write`)).status).toBe(403);
    expect((await t.fetch("/rollups?grain=day", {}, `key-${t.name}-read`)).status).toBe(200);
    expect((await t.fetch("/rollups?grain=day", { method: "POST" })).status).toBe(405);
  });

  it("keeps rollups for ROLLUP_RETENTION_DAYS: the retention pass removes the periods that ended before it", async () => {
    const t = tenant("rollups-retention");
    const old = Date.UTC(2023, 0, 10, 9);
    await compacted(t.name, old, visits(t.name, old, 5, 5, 0));
    await compacted(t.name, H9, visits(t.name, H9, 5, 5, 100));
    await rollupClosedPeriods(bucket(), catalogOf(t.name), Date.now());
    const report = (await (await t.fetch("/lake/retention", { method: "POST" })).json()) as RetentionReport;
    // 730 days (wrangler.toml): the hour, day and month of January 2023 go; the events have no retention.
    expect(report).toMatchObject({ files: 0, rollupFiles: 3 });
    const months = await rollups(t, `grain=month&from=2022-12-01&to=2025-06-01`);
    expect([...new Set(months.rows.map((r) => r.period))]).toEqual([new Date(MONTH).toISOString()]);
    expect((await catalogOf(t.name).read({})) as { files: unknown[] }).toMatchObject({ files: [{}, {}] });
  });
});
