import type { Importance, StoredEvent } from "../../src/protocol/events";

const IMPORTANCES: Importance[] = ["low", "normal", "high", "critical"];

/** Deterministic stored events with every column filled, nulls and non-ASCII included. */
export function sampleEvents(n: number, start = 0): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (let i = start; i < start + n; i++) {
    out.push({
      id: `evt-${i}`,
      tenant: "acme",
      ts: 1_764_000_000_000 + i * 37,
      receivedAt: 1_764_000_000_500 + i * 40,
      source: i % 3 === 0 ? "web-app" : "api",
      type: i % 5 === 0 ? "error" : "pageview",
      importance: IMPORTANCES[i % 4] as Importance,
      userId: i % 2 === 0 ? `user-${i % 97}` : null,
      anonymousId: `anon-${i % 1013}`,
      sessionId: i % 7 === 0 ? null : `sess-${Math.floor(i / 50)}`,
      data: JSON.stringify({
        path: `/page/${i % 200}`,
        ms: (i * 13) % 977,
        note: i % 11 === 0 ? "héllo ✓ 日本" : "ok",
      }),
      replica: "acme-0",
      seq: i,
    });
  }
  return out;
}
