import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EventBatch } from "../../src/columns/batch";
import { R2NdjsonSink } from "../../src/sinks/ndjson";
import { R2ParquetSink } from "../../src/sinks/r2-parquet";
import { type FlushContext, idempotencyKey, PermanentSinkError, type Sink } from "../../src/sinks/sink";
import { WebhookSink } from "../../src/sinks/webhook";
import { sampleEvents } from "../helpers/events";
import { allRows, bucket, ev, replicaStub, tenant } from "./harness";

/**
 * A sink that records what it got, failing its first `failures` tries (Infinity: always), as down
 * (transient) or, with `refuses`, as refusing the data (permanent).
 */
class RecordingSink implements Sink {
  readonly got: { ids: string[]; ctx: FlushContext }[] = [];
  tries = 0;
  constructor(
    readonly name: string,
    private failures = 0,
    private readonly refuses = false,
  ) {}
  async write(batch: EventBatch, ctx: FlushContext): Promise<string[]> {
    this.tries++;
    if (this.tries <= this.failures) {
      const message = `${this.name} ${this.refuses ? "refuses" : "down"} (try ${this.tries})`;
      throw this.refuses ? new PermanentSinkError(message) : new Error(message);
    }
    this.got.push({ ids: batch.events().map((e) => e.id), ctx });
    return [`${this.name}:${ctx.seq}`];
  }
}

/** A sink that keeps every batch it is given, to read it later (and says so: no `releasesBatch`). */
class KeepingSink implements Sink {
  readonly kept: EventBatch[] = [];
  constructor(
    readonly name: string,
    readonly releasesBatch?: boolean,
  ) {}
  async write(batch: EventBatch): Promise<string[]> {
    this.kept.push(batch);
    return [];
  }
}

/** Replaces a replica's sinks (its private cache) for the rest of the test. */
async function useSinks(tenantName: string, sinks: Sink[]): Promise<void> {
  await runInDurableObject(replicaStub(tenantName), (instance) => {
    (instance as unknown as { sinkList: Sink[] }).sinkList = sinks;
  });
}

async function replicaStats(t: ReturnType<typeof tenant>): Promise<Record<string, unknown>> {
  const s = (await (await t.fetch("/buffer/stats")).json()) as { shards: { stats: Record<string, unknown> }[] };
  return s.shards[0]?.stats as Record<string, unknown>;
}

/** Moves every failing sink's backoff to now and runs the alarm. */
async function retryNow(tenantName: string): Promise<void> {
  await runInDurableObject(replicaStub(tenantName), (_i, state) => {
    state.storage.sql.exec("UPDATE deliveries SET retry_at = 0 WHERE state = 'pending'");
  });
  await runDurableObjectAlarm(replicaStub(tenantName));
}

