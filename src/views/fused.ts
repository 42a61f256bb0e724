import type { NormalizedEvent } from "../protocol/events";
import type { ViewStore } from "./buckets";
import {
  BUILTIN_VIEWS,
  blankViewEvent,
  cleanPath,
  countPageview,
  errorFingerprint,
  errors,
  eventLatency,
  latency,
  latencyRoute,
  pageviewPath,
  pageviews,
  refillViewEvent,
  type ViewDefinition,
  type ViewEvent,
} from "./views";

/**
 * The built-in views fed a whole batch in one pass: the same partials as `ViewStore.add` makes
 * from a ViewEvent per event, at a fraction of the cost. The generic loop (a view event refilled
 * per event, then a key and an add call per view) cost a quarter of what JSON.parse of the frame
 * does on the ingest path; this reads each event's fields once, skips the views an event has no
 * key for, and builds a view event only for errors. The rules themselves are the views' own
 * (`pageviewPath`, `latencyRoute`, …), so the two paths cannot drift apart; a test holds them equal.
 */
export class FusedBuiltinViews {
  private readonly pageviews: number;
  private readonly errors: number;
  private readonly latency: number;
  private readonly scratch: ViewEvent = blankViewEvent();

  /** For a store whose views are all built-in ones ({@link covers}). */
  constructor(private readonly store: ViewStore) {
    this.pageviews = store.slot(pageviews);
    this.errors = store.slot(errors);
    this.latency = store.slot(latency);
  }

  /** Whether this pass can stand in for `store.add`: every view registered there is a built-in one. */
  static covers(store: ViewStore): boolean {
    return store.only(BUILTIN_VIEWS);
  }

  /**
   * Adds the events received at `receivedAt` (in the bucket at `start`); event k's parsed `data`
   * is the `data` of `raw[indexes[k]]`, as `LiveViews.addEach` gets them.
   */
  add(
    events: readonly NormalizedEvent[],
    raw: readonly unknown[],
    indexes: readonly number[],
    receivedAt: number,
    start: number,
  ): void {
    const store = this.store;
    // Each view's partials of this minute, looked up on its first event in the batch rather than
    // once per event (and not at all for a view the batch has no event for, as `ViewStore.add`).
    let pageviewsAt: Map<string, unknown> | null = null;
    let errorsAt: Map<string, unknown> | null = null;
    let latencyAt: Map<string, unknown> | null = null;
    try {
      for (let k = 0; k < events.length; k++) {
        const e = events[k] as NormalizedEvent;
        const given = (raw[indexes[k] as number] as { data?: unknown }).data;
        const data = (typeof given === "object" && given !== null ? given : {}) as Record<string, unknown>;
        const type = e.type;
        // `data.path` without its query, computed once for the page view and the latency key.
        let path: string | null | undefined;
        if (this.pageviews >= 0 && (type === "pageview" || type === "page")) {
          pageviewsAt ??= store.partialsAt(this.pageviews, start);
          path = cleanPath(data);
          countPageview(partialOf(pageviewsAt, pageviewPath(data, path), pageviews), e.userId, e.anonymousId);
        }
        if (this.errors >= 0 && type === "error") {
          errorsAt ??= store.partialsAt(this.errors, start);
          errors.add(
            partialOf(errorsAt, errorFingerprint(data), errors),
            refillViewEvent(this.scratch, e, data, receivedAt),
          );
        }
        if (this.latency >= 0) {
          const ms = eventLatency(type, data);
          if (ms !== null) {
            latencyAt ??= store.partialsAt(this.latency, start);
            partialOf(latencyAt, latencyRoute(data, e.source, type, path), latency).add(ms);
          }
        }
      }
    } finally {
      if (pageviewsAt) store.touch(this.pageviews, start);
      if (errorsAt) store.touch(this.errors, start);
      if (latencyAt) store.touch(this.latency, start);
    }
  }
}

/** The partial of `key` among `partials`, created with `view`'s `init` if missing. */
function partialOf<P>(partials: Map<string, unknown>, key: string, view: ViewDefinition<P, unknown>): P {
  let partial = partials.get(key) as P | undefined;
  if (partial === undefined) {
    partial = view.init();
    partials.set(key, partial);
  }
  return partial;
}
