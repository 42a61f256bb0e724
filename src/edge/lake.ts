import type { Env } from "../env";
import { adoptLegacy } from "../lake/catalog/adopt";
import { cleanLake } from "../lake/catalog/cleanup";
import { type TenantCatalog, tenantCatalog } from "../lake/catalog/client";
import { lakeSettings } from "../lake/catalog/settings";
import { compactAll, compactTenant, listTenants } from "../lake/compaction";
import { type EventQuery, eventsResponse, openLake, queryEvents } from "../lake/query";
import { parseRollupQuery, queryRollups, rollupClosedPeriods, rollupCompactedHours } from "../lake/rollup-run";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import type { StoredEvent } from "../protocol/events";
import { lakeFiles, lakeObject } from "./lake-read";
import { need, storage } from "./tenancy";

/**
 * The lake at the edge: its read routes (GET /snapshots, GET /rollups, GET /lake/catalog, GET /lake/files and
 * GET|HEAD /lake/object in ./lake-read), the admin cleanup
 * and adoption (POST /lake/cleanup, /lake/adopt), /events over a snapshot, compaction on demand
 * and the cron's maintenance.
 * Every one goes through the tenant's catalog (src/lake/catalog), never a bucket listing.
 */

/** The routes this module answers (the Worker's route table sends them here). */
export const LAKE_ROUTES = [
  "/snapshots",
  "/rollups",
  "/lake/catalog",
  "/lake/cleanup",
  "/lake/adopt",
  "/lake/retention",
  "/lake/files",
  "/lake/object",
];

const MAX_SNAPSHOTS = 1000;
/** Objects one POST /lake/adopt reads and commits (each is read whole for its statistics). */
const ADOPT_PER_CALL = 200;

export function catalogOf(env: Env, tenant: string): TenantCatalog {
  return tenantCatalog(env.CATALOG, tenant);
}

export async function lakeRoute(req: Request, env: Env, url: URL): Promise<Response> {
  const p = url.searchParams;
  switch (url.pathname) {
    case "/snapshots": {
      // Read: what changed when; every reader of /events may see it.
      if (req.method !== "GET") break;
      const catalog = catalogOf(env, need(env, req, url, "read").tenant);
      const limit = p.get("limit") === null ? 100 : Number(p.get("limit"));
      const before = p.get("before") === null ? undefined : Number(p.get("before"));
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SNAPSHOTS) {
        throw new DuckTailError(ErrorCode.badRequest, `limit must be 1..${MAX_SNAPSHOTS}`);
      }
      if (before !== undefined && !(Number.isInteger(before) && before >= 0)) {
        throw new DuckTailError(ErrorCode.badRequest, "before must be a snapshot id");
      }
      return Response.json(await catalog.snapshots(limit, before));
    }
    case "/rollups": {
      // Read: counts and uniques of what GET /events shows a read key row by row.
      if (req.method !== "GET") break;
      const catalog = catalogOf(env, need(env, req, url, "read").tenant);
      const q = parseRollupQuery(url);
      return Response.json(await queryRollups(storage(env), catalog, q.grain, q.from, q.to));
    }
    case "/lake/files":
      if (req.method !== "GET") break;
      return await lakeFiles(req, env, url);
    case "/lake/object":
      // Read: the bytes of the tenant's own objects, by Range, for readers that skip what they do not need.
      if (req.method !== "GET" && req.method !== "HEAD") break;
      return await lakeObject(req, env, url);
    case "/lake/catalog": {
      // Read, not admin: the catalog holds less than GET /events already shows a read key (paths,
      // counts and per-column bounds of the same events), and exporting it changes nothing.
      if (req.method !== "GET") break;
      const catalog = catalogOf(env, need(env, req, url, "read").tenant);
      const dataPath = p.get("dataPath") ?? undefined;
      if (dataPath !== undefined && !/^([a-z][a-z0-9+.-]*:\/\/.+|\/.*)\/$/i.test(dataPath)) {
        throw new DuckTailError(
          ErrorCode.badRequest,
          "dataPath must be a URL or absolute path ending in /, like s3://bucket/",
        );
      }
      return Response.json(await catalog.exportCatalog(dataPath));
    }
    case "/lake/cleanup": {
      // Admin: deletes objects (expired files, orphans) now instead of at the next cron.
      if (req.method !== "POST") break;
      const tenant = need(env, req, url, "admin").tenant;
      return Response.json(await cleanLake(storage(env), catalogOf(env, tenant), Date.now(), lakeSettings(env)));
    }
    case "/lake/retention": {
      // Admin: the tenant's retention (GET), its own override (PUT {"days": n | null}), a pass now (POST).
      const catalog = catalogOf(env, need(env, req, url, "admin").tenant);
      if (req.method === "GET") return Response.json(await catalog.retention());
      if (req.method === "PUT") return Response.json(await catalog.setRetention(await retentionDays(req)));
      if (req.method === "POST") return Response.json(await catalog.retain());
      break;
    }
    case "/lake/adopt": {
      // Admin: commits objects written before the catalog existed (the upgrade of an older lake).
      if (req.method !== "POST") break;
      const tenant = need(env, req, url, "admin").tenant;
      const settings = lakeSettings(env);
      return Response.json(
        await adoptLegacy(storage(env), catalogOf(env, tenant), { prefix: settings.prefix, limit: ADOPT_PER_CALL }),
      );
    }
  }
  throw new DuckTailError(ErrorCode.methodNotAllowed, `${req.method} is not allowed on ${url.pathname}`);
}

