// End to end: real load through the bundled Worker under Miniflare moves a tenant up to tier 3
// (8 shards) from the replicas' own load reports, and back down to tier 1 once it stops, with
// shortened timing vars; afterwards every acked event is in Parquet exactly once.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { duplicates, lakeRows } from "../helpers/lake";
// @ts-expect-error plain .mjs helper without types
import { buildWorker, startWorker } from "../helpers/miniflare.mjs";

/**
 * Shards of 20 req/s: tier 2 at 45 % of 20 = 9 req/s, tier 3 at 55 % of 4 × 20 = 44 req/s,
 * tier 4 only at 65 % of 8 × 20 = 104 req/s. The load below runs at ~70 req/s.
 */
const VARS = {
  SHARD_CAPACITY_RPS: "20",
  REPORT_INTERVAL_MS: "250",
  SCALE_DOWN_QUIET_MS: "1500",
  ROUTING_TTL_MS: "300",
};
const RATE_RPS = 70;
const EVENTS_PER_REQUEST = 5;

interface ShardList {
  tier: number;
  shards: { n: number; state: string }[];
}

describe("load tiers end to end", () => {
  let bundle: string;
  let persist: string;
  let mf: Miniflare;
  let url: string;

  beforeAll(async () => {
    bundle = buildWorker();
    persist = mkdtempSync(join(tmpdir(), "ducktail-tiers-"));
    ({ mf, url } = await startWorker(bundle, { persistDir: persist, vars: VARS }));
  });

  afterAll(async () => {
    await mf?.dispose();
    for (const dir of [bundle, persist]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const shards = async (): Promise<ShardList> => (await (await fetch(`${url}/shards`)).json()) as ShardList;

  async function until<T>(check: () => Promise<T | null>, ms: number, what: string): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await check();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("goes to tier 3 under load and back to tier 1 when it stops, losing nothing acked", async () => {
    const acked: string[] = [];
    const tiersSeen = new Set<number>();
    let n = 0;
    let stop = false;
    const inFlight = new Set<Promise<void>>();

    /** One request of confirmed events; its ids count once the ack says they were stored. */
    async function send(): Promise<void> {
      const ids = Array.from({ length: EVENTS_PER_REQUEST }, () => `load-${n++}`);
      const res = await fetch(`${url}/e?storageMode=confirmed`, {
        method: "POST",
        body: JSON.stringify(ids.map((id) => ({ id, type: "load", source: "e2e" }))),
      });
      const body = (await res.json()) as { stored: number };
      expect(res.status).toBe(200);
      expect(body.stored).toBe(EVENTS_PER_REQUEST);
      acked.push(...ids);
    }

    const pacer = (async () => {
      while (!stop) {
        const p = send().finally(() => inFlight.delete(p));
        inFlight.add(p);
        await new Promise((r) => setTimeout(r, 1000 / RATE_RPS));
      }
    })();
    const up = await until(
      async () => {
        const s = await shards();
        tiersSeen.add(s.tier);
        return s.tier >= 3 ? s : null;
      },
      20_000,
      "tier 3",
    );
    // Keep the load on a moment so requests reach the new shards through the Worker's fresh table.
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await pacer;
    await Promise.all(inFlight);
    expect(up.tier).toBe(3);
    expect(up.shards.filter((s) => s.state === "routed")).toHaveLength(8);

    const stats = (await (await fetch(`${url}/buffer/stats`)).json()) as { shards: { stats: { requests: number } }[] };
    const busy = stats.shards.filter((s) => s.stats.requests > 0).length;
    expect(busy, "requests spread over the tier-3 shards").toBeGreaterThan(4);

    const down = await until(
      async () => {
        const s = await shards();
        return s.tier === 1 ? s : null;
      },
      20_000,
      "tier 1",
    );
    expect(down.shards.filter((s) => s.state === "routed").map((s) => s.n)).toEqual([0]);
    // Every other shard drains: the 7 of tier 3, or 15 if the last second of load reached tier 4.
    const draining = down.shards.filter((s) => s.state === "draining");
    expect(draining).toHaveLength(down.shards.length - 1);
    expect(draining.length).toBeGreaterThanOrEqual(7);

    const flushed = await fetch(`${url}/flush`, { method: "POST" });
    expect(flushed.status).toBe(200);
    const { rows } = await lakeRows(mf);
    const ids = rows.map((r) => r.id);
    expect(duplicates(ids)).toEqual([]);
    expect(ids.sort()).toEqual([...acked].sort());
    expect(acked.length).toBeGreaterThan(200);
    expect(new Set(rows.map((r) => r.replica)).size, "rows came from several shards").toBeGreaterThan(4);
  });
});
