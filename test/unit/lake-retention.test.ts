import { describe, expect, it } from "vitest";
import type { DataFileInfo } from "../../src/columns/stats";
import { rollupKey } from "../../src/lake/keys";
import { memoryCatalog } from "../helpers/node-catalog";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 5, 30, 12, 30);

function file(name: string, hour: number, rows = 10): DataFileInfo {
  const iso = new Date(hour).toISOString();
  return {
    key: `events/tenant=acme/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/${name}.parquet`,
    hour,
    rows,
    bytes: rows * 100,
    footerBytes: 100,
    columns: [],
  };
}

/** A catalog with one file in each hour from `first` to `last` (hour starts), committed long ago. */
function lakeOf(hours: number[]) {
  const { catalog } = memoryCatalog("acme", NOW - 400 * DAY);
  catalog.commit([{ change: "insert", add: hours.map((h) => file(`f-${h}`, h)) }], NOW - 399 * DAY);
  return catalog;
}

describe("retention", () => {
  it("removes every hour that ended at or before the cutoff in one snapshot, and never an hour that ends after it", () => {
    const cutoff = NOW - 30 * DAY; // 30 days: 2026-05-31 12:30
    const boundary = cutoff - (cutoff % HOUR); // 12:00–13:00 ends after the cutoff: kept
    const hours = [boundary - 3 * HOUR, boundary - 2 * HOUR, boundary - HOUR, boundary, boundary + HOUR];
    const catalog = lakeOf(hours);
    const before = catalog.latest();

    const report = catalog.retain(cutoff, NOW);

    expect(report).toMatchObject({ before: cutoff, files: 3, rows: 30, snapshot: before + 1 });
    expect(catalog.latest()).toBe(before + 1);
    expect(catalog.files(catalog.latest()).map((f) => f.hour)).toEqual([boundary, boundary + HOUR]);
    // The hour ending exactly at the cutoff goes; the one ending a millisecond after it stays.
    const exact = catalog.retain(boundary + HOUR, NOW);
    expect(exact.files).toBe(1);
    expect(catalog.files(catalog.latest()).map((f) => f.hour)).toEqual([boundary + HOUR]);
    expect(catalog.retain(boundary + 2 * HOUR - 1, NOW)).toMatchObject({ files: 0, snapshot: null });
    expect(catalog.snapshots(1).snapshots[0]).toMatchObject({
      changes: ["deleted_from_table:1"],
      filesRemoved: 1,
      rowsRemoved: 10,
    });
  });

  it("keeps the removed files readable at the older snapshots, and schedules their objects only once those expire", () => {
    const old = NOW - 40 * DAY;
    const hour = old - (old % HOUR);
    const catalog = lakeOf([hour, NOW - (NOW % HOUR) - HOUR]);
    const before = catalog.latest();
    const report = catalog.retain(NOW - 30 * DAY, NOW);
    expect(report.files).toBe(1);
    expect(catalog.files(before).map((f) => f.hour)).toContain(hour);
    // Within SNAPSHOT_RETENTION_HOURS of the retention snapshot nothing is due for deletion...
    catalog.expire(NOW - 24 * HOUR, NOW);
    // ...the flush snapshot is 399 days old, so it expires now, and with it the only snapshot listing the file.
    expect(catalog.scheduled(NOW)).toEqual([file(`f-${hour}`, hour).key]);
    expect(() => catalog.resolve({ snapshot: before })).toThrow(/no snapshot/);
  });

  it("does nothing to the table when no hour is past the cutoff", () => {
    const catalog = lakeOf([NOW - (NOW % HOUR) - 2 * HOUR]);
    const before = catalog.latest();
    expect(catalog.retain(NOW - DAY, NOW)).toMatchObject({ files: 0, snapshot: null, rows: 0 });
    expect(catalog.latest()).toBe(before);
  });

  it("keeps a tenant's own retention beside the default, and forgets it on null", () => {
    const catalog = lakeOf([]);
    expect(catalog.retentionDays()).toBeNull();
    catalog.setRetentionDays(7);
    expect(catalog.retentionDays()).toBe(7);
    catalog.setRetentionDays(null);
    expect(catalog.retentionDays()).toBeNull();
  });
  it("removes rollup periods that ended before their own cutoff, a snapshot per table, and leaves the events and later periods alone", () => {
    const catalog = lakeOf([NOW - 40 * DAY]);
    const rollup = (grain: "hour" | "day" | "month", period: number): DataFileInfo => ({
      ...file("x", period, 3),
      key: rollupKey("acme", grain, period),
    });
    const oldHour = Date.UTC(2025, 4, 17, 9);
    const commits = [
      {
        change: "insert" as const,
        rollup: "hour" as const,
        add: [rollup("hour", oldHour), rollup("hour", Date.UTC(2026, 5, 28, 12))],
      },
      { change: "insert" as const, rollup: "day" as const, add: [rollup("day", Date.UTC(2025, 4, 17))] },
      {
        change: "insert" as const,
        rollup: "month" as const,
        add: [rollup("month", Date.UTC(2025, 4, 1)), rollup("month", Date.UTC(2026, 5, 1))],
      },
    ];
    for (const c of commits) expect(catalog.commit([c], NOW - DAY)[0]?.ok).toBe(true);
    // The first rollup commit made the rollup tables, in a snapshot of their own, before its own.
    expect(catalog.snapshots(5).snapshots.map((s) => s.changes[0])).toEqual([
      "inserted_into_table:11",
      "inserted_into_table:8",
      "inserted_into_table:5",
      'created_schema:"rollups"',
      "inserted_into_table:1",
    ]);
    const before = catalog.latest();

    // Events kept (no retention), rollups of periods that ended more than 365 days ago removed.
    const report = catalog.retain(null, NOW, NOW - 365 * DAY);

    expect(report).toMatchObject({ before: null, files: 0, rollupFiles: 3, snapshot: before + 3 });
    expect(catalog.files(catalog.latest(), undefined, undefined, "hour").map((f) => f.hour)).toEqual([
      Date.UTC(2026, 5, 28, 12),
    ]);
    expect(catalog.files(catalog.latest(), undefined, undefined, "day")).toEqual([]);
    expect(catalog.files(catalog.latest(), undefined, undefined, "month").map((f) => f.hour)).toEqual([
      Date.UTC(2026, 5, 1),
    ]);
    expect(catalog.files(catalog.latest())).toHaveLength(1);
    expect(catalog.snapshots(3).snapshots.map((s) => s.changes)).toEqual([
      ["deleted_from_table:11"],
      ["deleted_from_table:8"],
      ["deleted_from_table:5"],
    ]);
  });
});
