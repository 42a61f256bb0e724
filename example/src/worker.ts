// A DuckTail deployment with its own replica class: it extends BufferReplica through the
// documented hooks (never `fetch`), and wrangler.toml binds REPLICA to it.
import { BufferCoordinator, BufferReplica, type Env, LakeCatalog, type TransformEvent, worker } from "ducktail";
import { type Sink, WebhookSink } from "ducktail/sinks";

interface ExampleEnv extends Env {
  WEBHOOK_URL: string;
  WEBHOOK_TOKEN: string;
}

export { BufferCoordinator, LakeCatalog };

export class MyReplica extends BufferReplica {
  /** Emails never leave the replica: not to Parquet, not to the webhook, not to the live tail. */
  override transform(event: TransformEvent): TransformEvent | null {
    if (typeof event.data.email !== "string") return event;
    return { ...event, data: { ...event.data, email: "[redacted]" } };
  }

  /** Every batch to the lake (the default: Parquet in R2, committed to the catalog), and critical events to the on-call webhook too. */
  override sinks(env: Env): Sink[] {
    const { WEBHOOK_URL, WEBHOOK_TOKEN } = env as ExampleEnv;
    return [
      ...super.sinks(env),
      new WebhookSink({
        url: WEBHOOK_URL,
        authorization: `Bearer ${WEBHOOK_TOKEN}`,
        filter: (e) => e.importance === "critical",
      }),
    ];
  }
}

export default worker;
