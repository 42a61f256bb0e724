import "../helpers/parquet-node";
import { describe, expect, it } from "vitest";
import { EventBatch } from "../../src/columns/batch";
import { encodeTable, readTable } from "../../src/columns/parquet";
import { periodStart } from "../../src/lake/catalog/rollup-tables";
import { mergeRollups, readRollups, rollupEvents, rollupTable } from "../../src/lake/rollups";
import type { StoredEvent } from "../../src/protocol/events";
import { sampleEvents } from "../helpers/events";

const HOUR = 3_600_000;
const H1 = Date.UTC(2026, 4, 17, 9);
const DAY = periodStart("day", H1);

/** `n` page views of `/home` in `hour`, by users user-0..users-1 in turn. */
function visits(hour: number, n: number, users: number, prefix: string): StoredEvent[] {
  return sampleEvents(n).map((e, i) => ({
    ...e,
    id: `${prefix}${i}`,
    receivedAt: hour + i,
    source: "web",
    type: "pageview",
    importance: "normal",
    userId: `user-${i % users}`,
    data: JSON.stringify({ path: "/home?utm=x" }),
  }));
}

function hourRows(events: StoredEvent[], hour: number) {
  return rollupEvents(EventBatch.from(events).table(), hour);
}

describe("rollups", () => {
  it("counts an hour's events per source, type and importance, and page views per path", () => {
    const events = sampleEvents(100).map((e) => ({ ...e, receivedAt: H1 }));
    const rows = hourRows(events, H1);
    const groups = rows.filter((r) => r.path === null);
    expect(groups.reduce((n, r) => n + r.events, 0)).toBe(100);
    const webErrors = events.filter((e) => e.source === "web-app" && e.type === "error" && e.importance === "low");
    expect(groups.find((r) => r.source === "web-app" && r.type === "error" && r.importance === "low")?.events).toBe(
      webErrors.length,
    );
    const pages = rows.filter((r) => r.path !== null);
    expect(pages.reduce((n, r) => n + r.events, 0)).toBe(events.filter((e) => e.type === "pageview").length);
    expect(pages.every((r) => r.source === null && r.type === null && r.importance === null)).toBe(true);
    expect(rows.every((r) => r.period === H1)).toBe(true);
  });

  it("merges sketches for a day: two hours with the same users give the users, not twice them", () => {
    const first = hourRows(visits(H1, 2000, 500, "a"), H1);
    const second = hourRows(visits(H1 + HOUR, 2000, 500, "b"), H1 + HOUR);
    const day = mergeRollups([...first, ...second], DAY);
    const home = day.find((r) => r.path === "/home");
    expect(home?.events).toBe(4000);
    expect(Math.abs((home?.sketch.count() as number) - 500)).toBeLessThan(25);
    const summed =
      (first.find((r) => r.path === "/home")?.sketch.count() ?? 0) +
      (second.find((r) => r.path === "/home")?.sketch.count() ?? 0);
    expect(summed).toBeGreaterThan(950);
    const group = day.find((r) => r.source === "web");
    expect(group).toMatchObject({ period: DAY, type: "pageview", importance: "normal", events: 4000 });
    expect(Math.round(group?.sketch.count() as number)).toBe(Math.round(home?.sketch.count() as number));
  });

  it("counts distinct users across hours once the users differ", () => {
    const first = hourRows(visits(H1, 1000, 300, "a"), H1);
    const second = hourRows(
      visits(H1 + HOUR, 1000, 300, "b").map((e) => ({ ...e, userId: `other-${e.userId}` })),
      H1 + HOUR,
    );
    const home = mergeRollups([...first, ...second], DAY).find((r) => r.path === "/home");
    expect(Math.abs((home?.sketch.count() as number) - 600)).toBeLessThan(30);
  });

  it("leaves the merged hours' sketches as they were", () => {
    const first = hourRows(visits(H1, 100, 50, "a"), H1);
    const before = first.map((r) => JSON.stringify(r.sketch.toJSON()));
    mergeRollups([...first, ...hourRows(visits(H1 + HOUR, 100, 80, "b"), H1 + HOUR)], DAY);
    expect(first.map((r) => JSON.stringify(r.sketch.toJSON()))).toEqual(before);
  });

  it("writes rows as Parquet and reads them back, sketches included", () => {
    const rows = hourRows(
      sampleEvents(300).map((e) => ({ ...e, receivedAt: H1 })),
      H1,
    );
    const back = readRollups(readTable(encodeTable(rollupTable(rows))));
    expect(back.map((r) => ({ ...r, sketch: r.sketch.toJSON() }))).toEqual(
      rows.map((r) => ({ ...r, sketch: r.sketch.toJSON() })),
    );
  });
});
