// A DuckTail deployment with its own replica class: it extends BufferReplica through the
// documented hooks (never `fetch`), and wrangler.toml binds REPLICA to it.
import {
  type AnyView,
  BufferCoordinator,
  BufferReplica,
  type Env,
  LakeCatalog,
  type TransformEvent,
  type ViewDefinition,
  worker,
} from "ducktail";
import { type Sink, WebhookSink } from "ducktail/sinks";

interface ExampleEnv extends Env {
  WEBHOOK_URL: string;
  WEBHOOK_TOKEN: string;
}

export { BufferCoordinator, LakeCatalog };

/** Sign-ups per plan: `GET /buffer/mv/signups?window=24h`. */
const signupsByPlan: ViewDefinition<{ n: number }, { plan: string; signups: number }> = {
  name: "signups",
  orderBy: "signups",
  key: (e) => (e.type === "signup" ? String(e.data.plan ?? "free") : null),
  init: () => ({ n: 0 }),
  add: (p) => ({ n: p.n + 1 }),
  merge: (a, b) => ({ n: a.n + b.n }),
  finalize: (p, plan) => ({ plan, signups: p.n }),
};

export class MyReplica extends BufferReplica {
  /** Emails never leave the replica: not to Parquet, not to the webhook, not to the live tail. */
  override transform(event: TransformEvent): TransformEvent | null {
    if (typeof event.data.email !== "string") return event;
    return { ...event, data: { ...event.data, email: "[redacted]" } };
  }

  /** The built-in views and one of our own. */
  override views(): AnyView[] {
    return [...super.views(), signupsByPlan];
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
