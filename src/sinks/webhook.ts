import type { StoredEvent } from "../protocol/events";
import type { EventBatch } from "./batch";
import { type FlushContext, idempotencyKey, type Sink } from "./sink";

export interface WebhookOptions {
  url: string;
  /** Sent as the Authorization header, e.g. "Bearer …". */
  authorization?: string;
  headers?: Record<string, string>;
  /** Per request. Default 10 s. */
  timeoutMs?: number;
  /** Only events this accepts are posted (e.g. critical ones); a batch with none posts nothing. */
  filter?: (event: StoredEvent) => boolean;
  /** Default "webhook". Give each webhook sink of a replica its own name. */
  name?: string;
}

/**
 * Posts each flushed batch as JSON: `{tenant, replica, seq, events: [...]}` with `data` as an
 * object, and an `Idempotency-Key: <tenant>/<replica>/<seq>` header that is the same on every
 * retry. Any non-2xx answer, a network error or the timeout fails the try (the flusher retries
 * with backoff, then dead-letters).
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
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`webhook answered ${res.status} ${res.statusText}`.trim());
    return [`${this.options.url}#${key}`];
  }
}
