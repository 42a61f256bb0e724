import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import worker from "../../src/worker";
import { allRows, ev, tenant } from "./harness";

describe("Worker HTTP routes", () => {
  it("states the open tenant in /health when no keys are configured", async () => {
    const res = await worker.fetch(new Request("https://x/health"), env as unknown as Env, createExecutionContext());
    expect(await res.json()).toMatchObject({ ok: true, auth: "open", tenant: "default" });
  });

  it("answers 401 without a key and 403 with the wrong scope once keys are configured", async () => {
    const t = tenant("auth-http", "write");
    expect((await t.fetch("/e", { method: "POST", body: "{}" }, "")).status).toBe(401);
    expect((await t.fetch("/e", { method: "POST", body: "{}" }, "nope")).status).toBe(401);
    expect((await t.fetch("/flush", { method: "POST" }, "key-auth-http-write")).status).toBe(403);
    expect((await t.fetch("/buffer/stats", {}, "key-auth-http-read")).status).toBe(200);
    const health = (await t.fetch("/health")).json();
    expect(await health).toMatchObject({ auth: "keys" });
  });

  it("stores the valid events of a POST /e batch and rejects the others one by one", async () => {
    const t = tenant("partial");
    const res = await t.post("/e", [ev("a"), { type: 42 }, ev("b", { timestamp: "yesterday" }), ev("c")]);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      received: number;
      stored: number;
      rejected: { index: number; code: string }[];
    };
    expect(body).toMatchObject({ received: 4, stored: 2 });
    expect(body.rejected.map((r) => [r.index, r.code])).toEqual([
      [1, "invalid_field"],
      [2, "invalid_timestamp"],
    ]);
    await t.post("/flush", {});
    expect((await allRows("partial")).map((r) => r.type).sort()).toEqual(["a", "c"]);
  });

  it("accepts a single event, an array and {events, storageMode} bodies", async () => {
    const t = tenant("shapes");
    expect(await (await t.post("/e", ev("one"))).json()).toMatchObject({ stored: 1, storageMode: "buffered" });
    expect(await (await t.post("/e", [ev("x"), ev("y")])).json()).toMatchObject({ stored: 2 });
    const res = await t.post("/e", { events: [ev("z")], storageMode: "confirmed" });
    expect(await res.json()).toMatchObject({ stored: 1, storageMode: "confirmed" });
  });

  it("answers 400 with a code when every event is invalid, and for bad JSON", async () => {
    const t = tenant("all-bad");
    const res = await t.post("/e", [{}]);
    expect(res.status).toBe(400);
    const bad = await t.fetch("/e", { method: "POST", body: "{oops" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: "bad_json" } });
  });

  it("turns GET /e query strings into events, answering a GIF to images and 204 otherwise", async () => {
    const t = tenant("pixel");
    const img = await t.fetch("/e?type=pageview&source=web&path=%2Fhome&timestamp=1764000000000", {
      headers: { accept: "image/webp,*/*" },
    });
    expect(img.headers.get("content-type")).toBe("image/gif");
    expect(new Uint8Array(await img.arrayBuffer()).slice(0, 3)).toEqual(new Uint8Array([71, 73, 70]));
    const plain = await t.fetch('/e?type=click&data={"button":"buy"}');
    expect(plain.status).toBe(204);
    await t.post("/flush", {});
    const rows = await allRows("pixel");
    const pv = rows.find((r) => r.type === "pageview");
    expect(JSON.parse(pv?.data as string)).toEqual({ path: "/home" });
    expect(Number(pv?.ts)).toBe(1764000000000);
    expect(JSON.parse(rows.find((r) => r.type === "click")?.data as string)).toEqual({ button: "buy" });
  });

  it("refuses bodies over 1 MiB and batches over 1,000 events", async () => {
    const t = tenant("limits-http");
    const big = JSON.stringify([ev("a", { data: { s: "x".repeat(1024 * 1024) } })]);
    const res = await t.fetch("/e", { method: "POST", body: big, headers: { "content-length": String(big.length) } });
    expect(res.status).toBe(413);
    const many = await t.post(
      "/e",
      Array.from({ length: 1001 }, () => ev("a")),
    );
    expect(many.status).toBe(413);
    expect(await many.json()).toMatchObject({ error: { code: "batch_too_large" } });
  });

  it("answers 404 with a JSON error for unknown routes", async () => {
    const res = await tenant("nf").fetch("/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: "not_found" } });
  });
});
