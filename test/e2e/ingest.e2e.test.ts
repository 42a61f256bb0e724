// End to end: the bundled Worker under Miniflare (real workerd, DO SQLite, local R2), a real `ws`
// client in every storage mode plus HTTP /e, then the Parquet objects in R2 read back with DuckDB.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { duplicates, type LakeRow, lakeRows, OBJECT_KEY } from "../helpers/lake";
// @ts-expect-error plain .mjs helper without types
import { buildWorker, startWorker } from "../helpers/miniflare.mjs";
import { type Frame, WsClient } from "../helpers/ws-client";

type Mode = "fire-and-forget" | "buffered" | "confirmed" | "durable";
const MODES: Mode[] = ["fire-and-forget", "buffered", "confirmed", "durable"];
const IMPORTANCES = ["low", "normal", "high", "critical"] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Client timestamps as sent, with the epoch ms the server must store for each. */
const TIMESTAMPS: [number | string, number][] = [
  [1_700_000_000_123, 1_700_000_000_123],
  ["2024-02-29T23:59:59.999Z", Date.UTC(2024, 1, 29, 23, 59, 59, 999)],
  [1_600_000_000_000.75, 1_600_000_000_000], // fractional ms are truncated
  ["2025-06-15T08:30:00+05:30", Date.UTC(2025, 5, 15, 3, 0, 0)],
  ["2023-01-01", Date.UTC(2023, 0, 1)],
  [0, 0],
];

/** Invalid events, each with the code its rejection must carry. Ids start "bad-" so the lake can be searched. */
const INVALID: [unknown, string][] = [
  [{ id: "bad-no-type", source: "x" }, "invalid_field"],
  [{ id: "bad-importance", type: "t", importance: "urgent" }, "invalid_field"],
  [{ id: "bad-timestamp", type: "t", timestamp: "yesterday" }, "invalid_timestamp"],
  [{ id: "bad-field", type: "t", color: "red" }, "invalid_field"],
  ["not an object", "invalid_event"],
  [{ id: "bad-data", type: "t", data: [1, 2] }, "invalid_field"],
  [{ id: "bad-negative-ts", type: "t", timestamp: -5 }, "invalid_timestamp"],
  [{ id: "bad-type-number", type: 42 }, "invalid_field"],
  [{ id: "bad-http", importance: "normal" }, "invalid_field"],
];

interface Sent {
  /** What went over the wire. */
  input: Record<string, unknown>;
  /** The stored ts, or null for "the time it was received". */
  ts: number | null;
}

/** Everything a test sends that must end up in the lake, keyed by id (or `type:` for id-less events). */
const sent = new Map<string, Sent>();
const keyOf = (input: Record<string, unknown>) => (input.id as string | undefined) ?? `type:${input.type}`;
let counter = 0;

/** An event with every field set: nested JSON and non-ASCII in data, a client timestamp. */
function full(tag: string): Record<string, unknown> {
  const n = counter++;
  const [timestamp, ts] = TIMESTAMPS[n % TIMESTAMPS.length]!;
  const input = {
    id: `${tag}-full-${n}`,
    timestamp,
    source: n % 2 ? "web-app" : "worker:checkout/ü",
    type: n % 3 ? "pageview" : "error",
    importance: IMPORTANCES[n % IMPORTANCES.length],
    userId: `user-${n}-ø`,
    anonymousId: `anon-${n}`,
    sessionId: `sess-${Math.floor(n / 4)}`,
    data: {
      path: `/p/${n}`,
      note: "héllo ✓ 日本語 🦆",
      nested: { list: [1, 2.5, null, true, { ключ: "значение" }], deep: { deeper: { n, empty: {} } } },
      quote: 'say "hi"\n\ttab\\',
    },
  };
  sent.set(keyOf(input), { input, ts });
  return input;
}

/** An event with only a type (unique, so it can be found without an id). */
function bare(tag: string): Record<string, unknown> {
  const input = { type: `${tag}-bare-${counter++}` };
  sent.set(keyOf(input), { input, ts: null });
  return input;
}

