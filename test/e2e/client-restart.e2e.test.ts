// ducktail/client across a real server restart: DuckTail in its own process (node + workerd) behind
// a TCP proxy, SIGKILLed mid-stream and started again on the same state. Every confirmed ack the
// client resolved must be in the lake; the events in flight at the kill are sent again.
import { afterAll, describe, expect, it } from "vitest";
import { DuckTailClient, type TrackResult } from "../../sdk/index";
import { lakeRows } from "../helpers/lake";
import { usePersistedServers } from "../helpers/server-process";
import { TcpProxy } from "../helpers/tcp-proxy";

// Nothing flushes by itself: what survives the kill survives in SQLite, as confirmed promises.
const VARS = { FLUSH_INTERVAL_MS: "3600000", HIGH_FLUSH_INTERVAL_MS: "3600000", FLUSH_THRESHOLD_ROWS: "1000000" };

describe("ducktail/client across a server restart", () => {
  const state = usePersistedServers("ducktail-client-restart-", VARS);
  let proxy: TcpProxy;
  let client: DuckTailClient;

  afterAll(async () => {
    await client?.close(0);
    await proxy?.down();
  });

  it("reconnects after a SIGKILL and restart, and loses no event it acked", async () => {
    const first = await state.start();
    proxy = await TcpProxy.create(Number(new URL(first.url).port));
    await proxy.up();
    client = new DuckTailClient({
      url: `http://127.0.0.1:${proxy.port}`,
      storageMode: "confirmed",
      batchInterval: 5,
      maxBatchSize: 25,
    });
    const tracked = new Map<string, Promise<TrackResult>>();
    const track = (id: string) => tracked.set(id, client.track("restart", { id }, { id }));

    for (let i = 0; i < 200; i++) track(`before-${i}`);
    await Promise.all(tracked.values());
    // Mid-stream: frames in flight, and more queued, when the server dies.
    for (let i = 0; i < 300; i++) track(`during-${i}`);
    await first.kill();

    const second = await state.start();
    proxy.target = Number(new URL(second.url).port);
    for (let i = 0; i < 100; i++) track(`after-${i}`);

    const results = await Promise.all(tracked.values());
    expect(results.map((r) => r.id)).toEqual([...tracked.keys()]);
    expect(client.reconnects).toBeGreaterThanOrEqual(1);

    await second.kill();
    const reader = await state.reader();
    const url = (await reader.ready).toString().replace(/\/$/, "");
    expect((await fetch(`${url}/flush`, { method: "POST" })).status).toBe(200);
    const ids = (await lakeRows(reader)).rows.map((r) => r.id);
    // Every acked event is there; one whose ack died with the server may be there twice.
    expect([...new Set(ids)].sort()).toEqual([...tracked.keys()].sort());
    expect(ids.length - new Set(ids).size).toBeLessThanOrEqual(300);
  });
});
