// The unmodified @segment/analytics-node client, pointed at the bundled Worker under Miniflare:
// what it sends lands in Parquet (read back with DuckDB), once, with the skew-corrected time.
import { Analytics } from "@segment/analytics-node";
import { describe, expect, it } from "vitest";
import { duplicates, lakeRows } from "../helpers/lake";
import { useWorker } from "../helpers/worker";

const KEYS = { wk_live: { tenant: "shop", scope: "write" }, sk_admin: { tenant: "shop", scope: "admin" } };

describe("Segment's analytics-node against DuckTail", () => {
  const worker = useWorker({ DUCKTAIL_KEYS: JSON.stringify(KEYS) });

  it("delivers track, page and identify calls into Parquet", async () => {
    const analytics = new Analytics({ writeKey: "wk_live", host: worker.url, flushAt: 20, maxRetries: 2 });
    const errors: unknown[] = [];
    analytics.on("error", (err) => errors.push(err));
    for (let i = 0; i < 25; i++) {
      analytics.track({ userId: `u${i % 4}`, event: "Product Viewed", properties: { sku: `s${i}`, price: i } });
    }
    analytics.page({ anonymousId: "anon-1", name: "Docs", properties: { path: "/docs", title: "Docs" } });
    analytics.identify({ userId: "u1", traits: { plan: "pro", email: "u1@example.com" } });
    await analytics.closeAndFlush({ timeout: 20_000 });
    expect(errors).toEqual([]);

    expect((await fetch(`${worker.url}/flush?key=sk_admin`, { method: "POST" })).status).toBe(200);
    const { rows } = await lakeRows(worker.mf);
    expect(rows).toHaveLength(27);
    expect(duplicates(rows.map((r) => r.id))).toEqual([]);
    expect(rows.every((r) => r.tenant === "shop" && r.source === "segment:@segment/analytics-node")).toBe(true);
    const viewed = rows.filter((r) => r.type === "Product Viewed");
    expect(viewed.map((r) => JSON.parse(r.data).sku).sort()).toEqual(
      Array.from({ length: 25 }, (_, i) => `s${i}`).sort(),
    );
    expect(rows.find((r) => r.type === "pageview")).toMatchObject({ anonymous_id: "anon-1" });
    expect(JSON.parse(rows.find((r) => r.type === "pageview")?.data ?? "{}")).toMatchObject({
      path: "/docs",
      name: "Docs",
    });
    expect(JSON.parse(rows.find((r) => r.type === "identify")?.data ?? "{}")).toMatchObject({ plan: "pro" });
    // Same clock on both sides: the corrected time is within the flush delay of receipt.
    for (const r of rows) expect(Math.abs(r.received_at - r.ts)).toBeLessThan(15_000);
  });
});
