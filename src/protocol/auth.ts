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

export function parseKeys(secret: string | undefined): KeyTable | null {
  if (!secret || secret.trim() === "") return null;
  let raw: unknown;
  try {
    raw = JSON.parse(secret);
  } catch {
    throw new Error("DUCKTAIL_KEYS is not valid JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error("DUCKTAIL_KEYS must be a JSON object of key → {tenant, scope}");
  }
  const table: KeyTable = new Map();
  for (const [key, value] of Object.entries(raw)) {
    const v = value as Partial<Principal> | null;
    if (!v || typeof v.tenant !== "string" || !TENANT_NAME.test(v.tenant) || !SCOPES.includes(v.scope as Scope)) {
      throw new Error(
        `DUCKTAIL_KEYS entry for key ending "${key.slice(-4)}" needs a tenant ([A-Za-z0-9_.-]) and a scope`,
      );
    }
    table.set(key, { tenant: v.tenant, scope: v.scope as Scope });
  }
  return table;
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
