// Crash test: DuckTail in its own process group (node + workerd), SIGKILLed with an unflushed
// buffer, restarted on the same persisted state. Every `confirmed` ack must survive, exactly once.
import { afterAll, describe, expect, it } from "vitest";
import { eventually } from "../helpers/eventually";
import { duplicates, lakeRows } from "../helpers/lake";
import { liveGroupMembers, usePersistedServers } from "../helpers/server-process";
import { type Frame, WsClient } from "../helpers/ws-client";

// Nothing flushes on its own: no age flush within the test, thresholds out of reach, no `critical` events.
const VARS = {
  FLUSH_INTERVAL_MS: "3600000",
  HIGH_FLUSH_INTERVAL_MS: "3600000",
  FLUSH_THRESHOLD_ROWS: "1000000",
  FLUSH_THRESHOLD_BYTES: "1000000000",
  // Buffered rows stay in memory only: the first test crashes a busy replica.
  IDLE_PERSIST_MS: "3600000",
};

interface Sent {
  id: string;
  type: string;
  source: string;
  importance: string;
  userId: string;
  data: Record<string, unknown>;
}

function batch(tag: string, n: number): Sent[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${tag}-${i}`,
    type: i % 2 ? "click" : "pageview",
    source: "crash-test",
    importance: ["low", "normal", "high"][i % 3]!,
    userId: `user-${i % 7}`,
    data: { tag, i, text: "ünïcødé ✓" },
  }));
}

async function stats(url: string): Promise<Record<string, number>> {
  const res = await fetch(`${url}/buffer/stats`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { shards: { n: number; stats: Record<string, number> }[] };
  expect(body.shards).toHaveLength(1);
  return body.shards[0]!.stats;
}

describe("crash: SIGKILL with an unflushed buffer, restart on the same state", () => {
  const state = usePersistedServers("ducktail-crash-", VARS);
  const sockets: WsClient[] = [];

  afterAll(() => {
    for (const s of sockets) s.ws.terminate();
  });

  it("keeps every confirmed-acked event exactly once", async () => {
    const first = await state.start();
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const all = new Map<string, Sent>(); // everything sent, whatever became of it
    const acked = new Set<string>(); // ids of confirmed events whose ack arrived
    const send = (ws: WsClient, events: Sent[], mode: string) => {
      for (const e of events) all.set(e.id, e);
      return ws.events(events, mode);
    };

    const ws = await WsClient.open(first.url);
    sockets.push(ws);
    for (let b = 0; b < 5; b++) {
      const events = batch(`confirmed-${b}`, 20);
      const ack = await send(ws, events, "confirmed");
      expect(ack).toMatchObject({ type: "ack", received: 20, stored: 20, rejected: [], storageMode: "confirmed" });
      for (const e of events) acked.add(e.id);
      // Buffered batches in between: memory only, may be lost in the crash (that is the contract).
      const buffered = await send(ws, batch(`buffered-${b}`, 10), "buffered");
      expect(buffered).toMatchObject({ type: "ack", stored: 10, storageMode: "buffered" });
    }

    // Nothing has left the buffer: the crash hits an unflushed replica.
    const before = await stats(first.url);
    expect(before).toMatchObject({ bufferedRows: 150, committedRows: 100, flushed: 0, files: 0 });

    // More confirmed batches still in flight when the process group dies: any that got its ack must survive too.
    const inFlight: Promise<unknown>[] = [];
    for (let b = 0; b < 3; b++) {
      const events = batch(`in-flight-${b}`, 20);
      inFlight.push(
        send(ws, events, "confirmed").then(
          (ack: Frame) => {
            expect(ack).toMatchObject({ type: "ack", stored: 20 });
            for (const e of events) acked.add(e.id);
          },
          () => undefined, // socket died first: never acked, may or may not be stored
        ),
      );
    }
    await first.kill();
    expect(liveGroupMembers(first.pgid)).toEqual([]);
    await Promise.all(inFlight);
    const ackedBeforeCrash = new Set(acked);

    // Restart on the same state; the new port comes from the READY line.
    const second = await state.start();
    expect(second.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const after = await stats(second.url);
    expect(after.committedRows).toBeGreaterThanOrEqual(ackedBeforeCrash.size);
    expect(after.bufferedRows).toBeGreaterThanOrEqual(ackedBeforeCrash.size);

    // The restarted replica takes new events too (new seqs must not collide with recovered ones).
    const ws2 = await WsClient.open(second.url);
    sockets.push(ws2);
    const late = batch("after-restart", 10);
    expect(await send(ws2, late, "confirmed")).toMatchObject({ type: "ack", stored: 10, storageMode: "confirmed" });
    for (const e of late) acked.add(e.id);

    const res = await fetch(`${second.url}/flush`, { method: "POST" });
    expect(res.status).toBe(200);
    const flushed = (await res.json()) as { files: string[]; rows: number; failed: unknown[] };
    expect(flushed.failed).toEqual([]);
    expect(flushed.rows).toBeGreaterThanOrEqual(acked.size);
    await ws2.close();
    await second.kill();

    // Read R2 from the persisted state with an in-process Miniflare on the same directory.
    const { rows, keys } = await lakeRows(await state.reader());
    expect(keys.sort()).toEqual([...flushed.files].sort());

    expect(duplicates(rows.map((r) => r.id))).toEqual([]);
    expect(duplicates(rows.map((r) => r.seq))).toEqual([]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect([...acked].filter((id) => !byId.has(id))).toEqual([]);
    for (const r of rows) {
      const e = all.get(r.id);
      expect(e, `unexpected row ${r.id}`).toBeDefined();
      expect(r).toMatchObject({
        tenant: "default",
        replica: "default-0",
        type: e!.type,
        source: e!.source,
        importance: e!.importance,
        user_id: e!.userId,
        data: JSON.stringify(e!.data),
      });
    }
    console.info(
      `crash: ${ackedBeforeCrash.size} confirmed acked before the kill, ${rows.length} rows in R2, ` +
        `${rows.filter((r) => r.id.startsWith("buffered-")).length}/50 buffered survived`,
    );
  });
});

describe("crash: SIGKILL of a replica gone idle with buffered rows", () => {
  const state = usePersistedServers("ducktail-idle-crash-", { ...VARS, IDLE_PERSIST_MS: "200" });

  it("keeps every buffered and fire-and-forget event it acked once it went idle, exactly once", async () => {
    const first = await state.start();
    const ws = await WsClient.open(first.url);
    const sent: Sent[] = [];
    for (const [b, mode] of ["buffered", "fire-and-forget", "buffered"].entries()) {
      const events = batch(`idle-${b}`, 10);
      sent.push(...events);
      expect(await ws.events(events, mode)).toMatchObject({ type: "ack", stored: 10 });
    }
    // Idle for IDLE_PERSIST_MS: the rows are written to SQLite, as confirmed ones are.
    await eventually(async () => (await stats(first.url)).committedRows === 30);
    ws.ws.terminate();
    await first.kill();

    const second = await state.start();
    expect(await stats(second.url)).toMatchObject({ bufferedRows: 30, committedRows: 30 });
    const res = await fetch(`${second.url}/flush`, { method: "POST" });
    expect(((await res.json()) as { rows: number }).rows).toBe(30);
    await second.kill();

    const { rows } = await lakeRows(await state.reader());
    expect(duplicates(rows.map((r) => r.id))).toEqual([]);
    expect(rows.map((r) => r.id).sort()).toEqual(sent.map((e) => e.id).sort());
  });
});
