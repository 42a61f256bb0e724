import { describe, expect, it } from "vitest";
import { ev, tenant } from "./harness";

describe("WebSocket protocol v1", () => {
  it("acks events echoing the id with received, stored and per-event rejections", async () => {
    const ws = await tenant("ws-ack").socket();
    ws.send({ type: "events", id: "batch-1", events: [ev("a"), { source: "no-type" }, ev("b")] });
    const ack = await ws.next();
    expect(ack).toEqual({
      type: "ack",
      id: "batch-1",
      received: 3,
      stored: 2,
      storageMode: "buffered",
      rejected: [{ index: 1, code: "invalid_field", message: "type is required" }],
    });
    ws.close();
  });

  it("answers ping with pong and stats with the replica's counters", async () => {
    const ws = await tenant("ws-misc").socket();
    const pong = await ws.request({ type: "ping" });
    expect(pong.type).toBe("pong");
    expect(typeof pong.ts).toBe("number");
    await ws.events([ev("a"), ev("b")]);
    expect(await ws.request({ type: "stats" })).toMatchObject({
      type: "stats",
      received: 2,
      stored: 2,
      bufferedRows: 2,
    });
    ws.close();
  });

  it("answers malformed JSON, unknown types and oversize frames with error frames and keeps the socket open", async () => {
    const ws = await tenant("ws-errors").socket();
    ws.send("{not json");
    expect(await ws.next()).toMatchObject({ type: "error", code: "bad_json" });
    ws.send({ type: "dance", id: "d1" });
    expect(await ws.next()).toMatchObject({ type: "error", id: "d1", code: "unknown_type" });
    ws.send({ type: "events", id: "big", events: [ev("a", { data: { s: "x".repeat(1024 * 1024) } })] });
    expect(await ws.next()).toMatchObject({ type: "error", code: "frame_too_large" });
    ws.send({ type: "events", id: "many", events: Array.from({ length: 1001 }, () => ev("a")) });
    expect(await ws.next()).toMatchObject({ type: "error", id: "many", code: "batch_too_large" });
    ws.send({ type: "events", id: "mode", storageMode: "maybe", events: [ev("a")] });
    expect(await ws.next()).toMatchObject({ type: "error", id: "mode", code: "invalid_storage_mode" });
    ws.send({ type: "events", id: "nolist", events: "x" });
    expect(await ws.next()).toMatchObject({ type: "error", id: "nolist", code: "bad_frame" });
    expect(await ws.events([ev("after")])).toMatchObject({ type: "ack", stored: 1 });
    ws.close();
  });

  it("rejects events over 32 KiB one by one and stores their neighbours", async () => {
    const ws = await tenant("ws-event-size").socket();
    const ack = await ws.events([ev("ok"), ev("huge", { data: { s: "y".repeat(33 * 1024) } }), ev("ok2")]);
    expect(ack).toMatchObject({ stored: 2, rejected: [{ index: 1, code: "event_too_large" }] });
    ws.close();
  });

  it("checks each frame against the key's scope", async () => {
    const t = tenant("ws-scope", "write");
    const reader = await t.socket("", "key-ws-scope-read");
    expect(await reader.events([ev("a")])).toMatchObject({ type: "error", code: "forbidden" });
    expect(await reader.request({ type: "stats" })).toMatchObject({ type: "stats" });
    const writer = await t.socket("", "key-ws-scope-write");
    expect(await writer.request({ type: "flush" })).toMatchObject({ type: "error", code: "forbidden" });
    expect(await writer.events([ev("a")])).toMatchObject({ type: "ack", stored: 1 });
    reader.close();
    writer.close();
  });

  it("refuses the upgrade without a key once keys are configured", async () => {
    const t = tenant("ws-nokey");
    const res = await t.fetch("/ws", { headers: { Upgrade: "websocket" } }, "");
    expect(res.status).toBe(401);
  });
});