/** Asserts a lake row holds exactly what was sent (defaults applied where fields were absent). */
function expectRow(row: LakeRow, s: Sent): void {
  const e = s.input;
  expect(row, `row for ${keyOf(e)}`).toMatchObject({
    tenant: "default",
    replica: "default-0",
    ts: s.ts ?? row.received_at,
    source: e.source ?? "unknown",
    type: e.type,
    importance: e.importance ?? "normal",
    user_id: e.userId ?? null,
    anonymous_id: e.anonymousId ?? null,
    session_id: e.sessionId ?? null,
    data: JSON.stringify(e.data ?? {}),
  });
  if (e.id !== undefined) expect(row.id).toBe(e.id);
  else expect(row.id).toMatch(UUID);
}

function expectAck(ack: Frame, mode: Mode, received: number, rejected: [number, string][] = []): void {
  expect(ack).toMatchObject({ type: "ack", received, stored: received - rejected.length, storageMode: mode });
  const got = ack.rejected as { index: number; code: string; message: string }[];
  expect(got.map((r) => [r.index, r.code])).toEqual(rejected);
  for (const r of got) expect(r.message).toEqual(expect.any(String));
}

describe("ingest end to end: ws + HTTP → R2 Parquet → DuckDB", () => {
  let bundle: string;
  let persist: string;
  let mf: Miniflare;
  let url: string;
  const sockets: WsClient[] = [];

  beforeAll(async () => {
    bundle = buildWorker();
    persist = mkdtempSync(join(tmpdir(), "ducktail-e2e-"));
    // Wrangler's defaults otherwise: row/byte thresholds and a 30 s age flush (5 s for `high`)
    // may or may not fire during the test; exactly-once must hold either way.
    ({ mf, url } = await startWorker(bundle, { persistDir: persist }));
  });

  afterAll(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await mf?.dispose();
    for (const dir of [bundle, persist]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("stores every valid event exactly once, with every field, in hive-partitioned Parquet", async () => {
    const health = await (await fetch(`${url}/health`)).json();
    expect(health).toMatchObject({ ok: true, auth: "open", tenant: "default" });

    const t0 = Date.now();
    const invalid = [...INVALID];
    let durableChecks = 0;

    /** Three batches on one socket; the mode comes from the socket (?storageMode), the frame, or the default. */
    async function run(mode: Mode): Promise<void> {
      const via = mode === "confirmed" ? "socket" : mode === "buffered" ? "default" : "frame";
      const ws = await WsClient.open(url, via === "socket" ? `?storageMode=${mode}` : "");
      sockets.push(ws);
      for (let b = 0; b < 3; b++) {
        const tag = `${mode}-b${b}`;
        const events: unknown[] = [full(tag), bare(tag), full(tag), full(tag), bare(tag)];
        const rejected: [number, string][] = [];
        if (b === 1) {
          // Two invalid events in the middle and at the end: partial success.
          for (const at of [2, events.length + 1]) {
            const [event, code] = invalid.shift()!;
            events.splice(at, 0, event);
            rejected.push([at, code]);
          }
        }
        const ack = await ws.events(events, via === "frame" ? mode : undefined);
        expectAck(ack, mode, events.length, rejected);

        if (mode === "durable") {
          // A durable ack means: already inside a Parquet object in R2. Look right now, before any /flush.
          const { rows } = await lakeRows(mf);
          const byKey = new Map(rows.map((r) => [r.id, r]));
          for (const e of events) {
            if (typeof e !== "object" || String((e as { id?: string }).id).startsWith("bad-")) continue;
            const k = keyOf(e as Record<string, unknown>);
            const row = k.startsWith("type:") ? rows.find((r) => `type:${r.type}` === k) : byKey.get(k);
            expect(row, `durable event ${k} in R2 when its ack arrived`).toBeDefined();
            expectRow(row!, sent.get(k)!);
          }
          durableChecks++;
        }
      }
    }
    await Promise.all(MODES.map(run));
    expect(durableChecks).toBe(3);

    // HTTP: one event (default mode), an array with an invalid one, an envelope, a query string, a pixel.
    const post = (path: string, body: unknown) =>
      fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) });

    let res = await post("/e", full("http-single"));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      received: 1,
      stored: 1,
      rejected: [],
      storageMode: "buffered",
      _shards: [{ shardId: expect.any(String), tier: 1, received: 1, stored: 1 }],
    });

    const [badHttp, badCode] = INVALID.at(-1)!;
    res = await post("/e?storageMode=confirmed", [full("http-array"), bare("http-array"), badHttp]);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      received: 3,
      stored: 2,
      rejected: [{ index: 2, code: badCode }],
      storageMode: "confirmed",
    });

    const envelope = [full("http-durable"), bare("http-durable")];
    res = await post("/e", { events: envelope, storageMode: "durable" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      received: 2,
      stored: 2,
      rejected: [],
      storageMode: "durable",
      _shards: [{ shardId: expect.any(String), tier: 1, received: 2, stored: 2 }],
    });
    {
      const { rows } = await lakeRows(mf);
      const id = envelope[0]!.id as string;
      expect(rows.filter((r) => r.id === id)).toHaveLength(1);
      expect(rows.filter((r) => r.type === envelope[1]!.type)).toHaveLength(1);
    }

    res = await post("/e", [badHttp]);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ received: 1, stored: 0, rejected: [{ index: 0, code: badCode }] });

    // GET /e: event fields from the query; `data` (JSON) merged with every other parameter.
    const queryEvent = {
      id: "http-get-1",
      timestamp: 1_699_999_999_999,
      source: "pixel",
      type: "open",
      importance: "high",
      userId: "u-ü",
      anonymousId: "a-1",
      sessionId: "s-1",
    };
    const q = new URLSearchParams({
      ...Object.fromEntries(Object.entries(queryEvent).map(([k, v]) => [k, String(v)])),
      data: JSON.stringify({ campaign: { name: "été", n: 3 } }),
      utm_source: "newsletter",
    });
    res = await fetch(`${url}/e?${q}`);
    expect(res.status).toBe(204);
    sent.set(queryEvent.id, {
      input: { ...queryEvent, data: { campaign: { name: "été", n: 3 }, utm_source: "newsletter" } },
      ts: queryEvent.timestamp,
    });

    const pixel = bare("http-pixel");
    res = await fetch(`${url}/e?type=${pixel.type}`, { headers: { accept: "image/gif" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/gif");
    expect(new Uint8Array(await res.arrayBuffer()).slice(0, 6)).toEqual(new TextEncoder().encode("GIF89a"));

    const t1 = Date.now();

    // Flush what is still buffered, then read the whole lake.
    res = await fetch(`${url}/flush`, { method: "POST" });
    expect(res.status).toBe(200);
    const flushed = (await res.json()) as { files: string[]; rows: number; failed: unknown[] };
    expect(flushed.failed).toEqual([]);
    expect(flushed.rows).toBeGreaterThan(0);

    const { rows, keys } = await lakeRows(mf);
    for (const f of flushed.files) expect(keys).toContain(f);
    for (const key of keys) {
      const m = OBJECT_KEY.exec(key);
      expect(m, key).not.toBeNull();
      expect(m![1]).toBe("default");
      expect(m![4]).toBe("default-0");
    }

    // Exactly once: every row is one sent event, every sent event is one row.
    expect(duplicates(rows.map((r) => r.id))).toEqual([]);
    expect(duplicates(rows.map((r) => r.seq))).toEqual([]);
    expect(rows.filter((r) => r.id.startsWith("bad-") || r.type === "t")).toEqual([]);
    const found = new Map<string, LakeRow>();
    for (const r of rows) {
      const k = sent.has(r.id) ? r.id : `type:${r.type}`;
      expect(sent.has(k), `unexpected row ${r.id} (${r.type})`).toBe(true);
      expect(found.has(k), `${k} stored twice`).toBe(false);
      found.set(k, r);
    }
    expect([...sent.keys()].filter((k) => !found.has(k))).toEqual([]);
    expect(rows).toHaveLength(sent.size);

    for (const [k, s] of sent) {
      const row = found.get(k)!;
      expectRow(row, s);
      // Server time, inside the test's window; the path is the UTC hour of receipt.
      expect(row.received_at).toBeGreaterThanOrEqual(t0);
      expect(row.received_at).toBeLessThanOrEqual(t1);
      const iso = new Date(row.received_at).toISOString();
      expect([row.dt, row.hour]).toEqual([iso.slice(0, 10), iso.slice(11, 13)]);
      expect(row.filename).toContain(`tenant=default/dt=${row.dt}/hour=${row.hour}/default-0-`);
    }
    // Id-less events got distinct generated ids.
    const generated = rows.filter((r) => !sent.has(r.id)).map((r) => r.id);
    expect(generated.length).toBe([...sent.keys()].filter((k) => k.startsWith("type:")).length);
    for (const id of generated) expect(id).toMatch(UUID);
  });
});
