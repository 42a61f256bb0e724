import { describe, expect, it } from "vitest";
import { formatArgs, optionsFromEnv } from "../../sdk/console";

describe("ducktail/console formatting", () => {
  it("formats like util.format: specifiers, then the rest joined by spaces", () => {
    expect(formatArgs(["%s has %d items (%i%%)", "cart", 3.5, "42.9", { a: 1 }])).toBe(
      'cart has 3.5 items (42%) {"a":1}',
    );
    expect(formatArgs(["%j and %o", { x: [1] }])).toBe('{"x":[1]} and %o');
    expect(formatArgs([1, null, undefined, true])).toBe("1 null undefined true");
  });

  it("writes errors with their stack and survives circular objects and bigints", () => {
    const err = new Error("boom");
    expect(formatArgs(["failed:", err])).toBe(`failed: ${err.stack}`);
    const loop: Record<string, unknown> = { n: 1n };
    loop.self = loop;
    expect(formatArgs([loop])).toBe('{"n":"1n","self":"[Circular]"}');
  });

  it("cuts very long lines and says how long they were", () => {
    const line = formatArgs(["x".repeat(20_000)]);
    expect(line.length).toBeLessThan(16_100);
    expect(line.endsWith("… [20000 chars]")).toBe(true);
  });
});

describe("ducktail/console configuration", () => {
  it("reads DUCKTAIL_* variables and ignores empty or invalid numbers", () => {
    expect(
      optionsFromEnv({
        DUCKTAIL_ENDPOINT: "https://dt.example",
        DUCKTAIL_API_KEY: "wk",
        DUCKTAIL_SOURCE: "api",
        DUCKTAIL_ENABLED: "FALSE",
        DUCKTAIL_BATCH_INTERVAL: "250",
        DUCKTAIL_MAX_BATCH_SIZE: "abc",
      }),
    ).toEqual({
      endpoint: "https://dt.example",
      apiKey: "wk",
      source: "api",
      enabled: false,
      batchInterval: 250,
      maxBatchSize: undefined,
    });
    expect(optionsFromEnv({ DUCKTAIL_ENABLED: "1" }).enabled).toBe(true);
    expect(optionsFromEnv({}).enabled).toBeUndefined();
  });
});
