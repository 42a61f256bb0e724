import type { DrainAnswer, FlushAnswer, ReplayOutcome, ViewPush } from "../protocol/calls";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import type { StoredEvent } from "../protocol/events";
import { type IngestResult, parseStorageMode, type StorageMode, utf8Length } from "../protocol/frames";
import type { ErasureSubject } from "../protocol/lake";
import type { Limits } from "../protocol/limits";
import { Header, InternalRoute } from "../protocol/routes";
import { parseStep } from "../views/series";
import { parseWindow } from "./live-views";
import type { ReplicaIdentity } from "./store";
import type { ViewAggregator } from "./view-aggregator";

/** What the internal routes need of their replica. */
export interface RouteHost {
  readonly limits: Limits;
  identity(): ReplicaIdentity;
  /** The socket upgrade the Worker passed on (`/_/ws`). */
  accept(req: Request, url: URL): Response | Promise<Response>;
  ingest(raw: unknown[], mode: StorageMode, dedup: boolean, context: string | null): Promise<IngestResult>;
  flush(): Promise<FlushAnswer>;
  stats(): Record<string, unknown>;
  /** The tenant's view aggregator, when this object is it (`viewAggregatorName`). */
  aggregator(): ViewAggregator;
  /** Pushes this replica's view changes to the aggregator now, in the background. */
  pushViews(): void;
  /** Buffered events matching a GET /events query, newest first. */
  buffered(url: URL): StoredEvent[];
  drain(): Promise<DrainAnswer>;
  /** Routed again after a drain: answers whether it was draining. */
  resume(): { resumed: boolean };
  replay(keys: string[]): Promise<ReplayOutcome[]>;
  /** Counts the subject's buffered rows, then flushes everything (DELETE /users/<id>). */
  erase(subject: ErasureSubject): Promise<{ bufferedRows: number }>;
}

/**
 * The replica's side of the internal routes (src/protocol/calls.ts is the callers' side): the
 * Worker's and coordinator's requests, each answered as JSON; errors are thrown as DuckTailErrors.
 */
export async function answerInternal(host: RouteHost, req: Request, url: URL): Promise<Response> {
  switch (url.pathname) {
    case InternalRoute.init:
      return Response.json(host.identity());
    case InternalRoute.ws:
      return host.accept(req, url);
    case InternalRoute.events: {
      requireMethod(req, "POST", "POST events");
      const { events, storageMode } = eventsOf(await readJson(req, host.limits), url);
      const dedup = url.searchParams.get("dedup") === "1";
      const result = await host.ingest(events, storageMode, dedup, req.headers.get(Header.context));
      const status = result.stored === 0 && result.rejected.length > 0 ? 400 : 200;
      return Response.json(result, { status });
    }
    case InternalRoute.flush:
      return Response.json(await host.flush());
    case InternalRoute.stats:
      return Response.json(host.stats());
    case InternalRoute.mv: {
      const p = url.searchParams;
      const limit = p.get("limit");
      if (limit !== null && !/^\d{1,5}$/.test(limit)) {
        throw new DuckTailError(ErrorCode.badRequest, "limit must be an integer 0..99999");
      }
      const windowMs = parseWindow(p.get("window"));
      const step = p.get("step");
      const query = {
        name: p.get("name") ?? "",
        windowMs,
        by: p.get("by") ?? undefined,
        limit: limit === null ? undefined : Number(limit),
        stepMs: step === null ? undefined : parseStep(step, windowMs),
      };
      return Response.json(await host.aggregator().query(query, tenantOf(req)));
    }
    case InternalRoute.viewPush: {
      requireMethod(req, "POST", "POST a view push");
      const push = (await req.json()) as ViewPush;
      return Response.json(host.aggregator().push(push));
    }
    case InternalRoute.viewPushNow:
      requireMethod(req, "POST", "POST to push views");
      host.pushViews();
      return Response.json({});
    case InternalRoute.buffered:
      return Response.json(host.buffered(url));
    case InternalRoute.drain:
      requireMethod(req, "POST", "POST to drain");
      return Response.json(await host.drain());
    case InternalRoute.resume:
      requireMethod(req, "POST", "POST to resume");
      return Response.json(host.resume());
    case InternalRoute.erase: {
      requireMethod(req, "POST", "POST the subject to erase");
      // The Worker checked the subject; this route is internal (its headers cannot be forged).
      return Response.json(await host.erase((await readJson(req, host.limits)) as ErasureSubject));
    }
    case InternalRoute.replay: {
      requireMethod(req, "POST", "POST dead-letter keys");
      const { keys } = (await readJson(req, host.limits)) as { keys?: unknown };
      if (!Array.isArray(keys) || keys.some((k) => typeof k !== "string")) {
        throw new DuckTailError(ErrorCode.badRequest, "keys must be a list of dead-letter object keys");
      }
      return Response.json(await host.replay(keys));
    }
    default:
      throw new DuckTailError(ErrorCode.notFound, `no route ${url.pathname}`);
  }
}

function tenantOf(req: Request): string {
  const tenant = req.headers.get(Header.tenant);
  if (!tenant) throw new DuckTailError(ErrorCode.badRequest, "no tenant named");
  return tenant;
}

function requireMethod(req: Request, method: string, what: string): void {
  if (req.method !== method) throw new DuckTailError(ErrorCode.methodNotAllowed, what);
}

async function readJson(req: Request, limits: Limits): Promise<unknown> {
  const text = await req.text();
  if (utf8Length(text, limits.maxFrameBytes) > limits.maxFrameBytes) {
    throw new DuckTailError(ErrorCode.frameTooLarge, `body is larger than ${limits.maxFrameBytes} bytes`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new DuckTailError(ErrorCode.badJson, "body is not valid JSON");
  }
}

/** The three body shapes of an ingest request: one event, an array, or `{events, storageMode}`. */
function eventsOf(body: unknown, url: URL): { events: unknown[]; storageMode: StorageMode } {
  const fromQuery = url.searchParams.get("storageMode") ?? undefined;
  if (Array.isArray(body)) return { events: body, storageMode: parseStorageMode(fromQuery) };
  if (typeof body === "object" && body !== null && Array.isArray((body as { events?: unknown }).events)) {
    const b = body as { events: unknown[]; storageMode?: unknown };
    return { events: b.events, storageMode: parseStorageMode(b.storageMode ?? fromQuery) };
  }
  return { events: [body], storageMode: parseStorageMode(fromQuery) };
}
