import "../../src/columns/wasm";
import { describe, expect, it } from "vitest";
import type { RetentionAnswer, RetentionReport } from "../../src/protocol/lake";
import { catalogOf, tenant } from "./harness";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A flush object of the tenant, `hoursAgo` hours before the current hour, committed as a flush commits it. */
async function commitHour(name: string, hoursAgo: number, n: number) {
  const now = Date.now();
  const hour = now - (now % HOUR) - hoursAgo * HOUR;
  const iso = new Date(hour).toISOString();
  const key = `events/tenant=${name}/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/${name}-0-${n}.parquet`;
  const result = await catalogOf(name).commit({
    change: "insert",
    flush: { replica: `${name}-0`, seq: n },
    add: [{ key, hour, rows: 5, bytes: 500, footerBytes: 50, columns: [] }],
  });
  expect(result.ok).toBe(true);
  return key;
}

describe("retention", () => {
  it("answers RETENTION_DAYS (unset: kept) until the tenant sets its own with PUT /lake/retention, and null restores the default", async () => {
    const t = tenant("retention-setting");
    const read = async () => (await (await t.fetch("/lake/retention")).json()) as RetentionAnswer;
    expect(await read()).toEqual({ days: null, source: "default", rollupDays: 730 });
    const put = (days: unknown) => t.fetch("/lake/retention", { method: "PUT", body: JSON.stringify({ days }) });
    expect(await (await put(7)).json()).toEqual({ days: 7, source: "tenant", rollupDays: 730 });
    expect(await read()).toMatchObject({ days: 7, source: "tenant" });
    expect((await put(0)).status).toBe(400);
    expect((await put("7")).status).toBe(400);
    expect(await (await put(null)).json()).toMatchObject({ days: null, source: "default" });
  });

  it("is admin only", async () => {
    const t = tenant("retention-scope", "read");
    expect((await t.fetch("/lake/retention")).status).toBe(403);
  });

  it("removes the hours past the tenant's retention in one snapshot and leaves the window alone", async () => {
    const t = tenant("retention-pass");
    const old = await commitHour(t.name, 3 * 24, 0);
    const older = await commitHour(t.name, 4 * 24, 1);
    const inside = await commitHour(t.name, 2 * 24 - 1, 2);
    const recent = await commitHour(t.name, 1, 3);
    await t.fetch("/lake/retention", { method: "PUT", body: JSON.stringify({ days: 2 }) });
    const report = (await (await t.fetch("/lake/retention", { method: "POST" })).json()) as RetentionReport;
    expect(report).toMatchObject({ files: 2, rows: 10 });
    expect((report.before as number) <= Date.now() - 2 * DAY).toBe(true);
    const read = await catalogOf(t.name).read({});
    expect("files" in read && read.files.map((f) => f.key).sort()).toEqual([inside, recent].sort());
    const { snapshots } = (await (await t.fetch("/snapshots?limit=1")).json()) as {
      snapshots: { id: number; changes: string[]; filesRemoved: number }[];
    };
    expect(snapshots[0]).toMatchObject({ id: report.snapshot, changes: ["deleted_from_table:1"], filesRemoved: 2 });
    // The files stay readable at the snapshot before, until it expires.
    const before = await catalogOf(t.name).read({ snapshot: (report.snapshot as number) - 1 });
    expect("files" in before && before.files.map((f) => f.key)).toEqual(expect.arrayContaining([old, older]));
  });
});
