// R2 outages as an outside tester met them: down, hung, flapping. Each shard under test reaches R2
// through a BucketFaults switch (the shared binding stays whole, so the test reads the lake as is);
// FLUSH_RETRY_BASE_MS is 50 (vitest.config.ts), timeouts are shortened per replica below.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { EventBatch } from "../../src/columns/batch";
import type { Env } from "../../src/env";
import { R2ParquetSink } from "../../src/sinks/r2-parquet";
import { type FlushContext, isPermanentFailure, PermanentSinkError, type Sink } from "../../src/sinks/sink";
import { WebhookSink } from "../../src/sinks/webhook";
import { sampleEvents } from "../helpers/events";
import { BucketFaults } from "../helpers/faulty-bucket";
import { allRows, bucket, Client, committedRows, ev, eventually, replicaStub, tenant } from "./harness";

type Tenant = ReturnType<typeof tenant>;

/** Flusher options a test shortens (the replica reads them on every use). */
interface Knobs {
  bucket: R2Bucket;
  maxAttempts: number;
  storageTimeoutMs: number;
  durableAckTimeoutMs: number;
}

interface PendingFlush {
  seq: number;
  attempt: number;
  retryAt: number;
  error: string | null;
}

/**
 * Puts shard `n` of the tenant behind a fresh switch: its sinks and its dead-lettering reach R2
 * through it. `knobs` shorten the replica's timeouts or attempts.
 */
async function behindFaults(t: Tenant, knobs: Partial<Knobs> = {}, n = 0): Promise<BucketFaults> {
  const faults = new BucketFaults();
  await runInDurableObject(replicaStub(t.name, n), (instance) => {
    const r = instance as unknown as { env: Env; sinkList: Sink[] | null; flusher: { options: Knobs } };
    const wrapped = faults.wrap(r.env.EVENTS);
    r.env = { ...r.env, EVENTS: wrapped };
    r.sinkList = null; // built again, from the wrapped bucket
    Object.assign(r.flusher.options, knobs, { bucket: wrapped });
  });
  return faults;
}

/** Rejects if `answer` has not settled within `ms` (a hung request fails the test, boundedly). */
function within<T>(ms: number, answer: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([answer, late]).finally(() => clearTimeout(timer));
}

async function shardStats(t: Tenant, n = 0): Promise<Record<string, unknown>> {
  const s = (await (await t.fetch("/buffer/stats")).json()) as {
    shards: { n: number; stats: Record<string, unknown> }[];
  };
  return s.shards.find((x) => x.n === n)?.stats as Record<string, unknown>;
}

async function pendingFlush(t: Tenant): Promise<PendingFlush | null> {
  return (await shardStats(t)).pendingFlush as PendingFlush | null;
}

/** Ids of a batch the ack took (every event not in its `rejected`). */
function takenIds(ids: string[], ack: Record<string, unknown>): string[] {
  const refused = new Set(((ack.rejected ?? []) as { index: number }[]).map((r) => r.index));
  return ids.filter((_, i) => !refused.has(i));
}

/** Ids of a tenant's Parquet rows that occur more than once. */
function repeated(ids: unknown[]): unknown[] {
  const seen = new Set<unknown>();
  return ids.filter((id) => seen.has(id) || !seen.add(id));
}

