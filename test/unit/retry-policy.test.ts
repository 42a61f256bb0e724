import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY_POLICY, flushAnswerMs, retryDelay, retryPolicyFrom } from "../../src/replica/retry-policy";
import { StorageTimeoutError, timedBucket, withTimeout } from "../../src/sinks/timeout";

describe("retry policy", () => {
  it("doubles the wait per failure from the base up to the cap, spread by at most a quarter either way", () => {
    const low = () => 0;
    const high = () => 0.999_999;
    expect([1, 2, 3, 4].map((a) => retryDelay(a, 1000, 10_000, low))).toEqual([750, 1500, 3000, 6000]);
    expect(retryDelay(5, 1000, 10_000, low)).toBe(7500); // 16 s capped at 10 s
    expect(retryDelay(1_000, 1000, 10_000, high)).toBeCloseTo(12_500, 0); // no overflow however many tries
    expect(retryDelay(0, 50, 10_000, low)).toBe(37.5);
  });

  it("reads its vars as milliseconds, defaults otherwise, and refuses nonsense", () => {
    expect(retryPolicyFrom({})).toEqual(DEFAULT_RETRY_POLICY);
    expect(DEFAULT_RETRY_POLICY).toEqual({ storageTimeoutMs: 10_000, durableAckTimeoutMs: 15_000, retryMaxMs: 10_000 });
    expect(
      retryPolicyFrom({ STORAGE_TIMEOUT_MS: "300", DURABLE_ACK_TIMEOUT_MS: "800", FLUSH_RETRY_MAX_MS: "5000" }),
    ).toEqual({ storageTimeoutMs: 300, durableAckTimeoutMs: 800, retryMaxMs: 5000 });
    expect(() => retryPolicyFrom({ STORAGE_TIMEOUT_MS: "0" })).toThrow(/invalid numeric var/);
    expect(() => retryPolicyFrom({ FLUSH_RETRY_MAX_MS: "soon" })).toThrow(/invalid numeric var/);
    expect(flushAnswerMs({ storageTimeoutMs: 300 })).toBe(600);
  });
});

describe("storage timeouts", () => {
  const never = () => new Promise<never>(() => {});

  it("fails a call that does not settle in time with a StorageTimeoutError naming it", async () => {
    const started = Date.now();
    const err = await withTimeout(never(), 50, "R2 put k").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageTimeoutError);
    expect(err).toMatchObject({ message: "R2 put k: no answer within 50 ms", ms: 50 });
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(withTimeout(Promise.resolve(7), 50, "fast")).resolves.toBe(7);
  });

  it("bounds each get, head, put, delete and list of a bucket and passes their answers through", async () => {
    const answers = { head: null, get: null, put: { key: "k" }, delete: undefined, list: { objects: [] } };
    let hang = false;
    const call = (v: unknown) => (hang ? never() : Promise.resolve(v));
    const inner = {
      head: () => call(answers.head),
      get: () => call(answers.get),
      put: () => call(answers.put),
      delete: () => call(answers.delete),
      list: () => call(answers.list),
    } as unknown as R2Bucket;
    const b = timedBucket(inner, 30);
    await expect(b.put("k", "v")).resolves.toEqual({ key: "k" });
    await expect(b.list({ prefix: "p/" })).resolves.toEqual({ objects: [] });
    hang = true;
    for (const [what, run] of [
      ["R2 head k", () => b.head("k")],
      ["R2 get k", () => b.get("k")],
      ["R2 put k", () => b.put("k", "v")],
      ["R2 delete 2 keys", () => b.delete(["a", "b"])],
      ["R2 list p/", () => b.list({ prefix: "p/" })],
    ] as const) {
      await expect(run()).rejects.toMatchObject({ name: "StorageTimeoutError", what });
    }
  });
});