describe("sinks", () => {
  it("gives a custom sink exactly the flushed events, beside the Parquet sink", async () => {
    const t = tenant("sink-custom");
    await t.post("/e", [ev("warm", { id: "warm" })]);
    const custom = new RecordingSink("custom");
    await useSinks(t.name, [new R2ParquetSink(bucket()), custom]);
    await t.post("/e", [ev("a", { id: "c1" }), ev("b", { id: "c2" })]);
    await t.post("/e", { events: [ev("c", { id: "c3" })], storageMode: "confirmed" });
    const res = (await (await t.post("/flush", {})).json()) as { files: string[] };
    expect(res.files.filter((f) => f.startsWith("custom:"))).toHaveLength(1);
    expect(custom.got).toHaveLength(1);
    expect(custom.got[0]?.ids.filter((id) => id !== "warm").sort()).toEqual(["c1", "c2", "c3"]);
    expect(idempotencyKey(custom.got[0]?.ctx as FlushContext)).toBe(
      `sink-custom/sink-custom-0/${custom.got[0]?.ctx.seq}`,
    );
    const parquetIds = (await allRows(t.name)).map((r) => r.id);
    expect(parquetIds).toEqual(expect.arrayContaining(["c1", "c2", "c3"]));
  });

  it("retries a sink that fails N times with backoff, then delivers everything once", async () => {
    const t = tenant("sink-flaky");
    await t.post("/e", [ev("warm", { id: "warm" })]);
    const flaky = new RecordingSink("flaky", 3);
    await useSinks(t.name, [new R2ParquetSink(bucket()), flaky]);
    await t.post("/e", { events: [ev("x", { id: "f1" }), ev("y", { id: "f2" })], storageMode: "confirmed" });
    expect((await t.post("/flush", {})).status).toBe(502); // coordinator reports the shard as failed
    const stats = await replicaStats(t);
    expect(stats.pendingFlush).toMatchObject({ attempt: 1, error: "flaky down (try 1)" });
    expect((stats.sinks as Record<string, { failures: number }>).flaky?.failures).toBe(1);
    expect(stats.committedRows).toBe(2); // kept until every sink has the batch
    // Parquet already has it; later events flush to Parquet while the flaky sink waits out its backoff.
    await t.post("/e", [ev("z", { id: "f3" })]);
    for (let i = 0; i < 3; i++) await retryNow(t.name);
    expect(flaky.got).toHaveLength(1); // the 4th try delivered the failed batch
    await t.post("/flush", {});
    expect(
      flaky.got
        .flatMap((g) => g.ids)
        .filter((id) => id !== "warm")
        .sort(),
    ).toEqual(["f1", "f2", "f3"]);
    expect(new Set(flaky.got.map((g) => g.ctx.seq)).size).toBe(flaky.got.length); // each flush once
    const after = await replicaStats(t);
    expect(after).toMatchObject({ committedRows: 0, openFlushes: 0, deadLettered: 0 });
    expect(
      (await allRows(t.name))
        .filter((r) => String(r.id).startsWith("f"))
        .map((r) => r.id)
        .sort(),
    ).toEqual(["f1", "f2", "f3"]);
  });

  it("dead-letters a batch a sink refuses as permanent SINK_MAX_ATTEMPTS times, without blocking the Parquet sink", async () => {
    const t = tenant("sink-dead");
    await t.post("/e", [ev("warm", { id: "warm" })]);
    const broken = new RecordingSink("broken", Number.POSITIVE_INFINITY, true);
    await useSinks(t.name, [new R2ParquetSink(bucket()), broken]);
    await t.post("/e", { events: [ev("x", { id: "d1" })], storageMode: "confirmed" });
    await t.post("/flush", {});
    await t.post("/e", [ev("y", { id: "d2" })]);
    await t.post("/flush", {}); // Parquet goes on with the newer flush meanwhile
    expect((await allRows(t.name)).map((r) => r.id)).toEqual(expect.arrayContaining(["d1", "d2"]));
    // 8 tries per batch, the two batches in order: at most 16 rounds of retries.
    let stats = await replicaStats(t);
    for (let i = 0; i < 16 && stats.openFlushes !== 0; i++) {
      await retryNow(t.name);
      stats = await replicaStats(t);
    }
    expect(stats).toMatchObject({ committedRows: 0, deadLettered: 2 });
    const dead = await bucket().list({ prefix: `deadletter/tenant=${t.name}/sink=broken/` });
    expect(dead.objects).toHaveLength(2);
    const first = await bucket().get(dead.objects[0]?.key as string);
    expect(first?.customMetadata).toMatchObject({ sink: "broken", attempts: "8" });
    expect(first?.customMetadata?.error).toMatch(/^broken refuses/);
    const text = await new Response(first?.body.pipeThrough(new DecompressionStream("gzip"))).text();
    expect(
      text
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).id),
    ).toEqual(expect.arrayContaining(["d1"]));
  }, 30_000);

  it("writes gzipped NDJSON and posts webhooks with an idempotency key and only the events asked for", async () => {
    const t = tenant("sink-builtin");
    await t.post("/e", [ev("warm", { id: "warm" })]);
    const posted: { key: string | null; auth: string | null; body: { events: { id: string }[] } }[] = [];
    await runInDurableObject(replicaStub(t.name), (instance) => {
      globalThis.fetch = (async (input: RequestInfo, init?: RequestInit) => {
        const req = new Request(input, init);
        posted.push({
          key: req.headers.get("idempotency-key"),
          auth: req.headers.get("authorization"),
          body: (await req.json()) as { events: { id: string }[] },
        });
        return new Response("ok");
      }) as typeof fetch;
      (instance as unknown as { sinkList: Sink[] }).sinkList = [
        new R2NdjsonSink(bucket()),
        new WebhookSink({
          url: "https://hooks.example/ducktail",
          authorization: "Bearer s3cret",
          filter: (e) => e.importance === "critical",
        }),
      ];
    });
    await t.post("/e", [ev("n", { id: "w1" }), ev("c", { id: "w2", importance: "critical", data: { a: [1] } })]);
    await t.post("/flush", {});
    expect(posted).toHaveLength(1);
    expect(posted[0]?.auth).toBe("Bearer s3cret");
    expect(posted[0]?.key).toMatch(/^sink-builtin\/sink-builtin-0\/\d+$/);
    expect(posted[0]?.body.events).toMatchObject([{ id: "w2", data: { a: [1] } }]);
    const listed = await bucket().list({ prefix: `ndjson/tenant=${t.name}/` });
    const obj = await bucket().get(listed.objects.at(-1)?.key as string);
    const lines = (await new Response(obj?.body.pipeThrough(new DecompressionStream("gzip"))).text())
      .trim()
      .split("\n");
    expect(lines.map((l) => JSON.parse(l).id)).toEqual(["warm", "w1", "w2"]);
    expect(JSON.parse(lines[2] as string)).toMatchObject({ importance: "critical", data: { a: [1] } });
  });

  it("runs transform before buffering (redact, drop) and reports every completed flush to onflush", async () => {
    const t = tenant("sink-hooks");
    await t.post("/e", [ev("warm", { id: "warm" })]);
    const reports: { seq: number; rows: number; sinks: Record<string, { state: string }> }[] = [];
    await runInDurableObject(replicaStub(t.name), (instance) => {
      const r = instance as unknown as {
        transform: (e: { type: string; data: Record<string, unknown> }) => unknown;
        onflush: (report: (typeof reports)[number]) => void;
      };
      r.transform = (e) => {
        if (e.type === "noise") return null;
        if (e.type === "boom") throw new Error("cannot transform");
        const { email: _email, ...data } = e.data;
        return { ...e, data: { ...data, redacted: true } };
      };
      r.onflush = (report) => reports.push(report);
    });
    const sub = await t.socket("?client=hooks");
    const { subscription } = await sub.request({ type: "subscribe", filter: { type: "signup" } });
    const res = await t.post("/e", [
      ev("signup", { id: "h1", data: { email: "a@b.c", plan: "pro" } }),
      ev("noise", { id: "h2" }),
      ev("boom", { id: "h3" }),
    ]);
    expect(await res.json()).toMatchObject({
      received: 3,
      stored: 1,
      rejected: [{ index: 2, code: "invalid_event", message: "transform: cannot transform" }],
    });
    const tail = await sub.next();
    expect(tail).toMatchObject({
      type: "tail",
      subscription,
      events: [{ id: "h1", data: { plan: "pro", redacted: true } }],
    });
    expect(JSON.stringify(tail)).not.toContain("a@b.c");
    await t.post("/flush", {});
    const rows = await allRows(t.name);
    expect(rows.map((r) => r.id).sort()).toEqual(["h1", "warm"]);
    expect(JSON.parse(rows.find((r) => r.id === "h1")?.data as string)).toEqual({ plan: "pro", redacted: true });
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ rows: 2, sinks: { "r2-parquet": { state: "delivered" } } });
    expect(await replicaStats(t)).toMatchObject({ filtered: 1 });
    sub.close();
  });

  it("reuses flushed events' memory only when every sink releases its batch", async () => {
    for (const releases of [false, true]) {
      const t = tenant(`sink-reuse-${releases}`);
      await t.post("/e", [ev("warm", { id: "warm" })]);
      const sink = new KeepingSink("keeper", releases || undefined);
      await useSinks(t.name, [sink]);
      const sent: string[] = [];
      await runInDurableObject(replicaStub(t.name), async (instance) => {
        // Straight into the buffer: full-size blocks (8,192 rows) are past the test vars' buffer limit.
        const replica = instance as unknown as {
          append(events: unknown[], receivedAt: number, committed: boolean): number;
          flush(): Promise<unknown>;
        };
        for (let round = 0; round < 2; round++) {
          for (let i = 0; i < 20; i++) {
            const events = sampleEvents(1000, (round * 20 + i) * 1000);
            sent.push(...events.map((e) => e.id));
            replica.append(events, Date.now(), false);
          }
          await replica.flush();
        }
      });
      const [first, second] = sink.kept.slice(-2) as [EventBatch, EventBatch];
      const shared = second.parts.filter((p) => first.parts.some((q) => q.columns === p.columns)).length;
      expect(shared > 0).toBe(releases);
      // A sink that keeps its batches reads them as they were, long after the flush.
      if (!releases)
        expect(sink.kept.flatMap((b) => b.events().map((e) => e.id)).filter((id) => id !== "warm")).toEqual(sent);
    }
  });
});
