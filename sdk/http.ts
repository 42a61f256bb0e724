import type { ErrorCode } from "../src/protocol/errors";
import { ClientErrorCode, DuckTailClientError } from "./errors";
import type { IngestResult } from "./types";

/** An HTTP ingest answer: the usual result, or an error and whether sending again may help. */
export type PostOutcome = { result: IngestResult } | { error: DuckTailClientError; retry: boolean };

/**
 * POSTs a `{events, storageMode}` body to `/e`. Network failures, 429 and 5xx answers without a
 * DuckTail error body are worth a retry; a DuckTail error (401, 403, 413, ...) is final.
 */
export async function postEvents(endpoint: string, key: string | undefined, body: string): Promise<PostOutcome> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key) headers.authorization = `Bearer ${key}`;
  let res: Response;
  try {
    res = await fetch(endpoint, { method: "POST", headers, body });
  } catch (err) {
    const message = `POST ${endpoint} failed: ${(err as Error).message}`;
    return { error: new DuckTailClientError(ClientErrorCode.http, message), retry: true };
  }
  // A batch whose every event was rejected answers 400 with the usual result shape.
  const answer = (await res.json().catch(() => null)) as {
    rejected?: unknown;
    error?: { code?: ErrorCode; message?: string };
  } | null;
  if (Array.isArray(answer?.rejected)) return { result: answer as IngestResult };
  const transient = res.status === 429 || (res.status >= 500 && !answer?.error?.code);
  const error = answer?.error?.code
    ? new DuckTailClientError(answer.error.code, answer.error.message ?? `HTTP ${res.status}`)
    : new DuckTailClientError(ClientErrorCode.http, `POST ${endpoint} answered HTTP ${res.status}`);
  return { error, retry: transient };
}
