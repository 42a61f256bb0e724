import { describe, expect, it } from "vitest";
import { authorize, parseKeys } from "../../src/protocol/auth";
import type { DuckTailError } from "../../src/protocol/errors";

const keys = parseKeys(
  JSON.stringify({ w: { tenant: "acme", scope: "write" }, a: { tenant: "acme", scope: "admin" } }),
).table;

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
    expect(parseKeys(undefined)).toEqual({ table: null, errors: [] });
    expect(authorize(null, null, "admin")).toEqual({ tenant: "default", scope: "admin" });
  });

  it("answers 401 for a missing or unknown key and 403 for the wrong scope", () => {
    expect(status(() => authorize(keys, null, "write"))).toBe(401);
    expect(status(() => authorize(keys, "zzz", "write"))).toBe(401);
    expect(status(() => authorize(keys, "w", "read"))).toBe(403);
    expect(authorize(keys, "w", "write")).toEqual({ tenant: "acme", scope: "write" });
    expect(authorize(keys, "a", "read")).toEqual({ tenant: "acme", scope: "admin" });
  });

  it("serves the valid keys and names each entry it cannot use, never opening the Worker", () => {
    const loaded = parseKeys(
      JSON.stringify({
        good: { tenant: "acme", scope: "write" },
        k1: { tenant: "a/../b", scope: "write" },
        k2: { tenant: "../x", scope: "write" },
        k3: { tenant: "x y", scope: "write" },
        k4: { tenant: "a..b", scope: "write" },
        k5: { tenant: "a", scope: "root" },
      }),
    );
    expect([...(loaded.table ?? new Map()).keys()]).toEqual(["good"]);
    expect(loaded.errors).toHaveLength(5);
    expect(loaded.errors[0]).toMatch(/ending "k1": tenant must be/);
    expect(loaded.errors[4]).toMatch(/ending "k5": scope must be one of write, read, admin/);
    for (const secret of ["{", "[1]", '"x"']) {
      const broken = parseKeys(secret);
      expect(broken.table, secret).toEqual(new Map());
      expect(broken.errors[0]).toMatch(/no key is accepted/);
      expect(status(() => authorize(broken.table, "good", "write"))).toBe(401);
    }
  });
});
