// One person's data end to end: events of a user in flushed files and still in a replica's
// buffer, erased through DELETE /users/<id> on the bundled Worker; once the snapshots before the
// erasure expire (SNAPSHOT_RETENTION_HOURS = 0 here) and the cleanup ran, every object in the
// bucket is read: DuckDB finds none of their rows in any Parquet file, and no other object
// holds their id.
import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { ErasureRecord } from "../../src/protocol/lake";
import { query } from "../helpers/duckdb";
import { downloadBucket } from "../helpers/lake";
import { useWorker } from "../helpers/worker";

const USER = "user-to-forget-7f3a";
const ANON = "anon-to-forget-91c2";

function events(prefix: string, n: number) {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    type: i % 2 ? "pageview" : "click",
    source: "web",
    // Every third event is the user's, every fifth only their anonymous id; the rest are others'.
    ...(i % 3 === 0 ? { userId: USER, anonymousId: `anon-${i}` } : { userId: `other-${i}` }),
    ...(i % 5 === 1 && { userId: undefined, anonymousId: ANON }),
    data: { path: `/p/${i % 4}`, note: i % 3 === 0 ? `secret of ${USER}` : "public" },
  }));
}

describe("DELETE /users/<id>", () => {
  const worker = useWorker({ SNAPSHOT_RETENTION_HOURS: "0" });

  async function post(path: string, body: unknown, method = "POST") {
    const res = await fetch(`${worker.url}${path}`, { method, body: JSON.stringify(body) });
    expect(res.status, await res.clone().text()).toBe(200);
    return res.json();
  }

  it("removes their events from every file and buffer, records the request, and after expiry no object in the bucket holds them", async () => {
    // Two flushed files (durable: in the lake when acked), and a batch left in the buffer.
    await post("/e", { events: events("a", 30), storageMode: "durable" });
    await post("/e", { events: events("b", 30), storageMode: "durable" });
    await post("/e", { events: events("c", 30) });
    const theirs = (prefix: string) =>
      events(prefix, 30).filter((e) => e.userId === USER || e.anonymousId === ANON).length;

    const res = await fetch(`${worker.url}/users/${USER}?by=userId`, { method: "DELETE" });
    expect(res.status, await res.clone().text()).toBe(200);
    const byUser = (await res.json()) as ErasureRecord;
    const userRows = events("x", 30).filter((e) => e.userId === USER).length;
    expect(byUser).toMatchObject({
      matchedBy: "userId",
      bufferedRows: userRows,
      lakeRows: 3 * userRows,
      filesRewritten: 3,
    });
    const byAnon = (await (
      await fetch(`${worker.url}/users/${ANON}?by=anonymousId`, { method: "DELETE" })
    ).json()) as ErasureRecord;
    expect(byAnon).toMatchObject({ bufferedRows: 0, lakeRows: 3 * 6, filesRewritten: 3 });

    // Everyone else's events are all there, theirs are not.
    const read = (await (await fetch(`${worker.url}/events?limit=1000`)).json()) as {
      events: { id: string; userId?: string; anonymousId?: string }[];
    };
    expect(read.events).toHaveLength(90 - theirs("a") - theirs("b") - theirs("c"));
    expect(read.events.some((e) => e.userId === USER || e.anonymousId === ANON)).toBe(false);

    const recorded = (await (await fetch(`${worker.url}/users/erasures`)).json()) as { erasures: ErasureRecord[] };
    expect(recorded.erasures.map((e) => e.id)).toEqual([byAnon.id, byUser.id]);
    expect(JSON.stringify(recorded)).not.toContain(USER);
    expect(recorded.erasures[1]?.subjectSha256).toMatch(/^[0-9a-f]{64}$/);

    // Their rows are still in the objects older snapshots list, until those expire and the cleanup runs.
    expect((await scanBucket()).theirs).toBeGreaterThan(0);
    const cleanup = (await post("/lake/cleanup", {})) as { deleted: string[] };
    expect(cleanup.deleted.length).toBe(6); // the three flushed files, then their first rewrites
    expect(await scanBucket()).toEqual({ rows: 90 - theirs("a") - theirs("b") - theirs("c"), theirs: 0 });
  });

  /** Every Parquet object's rows (DuckDB), and theirs among them; every other object must not name them. */
  async function scanBucket(): Promise<{ rows: number; theirs: number }> {
    const { dir, keys } = await downloadBucket(worker.mf);
    try {
      expect(keys.some((k) => k.endsWith(".parquet"))).toBe(true);
      const [row] = await query(
        `SELECT count(*) AS n, count(*) FILTER (WHERE user_id = '${USER}' OR anonymous_id = '${ANON}' OR data LIKE '%${USER}%') AS theirs
         FROM read_parquet('${dir}/**/*.parquet', union_by_name = true)`,
      );
      const bucket = await worker.mf.getR2Bucket("EVENTS");
      for (const key of keys.filter((k) => !k.endsWith(".parquet"))) {
        expect(await (await bucket.get(key))?.text(), key).not.toContain(USER);
      }
      return { rows: Number(row?.n), theirs: Number(row?.theirs) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
