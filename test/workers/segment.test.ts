import { describe, expect, it } from "vitest";
import { eventually, tenant } from "./harness";

type T = ReturnType<typeof tenant>;

interface Row {
  id: string;
  type: string;
  source: string;
  ts: number;
  receivedAt: number;
  userId: string | null;
  anonymousId: string | null;
  data: Record<string, unknown>;
}

const basic = (key: string) => `Basic ${btoa(`${key}:`)}`;

function segment(t: T, path: string, body: unknown, key: string | null = t.key): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key) headers.authorization = basic(key);
  return t.fetch(path, { method: "POST", headers, body: JSON.stringify(body) }, "");
}

async function rows(t: T): Promise<Row[]> {
  return ((await (await t.fetch("/events?limit=1000")).json()) as { events: Row[] }).events;
}

describe("Segment-compatible API", () => {
  it("takes track, page and identify calls with Basic auth or a writeKey in the body", async () => {
    const t = tenant("seg-calls", "write");
    const admin = tenant("seg-calls");
    expect(
      (
        await segment(t, "/v1/track", {
          userId: "u1",
          event: "Order Completed",
          properties: { total: 9 },
          messageId: "m1",
        })
      ).status,
    ).toBe(200);
    const page = {
      anonymousId: "a1",
      name: "Pricing",
      context: { page: { path: "/pricing" }, library: { name: "analytics.js" } },
      messageId: "m2",
    };
    expect((await segment(t, "/v1/page", page)).status).toBe(200);
    expect(
      (
        await segment(
          t,
          "/v1/identify",
          { userId: "u1", traits: { plan: "pro" }, messageId: "m3", writeKey: t.key },
          null,
        )
      ).status,
    ).toBe(200);
    expect((await segment(t, "/v1/track", { userId: "u1", event: "x" }, "wrong-key")).status).toBe(401);
    expect((await t.fetch("/v1/ping", {}, "")).status).toBe(200);

    const got = await rows(admin);
    const byId = Object.fromEntries(got.map((r) => [r.id, r]));
    expect(byId.m1).toMatchObject({
      type: "Order Completed",
      source: "segment:http",
      userId: "u1",
      data: { total: 9 },
    });
    expect(byId.m2).toMatchObject({
      type: "pageview",
      source: "segment:analytics.js",
      anonymousId: "a1",
      data: { path: "/pricing", name: "Pricing" },
    });
    expect(byId.m3).toMatchObject({ type: "identify", data: { plan: "pro" } });
    // Views follow ingest within about a second (replicas push to the tenant's view aggregator).
    const pv = await eventually(async () => {
      const body = (await (await admin.fetch("/buffer/mv/pageviews")).json()) as { rows: unknown[] };
      return body.rows.length > 0 ? body : null;
    });
    expect(pv.rows).toEqual([{ path: "/pricing", views: 1, uniques: 1 }]);
  });

  it("corrects client clock skew, drops retried messageIds and keeps the good messages of a bad batch", async () => {
    const t = tenant("seg-batch", "write");
    const admin = tenant("seg-batch");
    const clientNow = Date.now() - 3_600_000; // a client clock an hour behind
    const batch = {
      sentAt: new Date(clientNow).toISOString(),
      batch: [
        {
          type: "track",
          event: "a",
          userId: "u",
          messageId: "b1",
          timestamp: new Date(clientNow - 5_000).toISOString(),
        },
        { type: "track", userId: "u", messageId: "b2" }, // no event name
        { type: "screen", name: "Home", anonymousId: "x", messageId: "b3" },
        { type: "nope", userId: "u", messageId: "b4" },
        { type: "track", event: "c", messageId: "b5" }, // no user
      ],
    };
    const res = await segment(t, "/v1/batch", batch);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      stored: number;
      rejected: { index: number; message: string }[];
      _shards: unknown[];
    };
    expect(body.stored).toBe(2);
    expect(body._shards).toEqual([{ shardId: expect.stringMatching(/-\d+$/), tier: 1, received: 2, stored: 2 }]);
    expect(body.rejected.map((r) => [r.index, r.message])).toEqual([
      [1, "track needs an event name"],
      [3, "type must be one of track, page, screen, identify, group, alias"],
      [4, "userId or anonymousId is required"],
    ]);
    const retry = (await (await segment(t, "/v1/batch", batch)).json()) as { stored: number; duplicates: number };
    expect(retry).toMatchObject({ stored: 0, duplicates: 2 });

    const got = await rows(admin);
    expect(got.map((r) => r.id).sort()).toEqual(["b1", "b3"]);
    const b1 = got.find((r) => r.id === "b1") as Row;
    // Sent 5 s after it happened by the client's clock: it happened 5 s before it arrived.
    expect(Math.abs(b1.receivedAt - 5_000 - b1.ts)).toBeLessThan(1_000);
  });

  it("answers 429 with Retry-After past the key's rate, and 413 past 500 KiB", async () => {
    const t = tenant("seg-limit", "write", { SEGMENT_RATE_LIMIT_RPS: "2" });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await segment(t, "/v1/track", { userId: "u", event: "e", messageId: `r${i}` });
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 200]);
    expect(statuses).toContain(429);
    const big = { batch: [{ type: "track", event: "e", userId: "u", properties: { pad: "x".repeat(600 * 1024) } }] };
    const other = tenant("seg-big", "write");
    expect((await segment(other, "/v1/batch", big)).status).toBe(413);
  });
});
