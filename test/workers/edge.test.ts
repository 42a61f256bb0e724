// What the edge refuses to let through: internal headers a client forges, key tables with
// entries that cannot be used.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { Env } from "../../src/env";
import worker from "../../src/worker";
import { eventually, tenant } from "./harness";

async function call(keys: unknown, path: string, init: RequestInit = {}): Promise<Response> {
  const e = { ...(env as unknown as Env), DUCKTAIL_KEYS: typeof keys === "string" ? keys : JSON.stringify(keys) };
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(new URL(path, "https://ducktail.test"), init), e, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

describe("the edge", () => {
  it("counts a socket that claims to be an admin socket like any other, and its close", async () => {
    const t = tenant("edge-admin-header");
    const connections = async () => {
      const list = (await (await t.fetch("/shards")).json()) as { shards: { connections: number }[] };
      return list.shards.reduce((n, s) => n + s.connections, 0);
    };
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await t.fetch("/ws", { headers: { Upgrade: "websocket", "x-ducktail-admin": "1" } });
      expect(res.status).toBe(101);
      const ws = res.webSocket as WebSocket;
      ws.accept();
      sockets.push(ws);
    }
    expect(await connections()).toBe(3);
    for (const ws of sockets) ws.close(1000, "done");
    await eventually(async () => (await connections()) === 0);
  });

  it("serves the valid keys of a table with bad entries, and says what is wrong in /health", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const keys = {
      good_key: { tenant: "edge-keys", scope: "admin" },
      bad_slash: { tenant: "a/../b", scope: "write" },
      bad_dots: { tenant: "..", scope: "write" },
      bad_space: { tenant: "x y", scope: "write" },
    };
    const health = await call(keys, "/health");
    expect(health.status).toBe(200);
    const body = (await health.json()) as { ok: boolean; keyErrors: string[] };
    expect(body.ok).toBe(true);
    expect(body.keyErrors).toHaveLength(3);
    expect(body.keyErrors.join("\n")).not.toContain("bad_slash"); // keys are never shown whole
    const stored = await call(keys, "/e?key=good_key", { method: "POST", body: '{"type":"ok"}' });
    expect(await stored.json()).toMatchObject({ stored: 1 });
    expect((await call(keys, "/e?key=bad_slash", { method: "POST", body: '{"type":"x"}' })).status).toBe(401);
    expect(error).toHaveBeenCalledWith(expect.stringContaining('ending "lash": tenant must be'));
    error.mockRestore();
  });

  it("refuses every key, never opening the Worker, when DUCKTAIL_KEYS is not a JSON object", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const health = (await (await call("{not json", "/health")).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ ok: true, auth: "keys", keyErrors: [expect.stringContaining("not valid JSON")] });
    expect((await call("{not json", "/e", { method: "POST", body: '{"type":"x"}' })).status).toBe(401);
    error.mockRestore();
  });

  it("rejects an event with a lone surrogate per event, storing its neighbours as sent", async () => {
    const t = tenant("edge-surrogates");
    // JSON's own escapes: the text is ASCII, the parsed strings are not well-formed UTF-16.
    const body = '[{"type":"ok","id":"fine-\\u00e9"},{"type":"x","id":"x-\\ud800"},{"type":"y","userId":"\\udc00z"}]';
    const res = await t.fetch("/e", { method: "POST", body });
    const answer = (await res.json()) as {
      stored: number;
      rejected: { index: number; code: string; message: string }[];
    };
    expect(answer.stored).toBe(1);
    expect(answer.rejected.map((r) => [r.index, r.code])).toEqual([
      [1, "invalid_field"],
      [2, "invalid_field"],
    ]);
    expect(answer.rejected[0]?.message).toMatch(/lone UTF-16 surrogate/);
    const socket = await t.socket();
    const ack = await socket.request({ type: "events", events: [{ type: "z", source: "s-\ud83d" }, { type: "ok2" }] });
    expect(ack).toMatchObject({ stored: 1, rejected: [{ index: 0, code: "invalid_field" }] });
    await t.post("/flush", {});
    const stored = (await (await t.fetch("/events")).json()) as { events: { id: string; type: string }[] };
    expect(stored.events.map((e) => e.type).sort()).toEqual(["ok", "ok2"]);
    expect(stored.events.find((e) => e.type === "ok")?.id).toBe("fine-é");
  });

  it("refuses a body that is not UTF-8 with a 400 instead of storing U+FFFD", async () => {
    const t = tenant("edge-utf8");
    const bytes = new Uint8Array([
      ...new TextEncoder().encode('{"type":"x","id":"a'),
      0xff,
      0xfe,
      ...new TextEncoder().encode('"}'),
    ]);
    const res = await t.fetch("/e", { method: "POST", body: bytes });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "invalid_encoding" } });
    const segment = await t.fetch("/v1/track", { method: "POST", body: bytes });
    expect(segment.status).toBe(400);
  });
});
