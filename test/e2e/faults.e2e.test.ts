// End to end: `ducktail/client` and the HTTP API against a Worker whose R2 goes down, hangs or flaps
// on command (bench/workers/faults: DuckTail's own Worker, coordinator and replica; its replicas
// reach R2 through a switch at POST /__faults), under Miniflare.
import { rmSync } from "node:fs";
import { resolve } from "node:path";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DuckTailClient, type DuckTailClientError } from "../../sdk/index";
import { duplicates, lakeRows } from "../helpers/lake";
// @ts-expect-error plain .mjs helper without types
import { buildWorker, startWorker } from "../helpers/miniflare.mjs";

const FAULTS_CONFIG = resolve(import.meta.dirname, "../../bench/workers/faults/wrangler.toml");
// Short enough for a test, in the same proportions as the defaults.
const VARS = { STORAGE_TIMEOUT_MS: "300", DURABLE_ACK_TIMEOUT_MS: "800", FLUSH_RETRY_BASE_MS: "100" };
/** A shard answers POST /flush within two storage timeouts; the coordinator allows 5 s more. */
const FLUSH_ANSWER_MS = 2 * 300 + 5_000;

describe("R2 outages, end to end", { timeout: 30_000 }, () => {
  let bundle: string;
  let mf: Miniflare;
  let url: string;
  const clients: DuckTailClient[] = [];

  beforeAll(async () => {
    bundle = buildWorker(FAULTS_CONFIG);
    ({ mf, url } = await startWorker(bundle, { vars: VARS }));
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(0)));
    await mf?.dispose();
    if (bundle) rmSync(bundle, { recursive: true, force: true });
  });

  async function r2(mode: "down" | "hang" | "up" | "flap", query = ""): Promise<void> {
    const res = await fetch(`${url}/__faults?mode=${mode}${query}`, { method: "POST" });
    expect(res.status).toBe(204);
  }

  /** POST /flush, failing the test if it takes longer than the Worker promises. */
  async function flush(): Promise<{ status: number; ms: number }> {
    const started = Date.now();
    const res = await fetch(`${url}/flush`, { method: "POST", signal: AbortSignal.timeout(FLUSH_ANSWER_MS + 2_000) });
    await res.body?.cancel();
    return { status: res.status, ms: Date.now() - started };
  }

  async function lakeIds(prefix: string): Promise<string[]> {
    return (await lakeRows(mf)).rows.map((r) => r.id).filter((id) => id.startsWith(prefix));
  }

  it("rejects a durable track() R2 cannot take in time with durable_pending, never sends it again, and stores it once", async () => {
    for (const transport of ["websocket", "http"] as const) {
      await r2("down");
      const errors: DuckTailClientError[] = [];
      const c = new DuckTailClient({
        url,
        storageMode: "durable",
        transport,
        batchInterval: 5,
        onError: (e) => errors.push(e),
      });
      clients.push(c);
      const id = `pending-${transport}`;
      const answer = await c.track("pending", { transport }, { id }).catch((err: DuckTailClientError) => err);
      expect(answer).toMatchObject({ name: "DuckTailClientError", code: "durable_pending", eventId: id });
      expect((answer as DuckTailClientError).message).toMatch(/do not resend/);
      expect(errors.map((e) => e.code)).toEqual(["durable_pending"]);
      expect(c.unacked).toBe(0);
      expect(c.resent).toBe(0);
      await r2("up");
      expect((await flush()).status).toBe(200);
      await c.close();
    }
    const ids = await lakeIds("pending-");
    expect(ids.sort()).toEqual(["pending-http", "pending-websocket"]);
  });

  it("answers every POST /flush in bounded time under an R2 that flaps between hanging and answering, and stores every acked event once", async () => {
    // The outside tester's 7 s hung / 3 s up, at a tenth of the scale.
    await r2("flap", "&downMs=700&upMs=300&fault=hang");
    const c = new DuckTailClient({
      url,
      storageMode: "confirmed",
      batchInterval: 5,
      maxBatchSize: 50,
      warnings: false,
    });
    clients.push(c);
    const acked: string[] = [];
    const refused = new Set<string>();
    const answers: { status: number; ms: number }[] = [];
    const started = Date.now();
    for (let round = 0; Date.now() - started < 4_000; round++) {
      const sent = Array.from({ length: 50 }, (_, i) => {
        const id = `flap-${round}-${i}`;
        return c.track("flap", { round, i }, { id, importance: i === 0 ? "critical" : "normal" }).then(
          () => void acked.push(id),
          (err: DuckTailClientError) => void refused.add(err.code),
        );
      });
      await Promise.all(sent);
      if (round % 10 === 0) answers.push(await flush());
    }
    expect(answers.length).toBeGreaterThan(0);
    for (const a of answers) {
      expect([200, 502]).toContain(a.status);
      expect(a.ms).toBeLessThan(FLUSH_ANSWER_MS);
    }
    // Refusals push back on the client (the buffer is full), nothing else.
    expect([...refused].filter((code) => code !== "buffer_full")).toEqual([]);
    await r2("up");
    expect((await flush()).status).toBe(200);
    const ids = await lakeIds("flap-");
    expect(duplicates(ids)).toEqual([]);
    expect(acked.filter((id) => !ids.includes(id))).toEqual([]);
  });
});
