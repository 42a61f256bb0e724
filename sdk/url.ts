import { describe } from "./validate";

/** Where a DuckTail Worker takes what, from one URL as users write it. */
export interface Endpoints {
  /** `http(s)://host[/prefix]`, no trailing slash: the Worker's base URL. */
  base: string;
  /** `ws(s)://host[/prefix]/ws`: the socket, without query. */
  socket: string;
  /** `http(s)://host[/prefix]/e`: HTTP ingest. */
  ingest: string;
  /** The `?key=` the URL carried, if any (used when no key option is given). */
  key?: string;
}

/** The forms `endpoints()` takes, for error messages. */
export const URL_FORMS =
  "http(s)://host or ws(s)://host, optionally with a path prefix (https://example.com/ducktail) and a trailing /ws, e.g. https://<worker>.workers.dev";

const PROTOCOLS: Record<string, "http:" | "https:"> = {
  "http:": "http:",
  "https:": "https:",
  "ws:": "http:",
  "wss:": "https:",
};

/**
 * Normalises a DuckTail URL: `http(s)://` or `ws(s)://`, with or without a trailing `/ws` and
 * slashes, with a path prefix when the Worker runs on a route. Throws a TypeError naming the URL
 * and the accepted forms for anything else.
 */
export function endpoints(url: unknown, label = "url"): Endpoints {
  if (typeof url !== "string" || url.trim() === "") {
    throw new TypeError(`${label} must be the DuckTail Worker's URL, ${URL_FORMS}; got ${describe(url)}`);
  }
  const refuse = (why: string) => new TypeError(`${label} "${url}" ${why}; use ${URL_FORMS}`);
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw refuse("is not a URL");
  }
  const protocol = PROTOCOLS[parsed.protocol];
  // "localhost:8787" parses with the protocol "localhost:".
  if (!protocol) throw refuse(`has the protocol "${parsed.protocol}"`);
  if (parsed.username || parsed.password) throw refuse("carries a user or password (pass { key } instead)");
  if (parsed.hash) throw refuse("has a #fragment");
  const key = parsed.searchParams.get("key") ?? undefined;
  const others = [...parsed.searchParams.keys()].filter((k) => k !== "key");
  if (others.length > 0) throw refuse(`has query parameters (${others.join(", ")}); only ?key= is read`);
  // The path is a prefix (a Worker on a route); a trailing /ws names the socket itself.
  const prefix = parsed.pathname.replace(/\/+$/, "").replace(/\/ws$/, "").replace(/\/+$/, "");
  const host = `//${parsed.host}${prefix}`;
  return {
    base: `${protocol}${host}`,
    socket: `${protocol === "https:" ? "wss:" : "ws:"}${host}/ws`,
    ingest: `${protocol}${host}/e`,
    ...(key ? { key } : {}),
  };
}
