import { describe, expect, it } from "vitest";
import { allRows, committedRows, crash, ev, objectKeys, replicaStub, tenant } from "./harness";

describe("storage modes", () => {
  it("acks confirmed events only after the SQLite commit", async () => {
    const t = tenant("mode-confirmed");
    const ws = await t.socket();
    const ack = await ws.events([ev("c1"), ev("c2")], "confirmed");
    expect(ack).toMatchObject({ stored: 2, storageMode: "confirmed" });
    expect(await committedRows(t.name)).toBe(2);
    ws.close();
  });

  it("keeps confirmed events across an eviction while buffered ones may be lost", async () => {
    const t = tenant("mode-evicted");
    expect(await (await t.post("/e", { events: [ev("c1"), ev("c2")], storageMode: "confirmed" })).json()).toMatchObject(
      {
        stored: 2,
      },
    );
    await t.post("/e", [ev("b1")]);
    await crash(replicaStub(t.name));
    await t.post("/flush", {});
    expect((await allRows(t.name)).map((r) => r.type).sort()).toEqual(["c1", "c2"]);
  });

  it("holds buffered events in memory only", async () => {
    const t = tenant("mode-buffered");
    const ws = await t.socket();
    expect(await ws.events([ev("a"), ev("b"), ev("c")])).toMatchObject({ stored: 3, storageMode: "buffered" });
    expect(await committedRows(t.name)).toBe(0);
    expect(await ws.request({ type: "stats" })).toMatchObject({ bufferedRows: 3, committedRows: 0 });
    ws.close();
  });

  it("acks fire-and-forget on receipt and still buffers the events", async () => {
    const t = tenant("mode-ff");
    const ws = await t.socket("?storageMode=fire-and-forget");
    expect(await ws.events([ev("a"), { bad: true }])).toMatchObject({
      storageMode: "fire-and-forget",
      stored: 1,
      rejected: [{ index: 1 }],
    });
    expect(await ws.request({ type: "stats" })).toMatchObject({ bufferedRows: 1 });
    ws.close();
  });

  it("acks durable events only once a Parquet object holding them is in R2", async () => {
    const t = tenant("mode-durable");
    const ws = await t.socket();
    const ack = await ws.events([ev("d1", { id: "durable-1" }), ev("d2", { id: "durable-2" })], "durable");
    expect(ack).toMatchObject({ stored: 2, storageMode: "durable" });
    const ids = (await allRows(t.name)).map((r) => r.id).sort();
    expect(ids).toEqual(["durable-1", "durable-2"]);
    expect(await committedRows(t.name)).toBe(0);
    ws.close();
  });

  it("group-commits concurrent durable batches into few objects", async () => {
    const t = tenant("mode-group-commit");
    const sockets = await Promise.all([t.socket(), t.socket()]);
    const acks = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (sockets[i % 2] as (typeof sockets)[number]).events([ev("g", { id: `g-${i}` })], "durable"),
      ),
    );
    expect(acks.every((a) => a.type === "ack" && a.stored === 1)).toBe(true);
    expect((await allRows(t.name)).length).toBe(20);
    expect((await objectKeys(t.name)).length).toBeLessThanOrEqual(3);
    for (const s of sockets) s.close();
  });
});

describe("importance", () => {
  it("flushes at once when a critical event arrives", async () => {
    const t = tenant("imp-critical");
    const ws = await t.socket();
    await ws.events([ev("before"), ev("boom", { importance: "critical" })]);
    const { eventually } = await import("./harness");
    const keys = await eventually(async () => (await objectKeys(t.name)).length > 0 && objectKeys(t.name));
    expect(keys).toHaveLength(1);
    expect((await allRows(t.name)).map((r) => r.type).sort()).toEqual(["before", "boom"]);
    ws.close();
  });

  it("drops buffered low events first when the buffer is over its limit, and counts them", async () => {
    const t = tenant("imp-low");
    const ws = await t.socket();
    const pad = "z".repeat(900);
    const lows = Array.from({ length: 70 }, (_, i) => ev("low", { importance: "low", data: { i, pad } }));
    await ws.events(lows);
    const ack = await ws.events([ev("normal-after", { data: { pad } })]);
    expect(ack).toMatchObject({ stored: 1 });
    const stats = await ws.request({ type: "stats" });
    expect(stats.dropped as number).toBeGreaterThanOrEqual(10);
    expect(stats.bufferedBytes as number).toBeLessThanOrEqual(60000 + 2000);
    ws.close();
  });

  it("rejects non-critical events when committed events fill the buffer, but never a critical one", async () => {
    const t = tenant("imp-full");
    const ws = await t.socket();
    const pad = "q".repeat(900);
    await ws.events(
      Array.from({ length: 70 }, (_, i) => ev("kept", { data: { i, pad } })),
      "confirmed",
    );
    const ack = await ws.events([
      ev("l", { importance: "low" }),
      ev("n"),
      ev("c", { importance: "critical", id: "must-keep" }),
    ]);
    expect(ack).toMatchObject({
      stored: 1,
      rejected: [
        { index: 0, code: "buffer_full" },
        { index: 1, code: "buffer_full" },
      ],
    });
    ws.close();
  });
});
