import { describe, expect, it } from "vitest";
import { ev, tenant } from "./harness";

interface Row {
  id: string;
  type: string;
  source: string;
  importance: string;
  receivedAt: number;
  data: Record<string, unknown>;
}

describe("GET /events", () => {
  it("answers flushed and still-buffered events together, newest first, filtered", async () => {
    const t = tenant("query-all");
    await t.fetch("/buffer/scale", { method: "POST", body: JSON.stringify({ tier: 2 }) });
    const sent: string[] = [];
    for (let i = 0; i < 12; i++) {
      sent.push(`q${i}`);
      const importance = i % 3 === 0 ? "high" : "normal";
      await t.post("/e", [ev(i % 2 ? "click" : "view", { id: `q${i}`, importance, data: { i } })]);
      if (i === 5) await t.post("/flush", {}); // half in Parquet, half still buffered
      await new Promise((r) => setTimeout(r, 2)); // distinct receipt times
    }
    const res = await t.fetch("/events?limit=100");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { events: Row[]; count: number };
    expect(body.count).toBe(12);
    expect(body.events.map((e) => e.id)).toEqual([...sent].reverse());
    expect(body.events[0]).toMatchObject({ id: "q11", type: "click", source: "test", data: { i: 11 } });

    const clicks = (await (await t.fetch("/events?type=click&importance=high")).json()) as { events: Row[] };
    expect(clicks.events.map((e) => e.id)).toEqual(["q9", "q3"]);
    const two = (await (await t.fetch("/events?limit=2")).json()) as { events: Row[] };
    expect(two.events.map((e) => e.id)).toEqual(["q11", "q10"]);
    const older = (await (await t.fetch(`/events?to=${body.events[5]?.receivedAt}`)).json()) as { events: Row[] };
    expect(older.events.map((e) => e.id)).toEqual(["q5", "q4", "q3", "q2", "q1", "q0"]);
  });

  it("streams NDJSON and checks its parameters", async () => {
    const t = tenant("query-ndjson");
    await t.post("/e", [ev("a", { id: "n1" }), ev("b", { id: "n2" })]);
    await t.post("/flush", {});
    await t.post("/e", [ev("c", { id: "n3" })]);
    const res = await t.fetch("/events?format=ndjson&limit=10");
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Row);
    expect(lines.map((l) => l.id).sort()).toEqual(["n1", "n2", "n3"]);
    for (const bad of ["format=xml", "limit=0", "limit=20000", "from=yesterday", "importance=urgent", "from=10&to=5"]) {
      expect((await t.fetch(`/events?${bad}`)).status, bad).toBe(400);
    }
    expect((await tenant("query-ndjson", "write").fetch("/events")).status).toBe(403);
  });
});