/** The body of PUT /lake/retention: `{"days": n}` (a positive whole number of days) or `{"days": null}`. */
async function retentionDays(req: Request): Promise<number | null> {
  let body: unknown;
  try {
    body = await req.json();
  } catch {
    throw new DuckTailError(ErrorCode.badJson, "body is not valid JSON");
  }
  const days = (body as { days?: unknown } | null)?.days;
  if (days === null) return null;
  if (typeof days !== "number" || !Number.isInteger(days) || days < 1 || days > 36_500) {
    throw new DuckTailError(
      ErrorCode.badRequest,
      `days must be a whole number of days 1..36500, or null for RETENTION_DAYS`,
    );
  }
  return days;
}

/** GET /events: the snapshot's files in the range, plus (for the latest) what the replicas buffer. */
export async function lakeEvents(env: Env, tenant: string, q: EventQuery, buffered: StoredEvent[]): Promise<Response> {
  const lake = await openLake(catalogOf(env, tenant), q);
  return eventsResponse(queryEvents(storage(env), lake, q, buffered), q, lake.snapshot);
}

/** POST /compact: the tenant's closed hours, now. */
export function compactNow(env: Env, tenant: string) {
  return compactTenant(storage(env), catalogOf(env, tenant), Date.now());
}

/**
 * The cron: compacts every tenant's closed hours, then, per tenant, rolls up the hours that lack
 * their hourly rollup and the closed days and months, removes the hours past its retention (one
 * snapshot) and the rollups past ROLLUP_RETENTION_DAYS, and cleans its lake (expired snapshots and the files only they listed,
 * orphans past the grace period).
 */
export async function lakeCron(env: Env): Promise<void> {
  const bucket = storage(env);
  const run = await compactAll(bucket, (tenant) => catalogOf(env, tenant), Date.now());
  const skipped = run.summaries.filter((s) => s.skipped);
  console.log(
    `ducktail: compacted ${run.summaries.length - skipped.length} hours, skipped ${skipped.length}, ${run.remaining.length} left for the next run`,
  );
  const settings = lakeSettings(env);
  for (const tenant of await listTenants(bucket)) {
    try {
      const rolled =
        (await rollupCompactedHours(bucket, catalogOf(env, tenant))) +
        (await rollupClosedPeriods(bucket, catalogOf(env, tenant), Date.now()));
      if (rolled > 0) console.log(`ducktail: lake of ${tenant}: ${rolled} rollup periods written`);
    } catch (err) {
      console.error(`ducktail: rolling up the lake of ${tenant} failed`, err);
    }
    try {
      const retained = await catalogOf(env, tenant).retain();
      if (retained.files + retained.rollupFiles > 0) {
        console.log(
          `ducktail: lake of ${tenant}: ${retained.files} files (${retained.rows} rows) and ${retained.rollupFiles} rollup files past retention left the tables (last snapshot ${retained.snapshot})`,
        );
      }
      const report = await cleanLake(bucket, catalogOf(env, tenant), Date.now(), settings);
      if (report.deleted.length + report.orphans.length > 0) {
        console.log(
          `ducktail: lake of ${tenant}: ${report.expired} snapshots expired, ${report.deleted.length} replaced files and ${report.orphans.length} orphans deleted`,
        );
      }
    } catch (err) {
      console.error(`ducktail: cleaning the lake of ${tenant} failed`, err);
    }
  }
}
