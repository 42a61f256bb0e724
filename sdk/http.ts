import type { ErrorCode } from "../src/protocol/errors";
import { ClientErrorCode, DuckTailClientError } from "./errors";
import { networkFailure, permanentFailure, readAnswer } from "./failures";
import type { IngestResult } from "./types";
import type { Endpoints } from "./url";

/**
 * An HTTP ingest answer: the usual result, or an error and what it means. `retry`: sending
 * again may help (network, 429, 5xx without a DuckTail error). `permanent`: no request from this
 * client will succeed (401, 403, 404, 405, 410). Neither: the server refused this batch only.
 */
export type PostOutcome = { result: IngestResult } | { error: DuckTailClientError; retry: boolean; permanent: boolean };

/** POSTs a `{events, storageMode}` body to `/e`. */
export async function postEvents(ep: Endpoints, key: string | undefined, body: string): Promise<PostOutcome> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key) headers.authorization = `Bearer ${key}`;
  let res: Response;
  try {
    res = await fetch(ep.ingest, { method: "POST", headers, body });
  } catch (err) {
    const error = new DuckTailClientError(ClientErrorCode.unreachable, networkFailure(`POST ${ep.ingest}`, err));
    return { error, retry: true, permanent: false };
  }
  const answer = await readAnswer(res);
  // A batch whose every event was rejected answers 400 with the usual result shape.
  if (Array.isArray(answer.body?.rejected)) return { result: answer.body as unknown as IngestResult };
  const permanent = permanentFailure(`POST ${ep.ingest}`, "/e", answer, key !== undefined);
  if (permanent) return { error: permanent, retry: false, permanent: true };
  const retry = res.status === 429 || (res.status >= 500 && !answer.code);
  const error = answer.code
    ? new DuckTailClientError(
        answer.code as ErrorCode,
        answer.message ?? `HTTP ${res.status}`,
        undefined,
        undefined,
        res.status,
      )
    : new DuckTailClientError(
        ClientErrorCode.http,
        `POST ${ep.ingest} answered HTTP ${res.status}`,
        undefined,
        undefined,
        res.status,
      );
  return { error, retry, permanent: false };
}
