import type { Env } from "../env";
import { lakeSettings } from "../lake/catalog/settings";
import { eraseFromLake } from "../lake/erase";
import { requestKey } from "../protocol/auth";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import type { ErasureRecord, ErasureSubject } from "../protocol/lake";
import { catalogOf } from "./lake";
import { eraseUserSessions } from "./recording";
import { need, replica, storage, tenantShards } from "./tenancy";

/**
 * One person's data (admin): `DELETE /users/<id>?by=userId|anonymousId` removes every event and
 * every recorded session of theirs, and `GET /users/erasures` lists what was removed when.
 * See docs/ARCHITECTURE.md, "The lake" and "Session recording".
 */

const USER_ROUTE = /^\/users\/([^/]+)$/;
const MAX_ID_LENGTH = 1024;
const MAX_ERASURES = 1000;
/** The cron runs hourly: an object due for deletion goes at the latest one run after it is due. */
const CLEANUP_PERIOD_MS = 3_600_000;

export function isUserRoute(pathname: string): boolean {
  return pathname === "/users/erasures" || USER_ROUTE.test(pathname);
}

export async function userRoute(req: Request, env: Env, url: URL): Promise<Response> {
  const principal = need(env, req, url, "admin");
  if (url.pathname === "/users/erasures") {
    if (req.method !== "GET") throw new DuckTailError(ErrorCode.methodNotAllowed, "GET /users/erasures");
    const limit = Number(url.searchParams.get("limit") ?? 100);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ERASURES) {
      throw new DuckTailError(ErrorCode.badRequest, `limit must be 1..${MAX_ERASURES}`);
    }
    return Response.json({ erasures: await catalogOf(env, principal.tenant).erasures(limit) });
  }
  if (req.method !== "DELETE") throw new DuckTailError(ErrorCode.methodNotAllowed, `DELETE ${url.pathname}`);
  const subject = subjectOf(url);
  const record = await eraseUser(env, principal.tenant, subject, await requester(req, url, principal.scope));
  const recordings = await eraseUserSessions(env, principal.tenant, subject);
  return Response.json({ ...record, recordings });
}

function subjectOf(url: URL): ErasureSubject {
  let id: string;
  try {
    id = decodeURIComponent(USER_ROUTE.exec(url.pathname)?.[1] ?? "");
  } catch {
    throw new DuckTailError(ErrorCode.badRequest, "the user id is not valid percent-encoding");
  }
  if (id === "" || id.length > MAX_ID_LENGTH) {
    throw new DuckTailError(ErrorCode.badRequest, `the user id must be 1..${MAX_ID_LENGTH} characters`);
  }
  const by = url.searchParams.get("by") ?? "any";
  if (by !== "userId" && by !== "anonymousId" && by !== "any") {
    throw new DuckTailError(ErrorCode.badRequest, "by must be userId, anonymousId or any (the default: either)");
  }
  return { id, by };
}

/**
 * Removes the subject's events: every shard flushes (their buffered rows go to the lake, counted
 * first), the lake's files holding their rows are rewritten without them in one snapshot, and
 * the request is recorded in the catalog. Events the subject sends after the request are not
 * its business. Views keep no partial keyed by a user (see docs/ARCHITECTURE.md).
 */
export async function eraseUser(
  env: Env,
  tenant: string,
  subject: ErasureSubject,
  requestedBy: string,
): Promise<ErasureRecord> {
  const requestedAt = Date.now();
  const shards = await tenantShards(env, tenant);
  const flushed = await Promise.all(shards.map((s) => replica(env, tenant, s).erase(subject)));
  const catalog = catalogOf(env, tenant);
  const lake = await eraseFromLake(storage(env), catalog, subject);
  return catalog.recordErasure({
    requestedAt,
    requestedBy,
    subjectSha256: await sha256(subject.id),
    matchedBy: subject.by,
    bufferedRows: flushed.reduce((n, f) => n + f.bufferedRows, 0),
    lakeRows: lake.rows,
    filesRewritten: lake.rewritten,
    snapshot: lake.snapshot,
    objectsGoneBy: Date.now() + lakeSettings(env).retentionMs + CLEANUP_PERIOD_MS,
  });
}

/** Who asked: tenant, scope and a prefix of the key's SHA-256 (the key itself is a secret). */
async function requester(req: Request, url: URL, scope: string): Promise<string> {
  const key = requestKey(req, url);
  return `${scope} key ${key === null ? "(open tenant)" : (await sha256(key)).slice(0, 12)}`;
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
