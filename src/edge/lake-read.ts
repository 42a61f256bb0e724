import type { Env } from "../env";
import { tenantCatalog } from "../lake/catalog/client";
import { lakeSettings } from "../lake/catalog/settings";
import { openLake, parseEventQuery } from "../lake/query";
import { DuckTailError, ErrorCode, errorResponse } from "../protocol/errors";
import type { LakeFileList } from "../protocol/lake";
import { contentRange, requestedRange } from "./byte-ranges";
import { need, storage } from "./tenancy";

/**
 * The read scope's direct view of the lake, for readers that fetch only the bytes they need
 * (the CLI's `ducktail query`, the dashboard's Explorer): GET /lake/files lists a snapshot's
 * files in a time range (from the catalog), GET|HEAD /lake/object?object= serves one object's bytes
 * with HTTP Range, confined to the tenant's own prefix.
 */

const HOUR_MS = 3_600_000;

/** GET /lake/files?from&to[&snapshot|asOf]: the files a query of that range reads (range of receipt, default the last hour). */
export async function lakeFiles(req: Request, env: Env, url: URL): Promise<Response> {
  const tenant = need(env, req, url, "read").tenant;
  const q = parseEventQuery(url);
  const lake = await openLake(tenantCatalog(env.CATALOG, tenant), q);
  const files = lake.files.map((f) => ({
    key: f.key,
    bytes: f.bytes,
    rows: f.rows,
    from: f.hour,
    to: f.hour + HOUR_MS,
    deletes: f.deletes,
  }));
  const body: LakeFileList = {
    snapshot: lake.snapshot,
    live: lake.live,
    from: q.from,
    to: q.to,
    files,
    bytes: files.reduce((n, f) => n + f.bytes, 0),
    rows: files.reduce((n, f) => n + f.rows - (f.deletes?.count ?? 0), 0),
  };
  return Response.json(body, { headers: { "ducktail-snapshot": String(lake.snapshot) } });
}

/**
 * The key of an object the tenant may read: under `<prefix>/tenant=<tenant>/`, with no empty,
 * `.` or `..` segment. Another tenant's key is forbidden (403); anything else is not found (404).
 */
export function tenantObjectKey(key: string | null, prefix: string, tenant: string): string {
  if (key === null || key === "")
    throw new DuckTailError(ErrorCode.badRequest, "give the object's key: ?object=<key> (?key= is the read key)");
  const segments = key.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) {
    throw new DuckTailError(ErrorCode.notFound, `${key} is not an object of the lake (empty, . or .. segment)`);
  }
  if (key.startsWith(`${prefix}/tenant=${tenant}/`)) return key;
  if (segments[0] === prefix && segments[1]?.startsWith("tenant=")) {
    throw new DuckTailError(ErrorCode.forbidden, `${key} is another tenant's object`);
  }
  throw new DuckTailError(
    ErrorCode.notFound,
    `${key} is not an object of the lake (keys start ${prefix}/tenant=${tenant}/)`,
  );
}

/** GET|HEAD /lake/object?object=: the object's bytes, a `Range` of them (206), or 416 for a range it cannot satisfy. */
export async function lakeObject(req: Request, env: Env, url: URL): Promise<Response> {
  const tenant = need(env, req, url, "read").tenant;
  const key = tenantObjectKey(url.searchParams.get("object"), lakeSettings(env).prefix, tenant);
  const bucket = storage(env);
  const head = await bucket.head(key);
  if (!head) throw new DuckTailError(ErrorCode.notFound, `no object ${key}`);
  const size = head.size;
  const headers = new Headers({
    "accept-ranges": "bytes",
    "content-type": "application/vnd.apache.parquet",
    etag: head.httpEtag,
  });
  const range = requestedRange(req.headers.get("range"), size);
  if (range === "unsatisfiable") {
    const res = errorResponse(
      new DuckTailError(
        ErrorCode.rangeNotSatisfiable,
        `Range ${req.headers.get("range")} is malformed or outside the object's ${size} bytes`,
      ),
    );
    res.headers.set("content-range", contentRange(range, size));
    return res;
  }
  const length = range ? range.length : size;
  headers.set("content-length", String(length));
  if (range) headers.set("content-range", contentRange(range, size));
  const status = range ? 206 : 200;
  if (req.method === "HEAD") return new Response(null, { status, headers });
  const obj = await bucket.get(key, range ? { range } : undefined);
  if (!obj) throw new DuckTailError(ErrorCode.notFound, `no object ${key}`);
  return new Response(obj.body, { status, headers });
}
