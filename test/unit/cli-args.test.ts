import { describe, expect, it } from "vitest";
import {
  DEFAULT_URL,
  listOf,
  parseCommand,
  parseWhere,
  resolveConfig,
  sampleOf,
  tailFilter,
  UsageError,
} from "../../sdk/cli/args";
import { timeArg } from "../../sdk/cli/query";

describe("ducktail CLI arguments", () => {
  describe("parseWhere", () => {
    it.each([
      ["data.status>=500", { path: "data.status", op: "gte", value: 500 }],
      ["data.ms<=12.5", { path: "data.ms", op: "lte", value: 12.5 }],
      ["data.ms>0", { path: "data.ms", op: "gt", value: 0 }],
      ["data.ms<3", { path: "data.ms", op: "lt", value: 3 }],
      ["userId=u1", { path: "userId", op: "eq", value: "u1" }],
      ["userId==u1", { path: "userId", op: "eq", value: "u1" }],
      ["source!=api", { path: "source", op: "ne", value: "api" }],
      ["data.path^=/api", { path: "data.path", op: "prefix", value: "/api" }],
      ["data.ok=true", { path: "data.ok", op: "eq", value: true }],
      ["data.x=null", { path: "data.x", op: "eq", value: null }],
      ['data.code="500"', { path: "data.code", op: "eq", value: "500" }],
      ["data.q=a=b", { path: "data.q", op: "eq", value: "a=b" }],
    ])("reads %s", (raw, predicate) => {
      expect(parseWhere(raw)).toEqual(predicate);
    });

    it("refuses a predicate without an operator or an ordering without a number", () => {
      expect(() => parseWhere("data.status")).toThrow(UsageError);
      expect(() => parseWhere("=5")).toThrow(UsageError);
      expect(() => parseWhere("data.status>high")).toThrow(/needs a number/);
    });
  });

  it("builds the server's filter from repeated and comma-separated flags", () => {
    expect(
      tailFilter({ source: ["web-*,api"], type: ["signup*", "error"], "min-importance": "high", where: ["data.a>1"] }),
    ).toEqual({
      source: ["web-*", "api"],
      type: ["signup*", "error"],
      minImportance: "high",
      where: [{ path: "data.a", op: "gt", value: 1 }],
    });
    expect(tailFilter({})).toEqual({});
    expect(() => tailFilter({ "min-importance": "urgent" })).toThrow(/low, normal, high, critical/);
  });

  it("drops empty list items", () => {
    expect(listOf(["a,,b", ""])).toEqual(["a", "b"]);
    expect(listOf(undefined)).toBeUndefined();
  });

  it("takes --url/--key before DUCKTAIL_URL/DUCKTAIL_KEY, and defaults to the dev server", () => {
    const env = { DUCKTAIL_URL: "https://env.example/", DUCKTAIL_KEY: "ek" };
    expect(resolveConfig({ url: "http://flag:1/", key: "fk" }, env)).toEqual({ url: "http://flag:1", key: "fk" });
    expect(resolveConfig({}, env)).toEqual({ url: "https://env.example", key: "ek" });
    expect(resolveConfig({}, {})).toEqual({ url: DEFAULT_URL, key: undefined });
    expect(() => resolveConfig({ url: "localhost:8787" }, {})).toThrow(/http\(s\)/);
  });

  it("takes every URL form the client takes, normalised to the Worker's base URL", () => {
    for (const url of [
      "ws://127.0.0.1:8787/ws",
      "ws://127.0.0.1:8787/ws/",
      "http://127.0.0.1:8787//",
      "ws://127.0.0.1:8787",
    ]) {
      expect(resolveConfig({ url }, {}).url, url).toBe("http://127.0.0.1:8787");
    }
    expect(resolveConfig({}, { DUCKTAIL_URL: "wss://example.com/ducktail/ws" }).url).toBe(
      "https://example.com/ducktail",
    );
    expect(resolveConfig({ url: "wss://h.example/ws?key=uk" }, {})).toEqual({ url: "https://h.example", key: "uk" });
    expect(resolveConfig({ url: "wss://h.example/ws?key=uk", key: "fk" }, {}).key).toBe("fk");
    expect(() => resolveConfig({ url: "ftp://h.example" }, {})).toThrow(UsageError);
    expect(() => resolveConfig({}, { DUCKTAIL_URL: "nope" })).toThrow(/DUCKTAIL_URL "nope" is not a URL/);
  });

  it("turns parseArgs errors and extra arguments into usage errors naming the command", () => {
    const options = { json: { type: "boolean" } } as const;
    expect(parseCommand("stats", ["--json", "--url", "http://x"], options, 0).values).toMatchObject({
      json: true,
      url: "http://x",
    });
    for (const argv of [["--nope"], ["--url"], ["extra"]]) {
      try {
        parseCommand("stats", argv, options, 0);
        expect.unreachable(`${argv} was accepted`);
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        expect((err as UsageError).command).toBe("stats");
      }
    }
    expect(parseCommand("stats", ["extra", "--help"], options, 0).values.help).toBe(true);
  });

  it("takes a sample share in (0, 1]", () => {
    expect(sampleOf("0.25")).toBe(0.25);
    expect(sampleOf(undefined)).toBeUndefined();
    for (const bad of ["0", "1.5", "x"]) expect(() => sampleOf(bad)).toThrow(UsageError);
  });

  it("reads query times as epoch ms, ISO-8601 or a duration back from now", () => {
    const now = 1_800_000_000_000;
    expect(timeArg("30m", now, "--from")).toBe(now - 1_800_000);
    expect(timeArg("2d", now, "--from")).toBe(now - 172_800_000);
    expect(timeArg("1700000000000", now, "--from")).toBe(1_700_000_000_000);
    expect(timeArg("2026-01-01T00:00:00Z", now, "--from")).toBe(Date.parse("2026-01-01T00:00:00Z"));
    expect(() => timeArg("yesterday", now, "--from")).toThrow(UsageError);
  });
});
