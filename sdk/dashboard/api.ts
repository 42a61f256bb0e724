/** How long an API call may take before it is aborted, unless the caller passes its own signal. */
export const API_TIMEOUT_MS = 15_000;

/** A DuckTail answer that was not 2xx: its status, error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The readable error of a non-2xx answer (`{"error":{"code","message"}}`, else its status line). */
export async function apiError(res: Response, path: string): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = `${path}: HTTP ${res.status} ${res.statusText}`.trim();
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = `${path}: ${body.error.message} (${code})`;
  } catch {
    // not a DuckTail error body: keep the status line
  }
  return new ApiError(res.status, code, message);
}

/** `ctx.api`: fetch under `base` with the key as a bearer token; rejects on non-2xx and after {@link API_TIMEOUT_MS}. */
export function apiFetcher(base: string, key: string): (path: string, init?: RequestInit) => Promise<Response> {
  return async (path, init = {}) => {
    const headers = new Headers(init.headers);
    if (key !== "") headers.set("authorization", `Bearer ${key}`);
    const timeout = AbortSignal.timeout(API_TIMEOUT_MS);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(base + path, { ...init, headers, signal });
    } catch (err) {
      if (init.signal?.aborted) throw err; // the caller's own abort, e.g. the page was left
      const why = timeout.aborted
        ? `no answer in ${API_TIMEOUT_MS} ms`
        : err instanceof Error
          ? err.message
          : String(err);
      throw new ApiError(0, "unreachable", `${path}: ${why}`);
    }
    if (!res.ok) throw await apiError(res, path);
    return res;
  };
}

/** The deployment's base URL from the dashboard's own address (`<origin><BASE_PATH>/dashboard`). */
export function baseFrom(location: { origin: string; pathname: string }): string {
  return location.origin + location.pathname.replace(/\/dashboard(\/.*)?$/, "");
}
