import type { Config } from "./args";

/** The server refused or could not be reached; printed as `ducktail: <message>`, exit code 1. */
export class RequestError extends Error {
  constructor(
    message: string,
    /** The server's error code, when it gave one. */
    readonly code?: string,
  ) {
    super(message);
    this.name = "RequestError";
  }
}

/** `Authorization: Bearer <key>` when there is a key. */
export function authHeaders(config: Config): Record<string, string> {
  return config.key ? { authorization: `Bearer ${config.key}` } : {};
}

/** GETs `path?params` (undefined params left out) and returns the response, or throws the server's error. */
export async function get(
  config: Config,
  path: string,
  params: Record<string, string | number | undefined> = {},
): Promise<Response> {
  return call(config, "GET", path, params);
}

/**
 * POSTs `body` as JSON and returns the answer's JSON: a 2xx, or any answer without an error body
 * (a report that says what failed); throws the server's error otherwise.
 */
export async function postJson(config: Config, path: string, body: unknown): Promise<Record<string, unknown>> {
  return (await (await call(config, "POST", path, {}, JSON.stringify(body))).json()) as Record<string, unknown>;
}

async function call(
  config: Config,
  method: "GET" | "POST",
  path: string,
  params: Record<string, string | number | undefined>,
  body?: string,
): Promise<Response> {
  const u = new URL(config.url + path);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, String(v));
  let res: Response;
  try {
    res = await fetch(u, { method, headers: authHeaders(config), body });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw new RequestError(`cannot reach ${config.url} (${cause}); set --url or DUCKTAIL_URL`);
  }
  if (res.ok) return res;
  const answer = (await res
    .clone()
    .json()
    .catch(() => null)) as { error?: { code?: string; message?: string } } | null;
  if (method === "POST" && answer && !answer.error) return res;
  const code = answer?.error?.code;
  // The server's message is written for HTTP clients; say how this command takes a key.
  const hint = res.status === 401 || res.status === 403 ? " (give a key with --key or DUCKTAIL_KEY)" : "";
  throw new RequestError(
    `${method} ${u.pathname} answered ${res.status}${code ? ` ${code}` : ""}: ${answer?.error?.message ?? res.statusText}${hint}`,
    code,
  );
}

export async function getJson(
  config: Config,
  path: string,
  params?: Record<string, string | number | undefined>,
): Promise<Record<string, unknown>> {
  return (await (await get(config, path, params)).json()) as Record<string, unknown>;
}
