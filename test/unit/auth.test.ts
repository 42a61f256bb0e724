import { describe, expect, it } from "vitest";
import { authorize, parseKeys } from "../../src/protocol/auth";
import type { DuckTailError } from "../../src/protocol/errors";

const keys = parseKeys(
  JSON.stringify({ w: { tenant: "acme", scope: "write" }, a: { tenant: "acme", scope: "admin" } }),
);

function status(fn: () => unknown): number | null {
  try {
    fn();
    return null;
  } catch (err) {
    return (err as DuckTailError).status;
  }
}

describe("keys and scopes", () => {
  it("serves the open tenant 'default' as admin when no keys are configured", () => {
    expect(parseKeys(undefined)).toBeNull();
    expect(authorize(null, null, "admin")).toEqual({ tenant: "default", scope: "admin" });
  });

  it("answers 401 for a missing or unknown key and 403 for the wrong scope", () => {
    expect(status(() => authorize(keys, null, "write"))).toBe(401);
    expect(status(() => authorize(keys, "zzz", "write"))).toBe(401);
    expect(status(() => authorize(keys, "w", "read"))).toBe(403);
    expect(authorize(keys, "w", "write")).toEqual({ tenant: "acme", scope: "write" });
    expect(authorize(keys, "a", "read")).toEqual({ tenant: "acme", scope: "admin" });
  });

  it("refuses malformed key tables with a clear message", () => {
    expect(() => parseKeys("{")).toThrow(/not valid JSON/);
    expect(() => parseKeys(JSON.stringify({ k: { tenant: "a/b", scope: "write" } }))).toThrow(/tenant/);
    expect(() => parseKeys(JSON.stringify({ k: { tenant: "a", scope: "root" } }))).toThrow(/scope/);
  });
});
