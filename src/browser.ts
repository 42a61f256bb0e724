import duckJs from "./duck-js";
import { DuckTailError, ErrorCode } from "./protocol/errors";

/**
 * What browsers fetch from DuckTail besides events: the snippet SDK (GET /duck.js), the HTML to
 * paste (GET /snippet?k=), the no-JS pixel (GET /p.gif?e=<type>&k=<write key>), and CORS, so pages
 * on any origin can POST events and read the answers. Keys are bearer tokens, never cookies, so
 * `Access-Control-Allow-Origin: *` gives nothing away.
 */

/** A 1x1 transparent GIF, for GET /p.gif and image requests to GET /e. */
export const PIXEL = Uint8Array.from(atob("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"), (c) =>
  c.charCodeAt(0),
);

const EVENT_FIELDS = new Set(["id", "timestamp", "source", "type", "importance", "userId", "anonymousId", "sessionId"]);
/** The original DuckTail's short names: `e` for the event type, `k` for the write key. */
const ALIASES: Record<string, string> = { e: "type" };
const CONTROL_PARAMS = new Set(["key", "k", "storageMode", "data"]);
const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, HEAD, POST, OPTIONS",
  // range and content-range: readers of GET /lake/object fetch parts of Parquet objects.
  "access-control-allow-headers": "authorization, content-type, range",
  "access-control-expose-headers": "content-range, content-length, ducktail-snapshot",
  "access-control-max-age": "86400",
};

/**
 * GET /e?type=…&source=…&data={…}&anything=else: one event from a query string (pixels, links).
 * `e` stands for `type` as in the original DuckTail. `referer` (the page that showed the pixel)
 * becomes `data.url` and `data.referrer` when the query gives none.
 */
export function eventFromQuery(url: URL, referer: string | null = null): Record<string, unknown> {
  const event: Record<string, unknown> = {};
  // A `data` that is not a JSON object stays its raw text, so validation rejects the event with
  // a reason (and the replica's stats count it) instead of storing something else.
  let data: Record<string, unknown> | string = {};
  const raw = url.searchParams.get("data");
  if (raw) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = raw;
    }
    data = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as typeof data) : raw;
  }
  for (const [name, v] of url.searchParams) {
    const k = ALIASES[name] ?? name;
    if (EVENT_FIELDS.has(k)) {
      if (k === name || !url.searchParams.has(k)) event[k] = k === "timestamp" && /^\d+$/.test(v) ? Number(v) : v;
    } else if (!CONTROL_PARAMS.has(k) && typeof data === "object") data[k] = v;
  }
  if (referer && typeof data === "object") {
    data.url ??= referer;
    data.referrer ??= referer;
  }
  event.data = data;
  return event;
}

/** The answer to a CORS preflight. */
export function preflight(): Response {
  return new Response(null, { status: 204, headers: CORS_HEADERS });
}

/** `res` with CORS headers, for a request from a page (one with an Origin); sockets pass through. */
export function withCors(req: Request, res: Response): Response {
  if (!req.headers.has("origin") || res.status === 101) return res;
  const copy = new Response(res.body, res);
  for (const [name, value] of Object.entries(CORS_HEADERS)) copy.headers.set(name, value);
  return copy;
}

/** GET /duck.js */
export function duckScript(): Response {
  return new Response(duckJs, {
    headers: {
      "content-type": "application/javascript; charset=utf-8",
      // Short: a new DuckTail version reaches pages within the hour.
      "cache-control": "public, max-age=3600",
      ...CORS_HEADERS,
    },
  });
}

/**
 * GET /snippet?k=<write key>: the HTML to paste before `</head>`, as text to copy. It is the
 * original DuckTail snippet's form (queue stub, `init`, `page`, async script, `<noscript>` pixel),
 * so pages that paste either count one pageview per load; `init` also names the endpoint.
 * `basePath` is the Worker's BASE_PATH (default none): its URLs must keep it, as `url` has lost it.
 */
export function snippet(url: URL, basePath = ""): Response {
  const key = url.searchParams.get("k") ?? "";
  if (!/^[\w.~-]{1,200}$/.test(key)) {
    throw new DuckTailError(ErrorCode.badRequest, "k must be a write key (letters, digits, _ . ~ -)");
  }
  const root = url.origin + basePath.replace(/\/+$/, "");
  const html = `<!-- DuckTail: pageviews, errors and performance; duck.push(["track", "signup", {plan: "pro"}]) for your own events -->
<script>
  window.duck = window.duck || [];
  duck.push(["init", ${JSON.stringify(key)}, { endpoint: ${JSON.stringify(root)} }]);
  duck.push(["page"]);
</script>
<script async src="${root}/duck.js"></script>
<noscript><img src="${root}/p.gif?e=pageview&k=${key}" width="1" height="1" alt=""></noscript>
`;
  return new Response(html, { headers: { "content-type": "text/plain; charset=utf-8", ...CORS_HEADERS } });
}
