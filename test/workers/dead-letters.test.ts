// Dead letters are not a dead end: GET /deadletter lists them, POST /deadletter/replay sends them to
// their sink again under their original flush seq (the same idempotency key) and removes them.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EventBatch } from "../../src/columns/batch";
import type { DeadLetter } from "../../src/protocol/routes";
import { R2ParquetSink } from "../../src/sinks/r2-parquet";
import { type FlushContext, idempotencyKey, PermanentSinkError, type Sink } from "../../src/sinks/sink";
import { bucket, ev, replicaStub, tenant } from "./harness";

/** A sink that refuses every batch as permanent while `refusing`, and records what it takes. */
class ToggledSink implements Sink {
  readonly got: { ids: string[]; ctx: FlushContext }[] = [];
  refusing = true;
  constructor(readonly name: string) {}
  async write(batch: EventBatch, ctx: FlushContext): Promise<string[]> {
    if (this.refusing) throw new PermanentSinkError(`${this.name} refuses seq ${ctx.seq}`);
    this.got.push({ ids: batch.events().map((e) => e.id), ctx });
    return [`${this.name}:${idempotencyKey(ctx)}`];
  }
}

interface Listed {
  deadLetters: DeadLetter[];
}

async function deadLetterOne(t: ReturnType<typeof tenant>, sink: ToggledSink): Promise<void> {
  await t.post("/e", [ev("warm", { id: "warm" })]);
  await runInDurableObject(replicaStub(t.name), (instance) => {
    (instance as unknown as { sinkList: Sink[] }).sinkList = [new R2ParquetSink(bucket()), sink];
  });
  await t.post("/e", { events: [ev("x", { id: "dl-1" }), ev("y", { id: "dl-2" })], storageMode: "confirmed" });
  await t.post("/flush", {});
  // SINK_MAX_ATTEMPTS tries, each after its backoff, moved to now.
  for (let i = 0; i < 12; i++) {
    await runInDurableObject(replicaStub(t.name), (_i, state) => {
      state.storage.sql.exec("UPDATE deliveries SET retry_at = 0 WHERE state = 'pending'");
    });
    await runDurableObjectAlarm(replicaStub(t.name));
    const listed = (await (await t.fetch("/deadletter")).json()) as Listed;
    if (listed.deadLetters.length > 0) return;
  }
  throw new Error("the batch was never dead-lettered");
}

describe("dead letters", () => {
  it("lists them, replays them to their sink under the original seq once it takes them, and removes them", async () => {
    const t = tenant("dl-replay");
    const sink = new ToggledSink("picky");
    await deadLetterOne(t, sink);
    const listed = (await (await t.fetch("/deadletter")).json()) as Listed;
    expect(listed.deadLetters).toHaveLength(1);
    const [letter] = listed.deadLetters;
    expect(letter).toMatchObject({ sink: "picky", replica: "dl-replay-0", rows: 3, attempts: 8 });
    expect(letter?.error).toMatch(/^picky refuses seq \d+/);

    // Still refused: 502 with the reason, and the dead letter stays.
    const refused = await t.fetch("/deadletter/replay", { method: "POST", body: "{}" });
    expect(refused.status).toBe(502);
    const refusal = (await refused.json()) as { replayed: unknown[]; failed: { key: string; error: string }[] };
    expect(refusal.replayed).toEqual([]);
    expect(refusal.failed).toEqual([
      expect.objectContaining({ key: letter?.key, error: expect.stringMatching(/refuses/) }),
    ]);
    expect(((await (await t.fetch("/deadletter")).json()) as Listed).deadLetters).toHaveLength(1);

    sink.refusing = false;
    const res = await t.fetch("/deadletter/replay", { method: "POST", body: JSON.stringify({ sink: "picky" }) });
    expect(res.status).toBe(200);
    const report = (await res.json()) as {
      replayed: { key: string; rows: number; files: string[] }[];
      failed: unknown[];
    };
    expect(report.failed).toEqual([]);
    expect(report.replayed).toEqual([
      { key: letter?.key, sink: "picky", rows: 3, files: [`picky:dl-replay/dl-replay-0/${letter?.seq}`] },
    ]);
    expect(sink.got).toHaveLength(1);
    expect(sink.got[0]?.ids.sort()).toEqual(["dl-1", "dl-2", "warm"]);
    expect(sink.got[0]?.ctx).toMatchObject({
      tenant: "dl-replay",
      replica: "dl-replay-0",
      seq: letter?.seq,
      attempt: 8,
    });
    expect(((await (await t.fetch("/deadletter")).json()) as Listed).deadLetters).toEqual([]);
  }, 30_000);

  it("replays only the tenant's own dead letters, and only for admins", async () => {
    const t = tenant("dl-confined");
    const other = "deadletter/tenant=someone/sink=picky/someone-0-3.ndjson.gz";
    const res = await t.fetch("/deadletter/replay", { method: "POST", body: JSON.stringify({ keys: [other] }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "bad_request" } });
    expect((await t.fetch("/deadletter", {}, "key-dl-confined-read")).status).toBe(403);
    expect((await t.fetch("/deadletter/replay", { method: "POST" }, "key-dl-confined-write")).status).toBe(403);
  });
});
