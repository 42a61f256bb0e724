import type { Env } from "../env";
import { DuckTailError, ErrorCode } from "../protocol/errors";

/** Where the dashboard is served (below BASE_PATH). */
export const DASHBOARD_PATH = "/dashboard";

/** Whether a path (BASE_PATH removed) is the dashboard's: `/dashboard` or a file below it. */
export function isDashboardPath(pathname: string): boolean {
  return pathname === DASHBOARD_PATH || pathname.startsWith(`${DASHBOARD_PATH}/`);
}

/**
 * GET /dashboard: the page (index.html) from the static assets (wrangler.toml [assets], built
 * into dist/dashboard); GET /dashboard/<file>: its scripts and styles. The page itself needs no
 * key (it asks for one); every API call it makes does. `/dashboard/` redirects to `/dashboard`,
 * whose relative `dashboard/…` URLs name this folder with or without a BASE_PATH.
 */
export async function dashboard(req: Request, env: Env, url: URL, basePath: string | undefined): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    throw new DuckTailError(ErrorCode.methodNotAllowed, `${req.method} is not allowed on ${url.pathname}`);
  }
  if (!env.ASSETS) {
    throw new DuckTailError(
      ErrorCode.notFound,
      "this Worker has no dashboard assets (wrangler.toml [assets], npm run build)",
    );
  }
  const file = url.pathname.slice(DASHBOARD_PATH.length);
  if (file === "/") {
    const to = new URL(req.url);
    to.pathname = `${basePath?.replace(/\/+$/, "") ?? ""}${DASHBOARD_PATH}`;
    return Response.redirect(to.toString(), 308);
  }
  // The assets keep index.html at their root; "/" is how they answer it.
  const asset = new URL(file === "" || file === "/index.html" ? "/" : file, url.origin);
  const res = await env.ASSETS.fetch(new Request(asset, { method: req.method, headers: req.headers }));
  if (res.status === 404) throw new DuckTailError(ErrorCode.notFound, `no dashboard file ${url.pathname}`);
  return res;
}
