import type { TierVars } from "./group/tiers";
import type { CatalogNamespace } from "./lake/catalog/client";
import type { LakeVars } from "./lake/catalog/settings";
import type { LimitVars } from "./protocol/limits";
import type { RecordingNamespace } from "./recording/client";
import type { RecordingVars } from "./recording/settings";
import type { RetryVars } from "./replica/retry-policy";

/** Bindings and vars of the DuckTail Worker (see wrangler.toml). */
export interface Env extends LimitVars, TierVars, RetryVars, LakeVars, RecordingVars {
  COORDINATOR: DurableObjectNamespace;
  REPLICA: DurableObjectNamespace;
  /** The tenants' lake catalogs (LakeCatalog), one per tenant by name. */
  CATALOG: CatalogNamespace;
  EVENTS: R2Bucket;
  /** The dashboard's static files (wrangler.toml [assets], dist/dashboard); absent, GET /dashboard is a 404. */
  ASSETS?: Fetcher;
  /** Session recordings (SessionRecording), one per tenant and session by name; unset → recording is off. */
  RECORDINGS?: RecordingNamespace;
  /** JSON `{"<key>": {"tenant", "scope"}}`; unset → one open tenant "default". */
  DUCKTAIL_KEYS?: string;
  /**
   * What is stored of a client's IP: "drop" (nothing), "truncate" (its /24 or /48), "keep".
   * Default "truncate".
   */
  IP_POLICY?: string;
  /** The path a Worker on a route like `example.com/ducktail/*` serves under (`/ducktail`). Default: none. */
  BASE_PATH?: string;
  /** WebSocket connections per replica before the coordinator opens another shard. Default 1,000. */
  REPLICA_CONNECTION_LIMIT?: string;
  /** How long the Worker caches a tenant's routing table. Default 10,000 ms. */
  ROUTING_TTL_MS?: string;
  /** Segment API: requests per second per write key (per isolate), bursts of twice that. Default 200. */
  SEGMENT_RATE_LIMIT_RPS?: string;
  /** Segment API: how long a messageId is remembered to drop retried duplicates. Default 600,000 ms. */
  SEGMENT_DEDUP_WINDOW_MS?: string;
  /** Most live-tail text one socket's subscriptions may hold unacknowledged before it is closed. Default 4 MiB. */
  TAIL_MAX_BUFFERED_BYTES?: string;
  /** Built-in materialized views to keep, comma-separated; "none" for none. Default: all. */
  VIEWS?: string;
  /** The tenant that receives other Workers' tail events (DuckTail as their tail consumer). Default "default". */
  TAIL_TENANT?: string;
  /**
   * Tries of one batch at one sink that refuses it for good (a PermanentSinkError, see the Sink
   * interface) before it is dead-lettered to R2. Storage outages are never dead-lettered. Default 8.
   */
  SINK_MAX_ATTEMPTS?: string;
  /** How often a busy replica reports its load to the coordinator. Default 10,000 ms. */
  REPORT_INTERVAL_MS?: string;
  /**
   * Optional Workers rate-limit binding (`[[ratelimits]]`), keyed by tenant and sized to the
   * tenant's rate budget: when it says no, the coordinator scales up a tier at once (an early
   * warning ahead of the replicas' reports). Requests are never refused because of it.
   */
  RATE_LIMITER?: { limit(options: { key: string }): Promise<{ success: boolean }> };
}
