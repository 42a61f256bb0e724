// Compaction end to end: small Parquet files of two closed hours (duplicates across files, rows
// out of ts order, one hour holding the output of an earlier run that died before its commit),
// committed to the tenant's catalog, plus a live hour, compacted through POST /compact on the
// bundled Worker, then read back with DuckDB: exactly the files the catalog lists.
import "../helpers/parquet-node";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventBatch } from "../../src/columns/batch";
import { encodeParquet } from "../../src/columns/parquet";
import { describeFile } from "../../src/columns/stats";
import type { CommitRequest, CommitResult } from "../../src/lake/catalog/catalog";
import type { StoredEvent } from "../../src/protocol/events";
import type { CatalogExport } from "../../src/protocol/lake";
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

  let orphan = "";

  beforeAll(async () => {
    ({ mf, url } = await startWorker(buildWorker()));
    const bucket = await mf.getR2Bucket("EVENTS");
    // The tenant's catalog, through Miniflare's RPC proxy: each file is committed as a flush commits it.
    const catalogs = await mf.getDurableObjectNamespace("CATALOG");
    const catalog = catalogs.get(catalogs.idFromName(TENANT)) as unknown as {
      commit(tenant: string, req: CommitRequest): Promise<CommitResult>;
    };
    for (const hour of hours) {
      const ids = new Set<string>();
      const all: StoredEvent[] = [];
      for (let replica = 0; replica < 2; replica++) {
        for (let file = 0; file < 3; file++) {
          const rows = fileRows(hour, replica, file);
          for (const r of rows) ids.add(r.id);
          all.push(...rows);
          const key = objectKey("events", TENANT, hour, `${TENANT}-${replica}`, file);
          const batch = EventBatch.from(rows);
          const body = encodeParquet(batch);
          await bucket.put(key, body);
          const committed = await catalog.commit(TENANT, {
            change: "insert",
            add: [describeFile(key, hour, body, batch.table())],
          });
          expect(committed.ok).toBe(true);
        }
      }
      inputIds.set(hour, ids);
      if (hour === hours[0]) {
        // A run that died after writing its output and before committing it: the object holds
        // one replica's rows, and no snapshot lists it.
        const partial = all.filter((r) => r.replica === `${TENANT}-0`);
        orphan = `events/tenant=${TENANT}/dt=${new Date(hour).toISOString().slice(0, 10)}/hour=${new Date(hour).toISOString().slice(11, 13)}/compacted-${hour}-dead-0of1.parquet`;
        const unique = [...new Map(partial.map((r) => [r.id, r])).values()];
        await bucket.put(orphan, encodeParquet(EventBatch.from(unique)));
      }
    }
    // The current hour, through the Worker: open, so compaction must leave it alone.
    await fetch(`${url}/e`, { method: "POST", body: JSON.stringify([{ id: "live-1", type: "x" }]) });
    await fetch(`${url}/flush`, { method: "POST" });
  });

  afterAll(async () => {
    await mf?.dispose();
  });

  it("leaves one sorted, deduplicated file per closed hour in the catalog, with every event once, and hourly rollups", async () => {
    const res = await fetch(`${url}/compact`, { method: "POST" });
    expect(res.status).toBe(200);
    const { hours: summaries } = (await res.json()) as { hours: { hour: number; rowsOut: number; skipped?: string }[] };
    expect(summaries.map((s) => [s.hour, s.skipped ?? null])).toEqual(hours.map((h) => [h, null]));

    // What a reader sees: the files the catalog lists at its latest snapshot.
    const exported = (await (await fetch(`${url}/lake/catalog`)).json()) as CatalogExport;
    const files = exported.tables.ducklake_data_file as CatalogExport["tables"][string];
    const end = files.columns.indexOf("end_snapshot");
    const path = files.columns.indexOf("path");
    const table = files.columns.indexOf("table_id");
    const listed = files.rows
      .filter((r) => r[end] === null && r[table] === 1)
      .map((r) => `events/tenant=${TENANT}/${r[path]}`);
    const { rows: all, keys } = await lakeRows(mf);
    expect(keys).toContain(orphan);
    expect(listed).not.toContain(orphan);
    const rows = all.filter((r) => listed.includes(r.filename));
    for (const hour of hours) {
      const iso = new Date(hour).toISOString();
      const inHour = listed.filter((k) => k.includes(`dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/`));
      expect(inHour).toHaveLength(1);
      expect(inHour[0]).toMatch(new RegExp(`/compacted-${hour}-[0-9a-z]+-0of1\\.parquet$`));
      const mine = rows.filter((r) => r.filename === inHour[0]);
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
    const rollups = await bucket.list({ prefix: `rollups/tenant=${TENANT}/grain=hour/` });
    expect(rollups.objects).toHaveLength(2);
    const first = hours[0] as number;
    const answer = (await (
      await fetch(`${url}/rollups?grain=hour&from=${first}&to=${(hours.at(-1) as number) + HOUR}`)
    ).json()) as { rows: { period: string; path: string | null; events: number }[] };
    for (const hour of hours) {
      const groups = answer.rows.filter((r) => r.period === new Date(hour).toISOString() && r.path === null);
      expect(groups.reduce((n, r) => n + r.events, 0)).toBe(inputIds.get(hour)?.size);
    }
  });
});
