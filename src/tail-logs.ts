import type { EventInput, Importance } from "./protocol/events";

/**
 * Worker tail logs: other Workers name DuckTail as their tail consumer (`tail_consumers` in
 * their wrangler.toml) and each trace item becomes events with source `worker:<scriptName>`:
 * one `request` event per invocation (outcome, URL, status, CPU and wall time — the latency
 * view reads `duration`), one `log` event per console line and one `error` event per exception.
 */

const LEVELS: Record<string, Importance> = {
  error: "critical",
  warn: "high",
  log: "normal",
  info: "normal",
  debug: "low",
};
/** Longest log message kept, in characters (an event is at most 32 KiB). */
const MAX_MESSAGE = 8_000;

function text(message: unknown): string {
  const parts = Array.isArray(message) ? message : [message];
  const s = parts.map((p) => (typeof p === "string" ? p : JSON.stringify(p))).join(" ");
  return s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE)}…` : s;
}

/** What the invocation was: a fetch (method and URL), a cron, an alarm, an RPC call, … */
function describe(item: TraceItem): Record<string, unknown> {
  const e = item.event as Record<string, unknown> | null;
  if (!e) return { trigger: "unknown" };
  if ("request" in e) {
    const { request, response } = e as unknown as TraceItemFetchEventInfo;
    const url = new URL(request.url);
    return {
      trigger: "fetch",
      method: request.method,
      url: request.url,
      route: url.pathname,
      status: response?.status ?? null,
    };
  }
  if ("cron" in e) return { trigger: "scheduled", cron: e.cron };
  if ("scheduledTime" in e) return { trigger: "alarm" };
  if ("rpcMethod" in e) return { trigger: "rpc", route: `rpc ${e.rpcMethod}` };
  if ("queue" in e) return { trigger: "queue", queue: e.queue, batchSize: e.batchSize };
  return { trigger: "other" };
}

/** The events of a batch of trace items, in order. */
export function traceEvents(items: readonly TraceItem[]): EventInput[] {
  const out: EventInput[] = [];
  for (const item of items) {
    const source = `worker:${item.scriptName ?? "unknown"}`;
    const at = item.eventTimestamp ?? Date.now();
    const what = describe(item);
    const failed = item.outcome !== "ok" || item.exceptions.length > 0;
    out.push({
      type: "request",
      source,
      timestamp: at,
      importance: failed ? "high" : "normal",
      data: {
        ...what,
        outcome: item.outcome,
        duration: item.wallTime,
        cpuTime: item.cpuTime,
        logs: item.logs.length,
        exceptions: item.exceptions.length,
        ...(item.truncated && { truncated: true }),
      },
    });
    for (const log of item.logs) {
      out.push({
        type: "log",
        source,
        timestamp: log.timestamp,
        importance: LEVELS[log.level] ?? "normal",
        data: { level: log.level, message: text(log.message), route: what.route ?? null },
      });
    }
    for (const ex of item.exceptions) {
      out.push({
        type: "error",
        source,
        timestamp: ex.timestamp,
        importance: "critical",
        data: { name: ex.name, message: ex.message, ...(ex.stack && { stack: ex.stack }), route: what.route ?? null },
      });
    }
  }
  return out;
}
