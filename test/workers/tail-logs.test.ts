import { describe, expect, it } from "vitest";
import worker from "../../src/worker";
import { eventually, tenant } from "./harness";

const AT = 1_764_000_000_000;

/** Two invocations of a Worker "shop" as the runtime hands them to a tail consumer. */
const ITEMS = [
  {
    scriptName: "shop",
    eventTimestamp: AT,
    outcome: "exception",
    cpuTime: 3,
    wallTime: 41,
    truncated: false,
    event: {
      request: { url: "https://shop.example/cart?id=7", method: "POST", headers: {} },
      response: { status: 500 },
    },
    logs: [
      { timestamp: AT + 1, level: "log", message: ["adding", { sku: "A1" }] },
      { timestamp: AT + 2, level: "warn", message: ["stock low"] },
    ],
    exceptions: [{ timestamp: AT + 3, name: "TypeError", message: "x is undefined", stack: "at cart (shop.js:3:1)" }],
    diagnosticsChannelEvents: [],
    executionModel: "stateless",
  },
  {
    scriptName: "shop",
    eventTimestamp: AT + 60_000,
    outcome: "ok",
    cpuTime: 1,
    wallTime: 5,
    truncated: false,
    event: { cron: "*/5 * * * *", scheduledTime: AT + 60_000 },
    logs: [],
    exceptions: [],
    diagnosticsChannelEvents: [],
    executionModel: "stateless",
  },
] as unknown as TraceItem[];

describe("Worker tail consumer", () => {
  it("turns trace items into request, log and error events with source worker:<script>", async () => {
    const t = tenant("tail-logs");
    await worker.tail(ITEMS, { ...t.env, TAIL_TENANT: t.name });
    const { events } = (await (await t.fetch("/events?limit=100")).json()) as {
      events: { type: string; source: string; importance: string; ts: number; data: Record<string, unknown> }[];
    };
    expect(events.every((e) => e.source === "worker:shop")).toBe(true);
    const byType = (type: string) => events.filter((e) => e.type === type).sort((a, b) => a.ts - b.ts);
    expect(byType("request").map((e) => [e.ts, e.importance, e.data])).toEqual([
      [
        AT,
        "high",
        {
          trigger: "fetch",
          method: "POST",
          url: "https://shop.example/cart?id=7",
          route: "/cart",
          status: 500,
          outcome: "exception",
          duration: 41,
          cpuTime: 3,
          logs: 2,
          exceptions: 1,
        },
      ],
      [
        AT + 60_000,
        "normal",
        { trigger: "scheduled", cron: "*/5 * * * *", outcome: "ok", duration: 5, cpuTime: 1, logs: 0, exceptions: 0 },
      ],
    ]);
    expect(byType("log").map((e) => [e.importance, e.data.message])).toEqual([
      ["normal", 'adding {"sku":"A1"}'],
      ["high", "stock low"],
    ]);
    expect(byType("error")).toMatchObject([
      { importance: "critical", data: { name: "TypeError", message: "x is undefined", route: "/cart" } },
    ]);
    // The latency view reads the invocations' wall time per route.
    // (Views follow ingest within about a second: replicas push to the tenant's view aggregator.)
    await eventually(async () => {
      const body = (await (await t.fetch("/buffer/mv/latency?window=48h")).json()) as { rows: { route: string }[] };
      return body.rows.some((r) => r.route === "/cart");
    });
  });
});
