import { DuckTailError, ErrorCode } from "./errors";

export const SCOPES = ["write", "read", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  tenant: string;
  scope: Scope;
}

/** What `DUCKTAIL_KEYS` holds: `{"<key>": {"tenant": "<t>", "scope": "write|read|admin"}}`. */
export type KeyTable = Map<string, Principal>;

/** The tenant served when no keys are configured (local development). */
export const OPEN_TENANT = "default";
const TENANT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** A key table as loaded: the valid keys, and what was wrong with the rest. */
export interface LoadedKeys {
  /** Null when no keys are configured (one open tenant); never null when some were given. */
  table: KeyTable | null;
  /** One message per entry (or for the whole secret) that could not be used; keys never appear whole. */
  errors: string[];
}

/**
 * Reads `DUCKTAIL_KEYS`. An entry with a bad tenant or scope is left out and named in `errors`
 * while the valid ones serve; a secret that is not a JSON object gives an empty table (every key
 * refused, never the open tenant) and says why.
 */
export function parseKeys(secret: string | undefined): LoadedKeys {
  if (!secret || secret.trim() === "") return { table: null, errors: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(secret);
  } catch {
    return { table: new Map(), errors: ["DUCKTAIL_KEYS is not valid JSON: no key is accepted"] };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return {
      table: new Map(),
      errors: ["DUCKTAIL_KEYS must be a JSON object of key → {tenant, scope}: no key is accepted"],
    };
  }
  const table: KeyTable = new Map();
  const errors: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const v = value as Partial<Principal> | null;
    const named = `DUCKTAIL_KEYS entry for the key ending "${key.slice(-4)}"`;
    if (!v || typeof v.tenant !== "string" || !validTenant(v.tenant)) {
      errors.push(`${named}: tenant must be 1-64 of A-Z a-z 0-9 _ . - without ".." (it names R2 paths)`);
    } else if (!SCOPES.includes(v.scope as Scope)) {
      errors.push(`${named}: scope must be one of ${SCOPES.join(", ")}`);
    } else table.set(key, { tenant: v.tenant, scope: v.scope as Scope });
  }
  return { table, errors };
}

/** A tenant name that is safe as an R2 path segment. */
export function validTenant(name: string): boolean {
  return TENANT_NAME.test(name) && !name.includes("..");
}

/**
 * The key a request carries: `Authorization: Bearer <key>`, or `?key=` (browsers cannot set
 * WebSocket headers), or `?k=` (the original DuckTail's pixel and snippet).
 */
export function requestKey(req: Request, url: URL): string | null {
  const auth = req.headers.get("authorization");
  if (auth?.toLowerCase().startsWith("bearer ")) return auth.slice(7).trim();
  return url.searchParams.get("key") ?? url.searchParams.get("k");
}

/** `admin` covers everything; `read` and `write` only themselves. */
export function allows(have: Scope, need: Scope): boolean {
  return have === "admin" || have === need;
}

/**
 * Resolves the principal of a request, or throws 401/403. With no key table, everyone is admin
 * of `default`. `anyScope` accepts any valid key (sockets check scope per frame).
 */
export function authorize(keys: KeyTable | null, key: string | null, need: Scope, anyScope = false): Principal {
  if (keys === null) return { tenant: OPEN_TENANT, scope: "admin" };
  if (!key) throw new DuckTailError(ErrorCode.unauthorized, "missing key: send Authorization: Bearer <key> or ?key=");
  const principal = keys.get(key);
  if (!principal) throw new DuckTailError(ErrorCode.unauthorized, "unknown key");
  if (!anyScope && !allows(principal.scope, need)) {
    throw new DuckTailError(ErrorCode.forbidden, `this key has ${principal.scope} scope; ${need} is needed`);
  }
  return principal;
}
