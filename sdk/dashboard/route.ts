/** Where the hash points: `#/replay/abc?t=1` → page "replay", path "abc", params t=1. */
export interface Route {
  page: string;
  /** What follows the page's name, e.g. the session of `#/replay/<session>`; "" when nothing. */
  path: string;
  params: URLSearchParams;
}

/** The page shown for an empty hash. */
export const DEFAULT_PAGE = "overview";

/**
 * Parses a location hash. The path after the page's name is also handed to the page as the
 * param `path` (the page contract passes only params), unless the query already has one.
 */
export function parseRoute(hash: string): Route {
  const text = hash.replace(/^#\/?/, "");
  const q = text.indexOf("?");
  const route = q === -1 ? text : text.slice(0, q);
  const params = new URLSearchParams(q === -1 ? "" : text.slice(q + 1));
  const slash = route.indexOf("/");
  const page = decodeURIComponent(slash === -1 ? route : route.slice(0, slash)) || DEFAULT_PAGE;
  const path = slash === -1 ? "" : decodeURIComponent(route.slice(slash + 1));
  if (path !== "" && !params.has("path")) params.set("path", path);
  return { page, path, params };
}