describe("R2 outages", () => {
  it("retries a failing R2 with backoff whatever asks for the flush: a handful of tries in 2 s, not a storm", async () => {
    const t = tenant("faults-backoff");
    const faults = await behindFaults(t, { durableAckTimeoutMs: 300 });
    const ws = await t.socket();
    const durableWs = await t.socket();
    faults.down();
    const acked: string[] = [];
    const durable: Promise<Record<string, unknown>>[] = [];
    let durableChain: Promise<unknown> = Promise.resolve();
    const started = Date.now();
    // Every trigger at once: critical events (flush now), high ones (the alarm's age flush), the
    // row threshold and the buffer limit (flush in background), durable group commits, retries.
    for (let b = 0; Date.now() - started < 2000; b++) {
      const ids = Array.from({ length: 20 }, (_, i) => `b${b}-${i}`);
      const events = ids.map((id, i) => ev("c", { id, importance: i === 0 ? "critical" : "high" }));
      acked.push(...takenIds(ids, await ws.events(events, "confirmed")));
      if (b % 25 === 0) {
        const answer = durableChain.then(() => durableWs.events([ev("d", { id: `d${b}` })], "durable"));
        durableChain = answer;
        durable.push(answer);
      }
    }
    const tries = faults.calls.filter((c) => c.at >= started && c.at < started + 2000);
    const perSecond = [0, 1].map((s) =>
      tries.filter((c) => c.at - started >= s * 1000 && c.at - started < (s + 1) * 1000),
    );
    // 50 ms doubling per failure: tries at about 0, 0.05, 0.15, 0.35, 0.75, 1.55 s.
    expect(tries.length).toBeGreaterThanOrEqual(3);
    expect(tries.length).toBeLessThanOrEqual(10);
    expect(perSecond[1]?.length).toBeLessThanOrEqual(3);
    // Every try counted as an attempt: the backoff grew with each, none was skipped or reset.
    expect(((await pendingFlush(t)) as PendingFlush).attempt).toBeGreaterThanOrEqual(tries.length);

    // A durable batch is committed and waits, and says so; or, once the buffer is full, refused whole.
    const answers = await Promise.all(durable);
    const pending = answers.filter((a) => a.code === "durable_pending");
    expect(pending.length).toBeGreaterThanOrEqual(1);
    for (const a of answers)
      if (a !== pending.find((p) => p === a)) expect(a).toMatchObject({ type: "ack", stored: 0 });

    faults.up();
    expect((await within(5000, t.post("/flush", {}))).status).toBe(200);
    const ids = (await allRows(t.name)).map((r) => r.id);
    expect(repeated(ids)).toEqual([]);
    expect(acked.filter((id) => !ids.includes(id))).toEqual([]);
    expect(ids.filter((id) => String(id).startsWith("d"))).toHaveLength(pending.length);
    expect(await committedRows(t.name)).toBe(0);
    ws.close();
    durableWs.close();
  });

  it("tries a failing sink once per POST /flush, never within FLUSH_RETRY_BASE_MS of a failed try, and only pushes its backoff later", async () => {
    const t = tenant("faults-explicit");
    const faults = await behindFaults(t);
    await t.post("/e", { events: [ev("a", { id: "x1" })], storageMode: "confirmed" });
    faults.down();
    expect((await t.post("/flush", {})).status).toBe(502);
    let before = (await pendingFlush(t)) as PendingFlush;
    expect(before.attempt).toBe(1);
    faults.reset();
    for (let i = 0; i < 8; i++) {
      const res = await t.post("/flush", {});
      expect(res.status).toBe(502);
      const after = (await pendingFlush(t)) as PendingFlush;
      expect(after.attempt).toBeGreaterThan(before.attempt); // one more, or two if the alarm's retry came between
      expect(after.retryAt).toBeGreaterThan(before.retryAt);
      before = after;
    }
    expect(faults.calls.length).toBeGreaterThanOrEqual(8);
    expect(faults.calls.length).toBeLessThanOrEqual(12);
    const gaps = faults.calls.slice(1).map((c, i) => c.at - (faults.calls[i]?.at as number));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(45);
    faults.up();
    expect((await t.post("/flush", {})).status).toBe(200);
    expect((await allRows(t.name)).map((r) => r.id)).toEqual(["x1"]);
  });

  it("keeps acked confirmed rows through an outage past SINK_MAX_ATTEMPTS tries without dead-lettering them, then stores them once", async () => {
    const t = tenant("faults-no-deadletter");
    // Two attempts allowed; only the Parquet keys fail, so a dead-letter put would succeed.
    const faults = await behindFaults(t, { maxAttempts: 2 });
    faults.down((key) => key.startsWith("events/"));
    const ids = Array.from({ length: 20 }, (_, i) => `k${i}`);
    const ack = await t.post("/e", { events: ids.map((id) => ev("k", { id })), storageMode: "confirmed" });
    expect(await ack.json()).toMatchObject({ stored: 20 });
    await t.post("/flush", {});
    // The alarm retries on its own, past the two attempts (or, dead-lettering, ends the flush).
    await eventually(async () => {
      const pending = await pendingFlush(t);
      return pending === null || pending.attempt >= 4;
    }, 5000);
    expect(await committedRows(t.name)).toBe(20);
    expect((await bucket().list({ prefix: `deadletter/tenant=${t.name}/` })).objects).toEqual([]);
    expect(await shardStats(t)).toMatchObject({ deadLettered: 0, committedRows: 20 });

    faults.up();
    expect((await t.post("/flush", {})).status).toBe(200);
    const stored = (await allRows(t.name)).map((r) => r.id);
    expect([...stored].sort()).toEqual([...ids].sort());
    expect(await committedRows(t.name)).toBe(0);
  });

  it("takes critical events past MAX_BUFFER_BYTES through an outage, but refuses them too at twice it", async () => {
    const t = tenant("faults-critical-cap");
    const faults = await behindFaults(t);
    faults.down();
    const pad = "c".repeat(900);
    const acked: string[] = [];
    let refused = 0;
    // MAX_BUFFER_BYTES is 60,000 here (vitest.config.ts): ~1 KB events, far past twice it.
    for (let batch = 0; batch < 20 && refused === 0; batch++) {
      const ids = Array.from({ length: 10 }, (_, i) => `c${batch}-${i}`);
      const events = ids.map((id) => ev("crit", { id, importance: "critical", data: { pad } }));
      const answer = (await (await t.post("/e", { events, storageMode: "confirmed" })).json()) as {
        rejected: { index: number; code: string }[];
      };
      const no = new Set(answer.rejected.map((r) => r.index));
      for (const [i, id] of ids.entries()) {
        if (no.has(i)) refused++;
        else acked.push(id);
      }
      expect(answer.rejected.every((r) => r.code === "buffer_full")).toBe(true);
    }
    expect(refused).toBeGreaterThan(0);
    expect(acked.length).toBeGreaterThan(60); // well past the limit before the cap
    const stats = await shardStats(t);
    expect(stats.bufferedBytes as number).toBeLessThanOrEqual(2 * 60_000 + 10 * 1100);
    // Nothing acked is lost: once R2 is back every acked event is stored.
    faults.up();
    expect((await t.post("/flush", {})).status).toBe(200);
    expect((await allRows(t.name)).map((r) => r.id).sort()).toEqual([...acked].sort());
  });

  it("fails a try whose R2 call never returns after STORAGE_TIMEOUT_MS, answers POST /flush in bounded time, and flushes once R2 answers", async () => {
    const t = tenant("faults-hang");
    const faults = await behindFaults(t, { storageTimeoutMs: 200 });
    await t.post("/e", { events: [ev("h", { id: "h1" })], storageMode: "confirmed" });
    faults.hang();
    const started = Date.now();
    const res = await within(5000, t.post("/flush", {}));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { code: string; failed: { shard: number; sinks: unknown[] }[] } };
    expect(body.error).toMatchObject({
      code: "flush_failed",
      failed: [{ shard: 0, sinks: [{ sink: "r2-parquet", error: expect.stringMatching(/no answer within 200 ms/) }] }],
    });
    expect(await pendingFlush(t)).toMatchObject({ attempt: 1 });
    // The hung call counted as a failed try: the next one runs on schedule, and delivers.
    faults.up();
    await eventually(async () => (await committedRows(t.name)) === 0, 5000);
    expect((await allRows(t.name)).map((r) => r.id)).toEqual(["h1"]);
  });

  it("keeps flushing through an R2 that flaps between hanging and answering: every acked event lands once", async () => {
    const t = tenant("faults-flap");
    const faults = await behindFaults(t, { storageTimeoutMs: 100 });
    const ws = await t.socket();
    faults.flap(300, 200, "hang");
    const acked: string[] = [];
    const answers: number[] = [];
    const started = Date.now();
    for (let b = 0; Date.now() - started < 2500; b++) {
      const ids = Array.from({ length: 10 }, (_, i) => `f${b}-${i}`);
      const events = ids.map((id, i) => ev("f", { id, importance: i === 0 ? "critical" : "normal" }));
      acked.push(...takenIds(ids, await ws.events(events, "confirmed")));
      if (b % 40 === 0) answers.push((await within(3000, t.post("/flush", {}))).status);
    }
    expect(answers.every((s) => s === 200 || s === 502)).toBe(true);
    faults.up();
    expect((await within(5000, t.post("/flush", {}))).status).toBe(200);
    const ids = (await allRows(t.name)).map((r) => r.id);
    expect(repeated(ids)).toEqual([]);
    expect(acked.filter((id) => !ids.includes(id))).toEqual([]);
    // Not stuck: the buffer takes new events again.
    expect(await ws.events([ev("after", { id: "after" })], "confirmed")).toMatchObject({ stored: 1, rejected: [] });
    ws.close();
  });

  it("answers a durable batch that cannot reach R2 in time with durable_pending and its seqs, and stores it once later", async () => {
    const t = tenant("faults-durable");
    const faults = await behindFaults(t, { durableAckTimeoutMs: 300 });
    faults.down();
    const ws = await t.socket();
    const reply = await ws.events([ev("d", { id: "dw1" }), ev("d", { id: "dw2" })], "durable");
    expect(reply).toMatchObject({
      type: "error",
      code: "durable_pending",
      pending: { replica: `${t.name}-0`, firstSeq: expect.any(Number), lastSeq: expect.any(Number) },
    });
    const pending = reply.pending as { firstSeq: number; lastSeq: number };
    expect(pending.lastSeq - pending.firstSeq).toBe(1);
    const http = await t.post("/e?storageMode=durable", [ev("d", { id: "dh1" })]);
    expect(http.status).toBe(202);
    expect(await http.json()).toMatchObject({
      error: { code: "durable_pending", pending: { replica: `${t.name}-0` } },
    });
    expect(await committedRows(t.name)).toBe(3);

    faults.up();
    expect((await t.post("/flush", {})).status).toBe(200);
    const rows = await allRows(t.name);
    expect(rows.map((r) => r.id).sort()).toEqual(["dh1", "dw1", "dw2"]);
    const seqs = rows.filter((r) => String(r.id).startsWith("dw")).map((r) => Number(r.seq));
    expect(seqs.sort()).toEqual([pending.firstSeq, pending.lastSeq]);
    ws.close();
  });

  it("answers POST /flush with 502 flush_failed naming the failed shard and sink, and 200 once every shard flushed", async () => {
    const t = tenant("faults-status");
    await t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier: 2 }) });
    const faults = await behindFaults(t, {}, 1);
    const shard = (n: number) => Client.open(t.fetch, `/buffer/ws?shard=${n}`, t.key);
    const [one, two] = await Promise.all([shard(1), shard(2)]);
    await one.events([ev("s", { id: "on-1" })], "confirmed");
    await two.events([ev("s", { id: "on-2" })], "confirmed");
    faults.down();
    const failed = await t.post("/flush", {});
    expect(failed.status).toBe(502);
    const body = (await failed.json()) as { error: { failed: { shard: number }[]; files: string[] } };
    expect(body.error).toMatchObject({
      code: "flush_failed",
      failed: [{ shard: 1, sinks: [{ sink: "r2-parquet", error: "R2 unavailable (test)" }] }],
    });
    expect(body.error.failed).toHaveLength(1);
    expect(body.error.files).toHaveLength(1); // shard 2's object

    faults.up();
    const ok = await t.post("/flush", {});
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ failed: [] });
    expect((await allRows(t.name)).map((r) => r.id).sort()).toEqual(["on-1", "on-2"]);
    one.close();
    two.close();
  });
});

