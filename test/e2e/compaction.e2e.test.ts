// Compaction end to end: small Parquet files of two closed hours (duplicates across files, rows
// out of ts order, one hour left half-done by a crash between write and delete) plus a live
// hour, compacted through POST /compact on the bundled Worker, then read back with DuckDB.
import "../helpers/parquet-node";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventBatch } from "../../src/columns/batch";
import { encodeParquet } from "../../src/columns/parquet";
import type { StoredEvent } from "../../src/protocol/events";
import { objectKey } from "../../src/sinks/r2-parquet";
import { duplicates, lakeRows } from "../helpers/lake";
// @ts-expect-error plain .mjs helper without types
import { buildWorker, startWorker } from "../helpers/miniflare.mjs";

const HOUR = 3_600_000;
const TENANT = "default";

/** Rows of one flush file: ids overlap the neighbouring file's (a retried batch), ts shuffled. */
function fileRows(hour: number, replica: number, file: number): StoredEvent[] {
  return Array.from({ length: 50 }, (_, k) => {
    const n = file * 40 + k; // 10 ids shared with the next file
    return {
      id: `h${hour}-r${replica}-e${n}`,
      tenant: TENANT,
      ts: hour + ((n * 7919) % 3_000_000),
      receivedAt: hour + 60_000 + n * 1000,
      source: n % 2 ? "web" : "api",
      type: n % 3 ? "pageview" : "error",
      importance: n % 5 ? "normal" : "high",
      userId: n % 4 ? `u${n % 9}` : null,
      anonymousId: `a${n}`,
      sessionId: null,
      data: JSON.stringify({ n, note: "ü" }),
      replica: `${TENANT}-${replica}`,
      seq: file * 1000 + k,
    };
  });
}

describe("compaction end to end", () => {
  let mf: Miniflare;
  let url: string;
  const now = Date.now();
  const hours = [now - 3 * HOUR, now - 2 * HOUR].map((t) => t - (t % HOUR));
  const inputIds = new Map<number, Set<string>>();

  beforeAll(async () => {
    ({ mf, url } = await startWorker(buildWorker()));
    const bucket = await mf.getR2Bucket("EVENTS");
    for (const hour of hours) {
      const ids = new Set<string>();
      const all: StoredEvent[] = [];
      for (let replica = 0; replica < 2; replica++) {
        for (let file = 0; file < 3; file++) {
          const rows = fileRows(hour, replica, file);
          for (const r of rows) ids.add(r.id);
          all.push(...rows);
          await bucket.put(
            objectKey("events", TENANT, hour, `${TENANT}-${replica}`, file),
            encodeParquet(EventBatch.from(rows)),
          );
        }
      }
      inputIds.set(hour, ids);
      if (hour === hours[0]) {
        // A run that died after writing its output and before deleting the inputs: the compacted
        // object holds one replica's rows; every input is still there.
        const partial = all.filter((r) => r.replica === `${TENANT}-0`);
        const key = `events/tenant=${TENANT}/dt=${new Date(hour).toISOString().slice(0, 10)}/hour=${new Date(hour).toISOString().slice(11, 13)}/compacted-${hour}.parquet`;
        const unique = [...new Map(partial.map((r) => [r.id, r])).values()];
        await bucket.put(key, encodeParquet(EventBatch.from(unique)));
      }
    }
    // The current hour, through the Worker: open, so compaction must leave it alone.
    await fetch(`${url}/e`, { method: "POST", body: JSON.stringify([{ id: "live-1", type: "x" }]) });
    await fetch(`${url}/flush`, { method: "POST" });
  });

  afterAll(async () => {
    await mf?.dispose();
  });

  it("leaves one sorted, deduplicated file per closed hour with every event once, and hourly rollups", async () => {
    const res = await fetch(`${url}/compact`, { method: "POST" });
    expect(res.status).toBe(200);
    const { hours: summaries } = (await res.json()) as { hours: { hour: number; rowsOut: number; skipped?: string }[] };
    expect(summaries.map((s) => [s.hour, s.skipped ?? null])).toEqual(hours.map((h) => [h, null]));

    const { rows, keys } = await lakeRows(mf);
    for (const hour of hours) {
      const iso = new Date(hour).toISOString();
      const files = keys.filter((k) => k.includes(`dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/`));
      expect(files).toEqual([
        `events/tenant=${TENANT}/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/compacted-${hour}.parquet`,
      ]);
      const mine = rows.filter((r) => files[0]?.endsWith(r.filename.split("/").pop() as string));
      expect(duplicates(mine.map((r) => r.id))).toEqual([]);
      expect(new Set(mine.map((r) => r.id))).toEqual(inputIds.get(hour));
      const ts = mine.map((r) => r.ts);
      expect(ts).toEqual([...ts].sort((a, b) => a - b));
    }
    expect(rows.filter((r) => r.id === "live-1")).toHaveLength(1);

    // A second run finds nothing to do.
    const again = (await (await fetch(`${url}/compact`, { method: "POST" })).json()) as { hours: unknown[] };
    expect(again.hours).toEqual([]);

    const bucket = await mf.getR2Bucket("EVENTS");
    const listed = await bucket.list({ prefix: `rollups/tenant=${TENANT}/` });
    expect(listed.objects).toHaveLength(2);
    const rollup = (await (await bucket.get(listed.objects[0]?.key as string))?.json()) as {
      rows: number;
      counts: { count: number }[];
    };
    expect(rollup.rows).toBe(inputIds.get(hours[0] as number)?.size);
    expect(rollup.counts.reduce((a, c) => a + c.count, 0)).toBe(rollup.rows);
  });
});
