import type { ErrorCode } from "../src/protocol/errors";
import { DuckTailClientError } from "./errors";
import type { Endpoints } from "./url";

/** What a server answered, as far as the client cares: the status and any DuckTail error body. */
export interface Answer {
  status: number;
  /** The DuckTail error code of the body (`{"error":{"code",...}}`), if it had one. */
  code?: string;
  message?: string;
  /** The whole JSON body (an ingest result on success), or null. */
  body: Record<string, unknown> | null;
}

/** Reads a response's status and JSON body; a body that is not JSON counts as none. */
export async function readAnswer(res: Response): Promise<Answer> {
  const body = (await res.json().catch(() => null)) as Record<string, unknown> | null;
  const error = body && typeof body.error === "object" ? (body.error as { code?: unknown; message?: unknown }) : null;
  return {
    status: res.status,
    body: body && typeof body === "object" ? body : null,
    ...(typeof error?.code === "string" && { code: error.code }),
    ...(typeof error?.message === "string" && { message: error.message }),
  };
}

// No retry changes these: the key or the URL is wrong.
const PERMANENT_CODES: Record<number, ErrorCode> = {
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  410: "not_found",
};

const BASE_URL_HINT =
  "url should be the Worker's base URL, e.g. https://<worker>.workers.dev (with its path prefix if it runs on a route)";

/**
 * The error for an answer no retry will change (401, 403, 404, 405, 410), naming the URL, the
 * status and the fix; null when a retry may help. `target` is what was asked ("wss://h/ws",
 * "POST https://h/e"), `route` the path the Worker should serve there.
 */
export function permanentFailure(
  target: string,
  route: "/ws" | "/e",
  answer: Answer,
  hasKey: boolean,
): DuckTailClientError | null {
  const fallback = PERMANENT_CODES[answer.status];
  if (!fallback) return null;
  const code = (answer.code ?? fallback) as ErrorCode;
  const fixes: Record<number, string> = {
    401: `${hasKey ? "the key given is unknown to this Worker" : "no key was given and this Worker requires one"}; pass { key } with a write key (one of the Worker's DUCKTAIL_KEYS)`,
    403: "the key may not send events; pass { key } with a write (or admin) key",
    404: `nothing serves ${route} here; ${BASE_URL_HINT}`,
    405: `${route} does not take this method here, so this is not a DuckTail Worker; ${BASE_URL_HINT}`,
    410: `nothing serves ${route} here any more; ${BASE_URL_HINT}`,
  };
  const server = answer.message ? ` (server: "${answer.message}")` : "";
  const message = `${target} answered ${answer.status} ${code}: ${fixes[answer.status]}${server}`;
  return new DuckTailClientError(code, message, undefined, undefined, answer.status);
}

/** A failure a retry may fix, as one line: "cannot reach … (connect ECONNREFUSED …)". */
export function networkFailure(target: string, err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  const cause = e.cause?.message ?? e.cause?.code ?? e.message ?? String(err);
  return `cannot reach ${target} (${cause})`;
}

/** Whether a failed upgrade can be fixed by the user (and retrying is pointless), or not. */
export type ProbeResult = { permanent: DuckTailClientError } | { transient: string };

/** The probe's own deadline: a black-holed host must not hold the next dial for long. */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * After a failed upgrade, asks the same URL with a plain GET (no upgrade headers): the WebSocket
 * API does not say what the server answered, and browsers may fetch it (the Worker sends CORS
 * headers on every answer). A DuckTail Worker answers 400 `bad_frame` when key and path are fine.
 */
export async function probeSocket(ep: Endpoints, key: string | undefined): Promise<ProbeResult> {
  const url = new URL(`${ep.base}/ws`);
  if (key) url.searchParams.set("key", key);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`no answer in ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
  (timer as { unref?: () => void }).unref?.();
  let answer: Answer;
  try {
    answer = await readAnswer(await fetch(url, { signal: abort.signal }));
  } catch (err) {
    return { transient: networkFailure(ep.socket, abort.signal.aborted ? abort.signal.reason : err) };
  } finally {
    clearTimeout(timer);
  }
  const permanent = permanentFailure(ep.socket, "/ws", answer, key !== undefined);
  if (permanent) return { permanent };
  const said = `${answer.status}${answer.code ? ` ${answer.code}` : ""}`;
  if (answer.code === "bad_frame") {
    return { transient: `the WebSocket upgrade to ${ep.socket} failed though the Worker answers (GET: ${said})` };
  }
  return { transient: `${ep.socket} refused the WebSocket upgrade (GET answered ${said})` };
}