/** A batch whose rows the Parquet encoder cannot take (its Arrow table fails to build). */
class Unencodable extends EventBatch {
  override byHour(): [number, EventBatch][] {
    return [[0, this]];
  }
  override table(): never {
    throw new Error("column data cannot be encoded (test)");
  }
}

describe("sink errors", () => {
  const ctx: FlushContext = { tenant: "t", replica: "t-0", seq: 1, from: 0, to: 0, attempt: 0, timeoutMs: 100 };
  const batch = () =>
    EventBatch.from(sampleEvents(3, 0).map((e, i) => ({ ...e, tenant: "t", replica: "t-0", seq: i })));

  it("classify a webhook's 400, 413, 415 and 422 as refusing the data, and 5xx, 429 and timeouts as transient", async () => {
    const real = globalThis.fetch;
    let answer: (signal: AbortSignal) => Promise<Response> = async () => new Response("ok");
    globalThis.fetch = ((_: RequestInfo, init: RequestInit) => answer(init.signal as AbortSignal)) as typeof fetch;
    try {
      const sink = new WebhookSink({ url: "https://hooks.example/x" });
      const outcome = async (status: number) => {
        answer = async () => new Response("no", { status });
        const err = await sink.write(batch(), ctx).catch((e: unknown) => e);
        return isPermanentFailure(sink, err) ? "permanent" : "transient";
      };
      for (const status of [400, 413, 415, 422]) expect(await outcome(status)).toBe("permanent");
      for (const status of [401, 404, 408, 429, 500, 502, 503]) expect(await outcome(status)).toBe("transient");
      // No answer: the request's signal (ctx.timeoutMs) ends the try, as it aborts a real fetch.
      answer = (signal) =>
        new Promise<Response>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
      const err = await sink.write(batch(), ctx).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: "TimeoutError" });
      expect(isPermanentFailure(sink, err)).toBe(false);
    } finally {
      globalThis.fetch = real;
    }
  }, 5000);

  it("classify R2 failures and timeouts as transient, rows the Parquet encoder refuses as permanent, and honour a sink's own isPermanent", async () => {
    const faults = new BucketFaults();
    const sink = new R2ParquetSink(faults.wrap(bucket()), "faults-classify");
    faults.down();
    expect(isPermanentFailure(sink, await sink.write(batch(), ctx).catch((e: unknown) => e))).toBe(false);
    faults.hang();
    const hung = await sink.write(batch(), ctx).catch((e: unknown) => e);
    expect(hung).toMatchObject({ name: "StorageTimeoutError" });
    expect(isPermanentFailure(sink, hung)).toBe(false);
    faults.up();
    const refused = await sink.write(new Unencodable(batch().parts), ctx).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PermanentSinkError);
    const picky: Sink = { name: "picky", write: async () => [], isPermanent: (e) => String(e).includes("schema") };
    expect(isPermanentFailure(picky, new Error("schema mismatch"))).toBe(true);
    expect(isPermanentFailure(picky, new PermanentSinkError("ignored: the sink decides"))).toBe(false);
  });
});
