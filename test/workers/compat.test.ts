// What a user of the original DuckTail package sends, unchanged: the pixel's `e`/`k`, the
// Analytics-format body, `_shards` in answers, GET /stats, a tenant-aware /health, a Worker
// under a path prefix.
import { describe, expect, it } from "vitest";
import { allRows, tenant } from "./harness";

const GIF_MAGIC = [71, 73, 70];

async function expectGif(res: Response): Promise<void> {
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("image/gif");
  expect(res.headers.get("cache-control")).toBe("no-store");
  expect([...new Uint8Array(await res.arrayBuffer()).slice(0, 3)]).toEqual(GIF_MAGIC);
}

describe("the original DuckTail's clients", () => {
  it("counts GET /p.gif?e=pageview&k=<key> as a pageview of the page in the Referer", async () => {
    const t = tenant("compat-pixel");
    const res = await t.fetch(
      "/p.gif?e=pageview&k=key-compat-pixel-write",
      { headers: { referer: "https://shop.example/pricing?plan=pro" } },
      "",
    );
    await expectGif(res);
    await t.post("/flush", {});
    const rows = await allRows("compat-pixel");
    expect(rows).toHaveLength(1);
    expect(rows[0]?.type).toBe("pageview");
    expect(JSON.parse(rows[0]?.data as string)).toEqual({
      url: "https://shop.example/pricing?plan=pro",
      referrer: "https://shop.example/pricing?plan=pro",
    });
  });

  it("keeps the query's own url and referrer over the Referer header", async () => {
    const t = tenant("compat-pixel-url");
    const query =
      "/p.gif?e=signup&k=key-compat-pixel-url-write&url=https%3A%2F%2Fa.example%2Fx&referrer=https%3A%2F%2Fb.example";
    await expectGif(await t.fetch(query, { headers: { referer: "https://mail.example/" } }, ""));
    await t.post("/flush", {});
    const [row] = await allRows("compat-pixel-url");
    expect(JSON.parse(row?.data as string)).toEqual({ url: "https://a.example/x", referrer: "https://b.example" });
  });

  it("answers an image to a pixel with a wrong key or a bad event, and counts both", async () => {
    const t = tenant("compat-pixel-bad");
    const before = (await (await t.fetch("/health", {}, "")).json()) as { pixels: { refused: { badKey: number } } };
    await expectGif(await t.fetch("/p.gif?e=pageview&k=nobody", {}, ""));
    await expectGif(await t.fetch("/p.gif?e=pageview", {}, ""));
    const after = (await (await t.fetch("/health", {}, "")).json()) as { pixels: { refused: { badKey: number } } };
    expect(after.pixels.refused.badKey).toBe(before.pixels.refused.badKey + 2);

    // A valid key with an event that cannot be stored: still a GIF, rejected in the tenant's stats.
    await expectGif(await t.fetch("/p.gif?k=key-compat-pixel-bad-write&source=x", {}, ""));
    await expectGif(await t.fetch("/p.gif?e=x&k=key-compat-pixel-bad-write&data=5", {}, ""));
    const stats = (await (await t.fetch("/stats")).json()) as { shards: { stats: { rejected: number } }[] };
    expect(stats.shards.reduce((n, s) => n + s.stats.rejected, 0)).toBe(2);
  });

  it("rejects a GET /e whose data is not a JSON object with a 4xx and a code", async () => {
    const t = tenant("compat-get-data");
    for (const data of ["null", "5", '"s"', "[1]", "{nope"]) {
      const res = await t.fetch(`/e?type=x&data=${encodeURIComponent(data)}`);
      expect(res.status, data).toBe(400);
      const body = (await res.json()) as { rejected: { code: string; message: string }[] };
      expect(body.rejected[0]).toMatchObject({ code: "invalid_field", message: "data must be a JSON object" });
    }
  });

  it("takes the Analytics format on POST /e, write key in the body, one message or an array", async () => {
    const t = tenant("compat-analytics");
    const one = {
      event: "signup",
      writeKey: "key-compat-analytics-write",
      timestamp: "2026-12-01T10:00:00.000Z",
      anonymousId: "anon-1",
      userId: "u1",
      properties: { plan: "pro" },
    };
    const res = await t.fetch("/e", { method: "POST", body: JSON.stringify(one) }, "");
    expect(res.status).toBe(200);
    const answer = (await res.json()) as Record<string, unknown>;
    expect(answer).toMatchObject({ received: 1, stored: 1, rejected: [] });
    expect(answer._shards).toEqual([{ shardId: "compat-analytics-0", tier: 1, received: 1, stored: 1 }]);

    const many = [
      { ...one, event: "click", properties: { button: "buy" } },
      { writeKey: one.writeKey, event: "nobody" }, // no userId or anonymousId: rejected as /v1/track would
      { ...one, event: "purchase", properties: { total: 9 } },
    ];
    const res2 = await t.fetch("/e", { method: "POST", body: JSON.stringify(many) }, "");
    const answer2 = (await res2.json()) as { stored: number; rejected: { index: number }[] };
    expect(answer2.stored).toBe(2);
    expect(answer2.rejected.map((r) => r.index)).toEqual([1]);

    await t.post("/flush", {});
    const rows = (await allRows("compat-analytics")).sort((a, b) => String(a.type).localeCompare(String(b.type)));
    expect(rows.map((r) => [r.type, r.user_id, r.anonymous_id, JSON.parse(r.data as string)])).toEqual([
      ["click", "u1", "anon-1", { button: "buy" }],
      ["purchase", "u1", "anon-1", { total: 9 }],
      ["signup", "u1", "anon-1", { plan: "pro" }],
    ]);
    expect(Number(rows[2]?.ts)).toBe(Date.parse(one.timestamp));
  });

  it("refuses an Analytics-format body without a valid write key", async () => {
    const t = tenant("compat-analytics-key");
    const res = await t.fetch("/e", { method: "POST", body: JSON.stringify({ event: "x", writeKey: "nope" }) }, "");
    expect(res.status).toBe(401);
  });

  it("says in every HTTP ingest answer which shard and tier took the batch (_shards)", async () => {
    const t = tenant("compat-shards");
    const res = await t.post("/e", [{ type: "a" }, { type: "b" }, { nope: 1 }]);
    const answer = (await res.json()) as Record<string, unknown>;
    expect(answer).toMatchObject({ received: 3, stored: 2 });
    expect(answer._shards).toEqual([{ shardId: "compat-shards-0", tier: 1, received: 3, stored: 2 }]);
  });

  it("serves GET /stats as /buffer/stats, to a read key", async () => {
    const t = tenant("compat-stats", "read");
    const stats = (await (await t.fetch("/stats")).json()) as Record<string, unknown>;
    const buffer = (await (await t.fetch("/buffer/stats")).json()) as Record<string, unknown>;
    expect(Object.keys(stats).sort()).toEqual(Object.keys(buffer).sort());
    expect(stats).toMatchObject({ tenant: "compat-stats", tier: 1 });
    expect((await t.fetch("/stats", {}, "key-compat-stats-write")).status).toBe(403);
  });

  it("includes the tenant's tier and shard count in /health when a key is given", async () => {
    const t = tenant("compat-health", "write");
    const anonymous = (await (await t.fetch("/health", {}, "")).json()) as Record<string, unknown>;
    expect(anonymous).toMatchObject({ ok: true, auth: "keys" });
    expect(anonymous).not.toHaveProperty("tier");
    const keyed = (await (await t.fetch("/health")).json()) as Record<string, unknown>;
    expect(keyed).toMatchObject({ ok: true, tenant: "compat-health", tier: 1, shards: 1 });
    const wrong = (await (await t.fetch("/health", {}, "nope")).json()) as Record<string, unknown>;
    expect(wrong).toMatchObject({ ok: true, keyError: "unknown key" });
  });

  it("serves its routes under BASE_PATH for a Worker on a route like example.com/ducktail/*", async () => {
    const t = tenant("compat-base", "admin", { BASE_PATH: "/ducktail" });
    const res = await t.post("/ducktail/e", { type: "under-prefix" });
    expect(await res.json()).toMatchObject({ stored: 1 });
    expect((await t.fetch("/ducktail/health")).status).toBe(200);
    await t.post("/ducktail/flush", {});
    expect((await allRows("compat-base")).map((r) => r.type)).toEqual(["under-prefix"]);
  });

  it("ignores internal headers a client sends: a request stays in its key's tenant", async () => {
    const t = tenant("compat-headers");
    const res = await t.fetch("/e", {
      method: "POST",
      headers: { "x-ducktail-tenant": "someone-else", "x-ducktail-shard": "7", "x-ducktail-admin": "1" },
      body: JSON.stringify({ type: "mine" }),
    });
    expect(await res.json()).toMatchObject({ stored: 1, _shards: [{ shardId: "compat-headers-0" }] });
    await t.post("/flush", {});
    expect((await allRows("compat-headers")).map((r) => r.type)).toEqual(["mine"]);
    expect(await allRows("someone-else")).toEqual([]);
  });
});
