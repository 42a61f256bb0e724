import type { EventBatch } from "../columns/batch";
import type { StoredEvent } from "../protocol/events";
import { type FlushContext, idempotencyKey, PermanentSinkError, type Sink } from "./sink";

/** Answers that refuse the data itself: no retry changes them, so the batch is dead-lettered. */
const REFUSALS = new Set([400, 413, 415, 422]);

export interface WebhookOptions {
  url: string;
  /** Sent as the Authorization header, e.g. "Bearer …". */
  authorization?: string;
  headers?: Record<string, string>;
  /** Per request. Default: the replica's STORAGE_TIMEOUT_MS (10 s). */
  timeoutMs?: number;
  /** Only events this accepts are posted (e.g. critical ones); a batch with none posts nothing. */
  filter?: (event: StoredEvent) => boolean;
  /** Default "webhook". Give each webhook sink of a replica its own name. */
  name?: string;
}

/**
 * Posts each flushed batch as JSON: `{tenant, replica, seq, events: [...]}` with `data` as an
 * object, and an `Idempotency-Key: <tenant>/<replica>/<seq>` header that is the same on every
 * retry. A 400, 413, 415 or 422 answer refuses the batch for good (dead-lettered after
 * SINK_MAX_ATTEMPTS tries); any other non-2xx answer, a network error or the timeout fails the
 * try, and the flusher retries with capped backoff for as long as the receiver is down.
 */
export class WebhookSink implements Sink {
  readonly name: string;
  readonly releasesBatch = true;

  constructor(private readonly options: WebhookOptions) {
    this.name = options.name ?? "webhook";
    new URL(options.url); // fail at construction on a malformed URL
  }

  async write(batch: EventBatch, ctx: FlushContext): Promise<string[]> {
    const rows = this.options.filter ? batch.events().filter(this.options.filter) : batch.events();
    if (rows.length === 0) return [];
    const key = idempotencyKey(ctx);
    const body = JSON.stringify({
      tenant: ctx.tenant,
      replica: ctx.replica,
      seq: ctx.seq,
      events: rows.map((e) => ({ ...e, data: JSON.parse(e.data) as unknown })),
    });
    const res = await fetch(this.options.url, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        "idempotency-key": key,
        ...(this.options.authorization && { authorization: this.options.authorization }),
        ...this.options.headers,
      },
      signal: AbortSignal.timeout(this.options.timeoutMs ?? ctx.timeoutMs ?? 10_000),
    });
    await res.body?.cancel();
    if (res.ok) return [`${this.options.url}#${key}`];
    const message = `webhook answered ${res.status} ${res.statusText}`.trim();
    throw REFUSALS.has(res.status) ? new PermanentSinkError(message) : new Error(message);
  }
}
