// The context every analytics ingest adds: geography from request.cf, the parsed User-Agent and
// the IP under IP_POLICY, stored as columns of their own on every path (HTTP, socket, Segment),
// filterable in the live tail and GET /events, and never written over the client's data.
import { describe, expect, it } from "vitest";
import { EventColumns } from "../../src/columns/columns";
import { encodeTable } from "../../src/columns/parquet";
import { describeFile } from "../../src/columns/stats";
import { compactHour } from "../../src/lake/compaction";
import { allRows, bucket, catalogOf, ev, readObject, tenant } from "./harness";

const CHROME_MAC =
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPHONE =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const BERLIN = { country: "DE", region: "Berlin", city: "Berlin", timezone: "Europe/Berlin" };
const SAO_PAULO = { country: "BR", region: "São Paulo", city: "São Paulo", timezone: "America/Sao_Paulo" };

function from(ua: string, ip: string, cf: Record<string, string>): RequestInit {
  return { headers: { "user-agent": ua, "cf-connecting-ip": ip }, cf } as RequestInit;
}

describe("server-side context", () => {
  it("stores country, region, city, timezone, the parsed User-Agent and a truncated IP as columns", async () => {
    const t = tenant("ctx-http");
    const init = from(CHROME_MAC, "203.0.113.77", BERLIN);
    const res = await t.fetch("/e", { ...init, method: "POST", body: JSON.stringify(ev("pageview")) });
    expect(await res.json()).toMatchObject({ stored: 1 });
    await t.post("/flush", {});
    const [row] = await allRows("ctx-http");
    expect(row).toMatchObject({
      country: "DE",
      region: "Berlin",
      city: "Berlin",
      timezone: "Europe/Berlin",
      browser: "Chrome",
      browser_version: "131.0.0.0",
      os: "Mac OS",
      device_type: "desktop",
      is_bot: false,
      ip: "203.0.113.0",
    });
  });

  it("keeps the client's own data.* as sent: context goes to its own columns", async () => {
    const t = tenant("ctx-data");
    const mine = { country: "FR", ip: "10.1.2.3", browser: "mine" };
    await t.fetch("/e", {
      ...from(IPHONE, "198.51.100.4", SAO_PAULO),
      method: "POST",
      body: JSON.stringify(ev("x", { data: mine })),
    });
    await t.post("/flush", {});
    const [row] = await allRows("ctx-data");
    expect(JSON.parse(row?.data as string)).toEqual(mine);
    expect(row).toMatchObject({ country: "BR", city: "São Paulo", browser: "Mobile Safari", device_type: "mobile" });
  });

  it("handles the IP by IP_POLICY: keep, drop, and /48 for IPv6 by default", async () => {
    const keep = tenant("ctx-ip-keep", "admin", { IP_POLICY: "keep" });
    const drop = tenant("ctx-ip-drop", "admin", { IP_POLICY: "drop" });
    const v6 = tenant("ctx-ip-v6");
    await keep.fetch("/e", { ...from(CHROME_MAC, "203.0.113.77", BERLIN), method: "POST", body: '{"type":"a"}' });
    await drop.fetch("/e", { ...from(CHROME_MAC, "203.0.113.77", BERLIN), method: "POST", body: '{"type":"a"}' });
    await v6.fetch("/e", { ...from(CHROME_MAC, "2001:db8:abcd:12::1", BERLIN), method: "POST", body: '{"type":"a"}' });
    for (const t of [keep, drop, v6]) await t.post("/flush", {});
    expect((await allRows("ctx-ip-keep"))[0]?.ip).toBe("203.0.113.77");
    expect((await allRows("ctx-ip-drop"))[0]).toMatchObject({ ip: null, country: "DE" });
    expect((await allRows("ctx-ip-v6"))[0]?.ip).toBe("2001:db8:abcd::");
  });

  it("stamps a socket's events with the context of its upgrade, and flags bots", async () => {
    const t = tenant("ctx-socket");
    const init = from(GOOGLEBOT, "66.249.66.1", { country: "US", city: "Mountain View" });
    const res = await t.fetch("/ws", { ...init, headers: { ...(init.headers as object), Upgrade: "websocket" } });
    const ws = res.webSocket as WebSocket;
    ws.accept();
    const ack = new Promise<string>((resolve) => ws.addEventListener("message", (e) => resolve(e.data as string)));
    ws.send(JSON.stringify({ type: "events", id: "b1", events: [ev("crawl"), ev("crawl")] }));
    expect(JSON.parse(await ack)).toMatchObject({ type: "ack", stored: 2 });
    ws.close();
    await t.post("/flush", {});
    const rows = await allRows("ctx-socket");
    expect(rows.map((r) => [r.country, r.city, r.is_bot, r.ip])).toEqual([
      ["US", "Mountain View", true, "66.249.66.0"],
      ["US", "Mountain View", true, "66.249.66.0"],
    ]);
  });

  it("keeps confirmed events' context through SQLite", async () => {
    const t = tenant("ctx-confirmed");
    const res = await t.fetch("/e?storageMode=confirmed", {
      ...from(IPHONE, "198.51.100.4", SAO_PAULO),
      method: "POST",
      body: JSON.stringify([ev("a"), ev("b")]),
    });
    expect(await res.json()).toMatchObject({ stored: 2, storageMode: "confirmed" });
    await t.post("/flush", {});
    const rows = await allRows("ctx-confirmed");
    expect(rows.map((r) => [r.type, r.city, r.os])).toEqual([
      ["a", "São Paulo", "iOS"],
      ["b", "São Paulo", "iOS"],
    ]);
  });

  it("filters the live tail on context.* paths", async () => {
    const t = tenant("ctx-tail");
    const sub = await t.socket();
    const reply = await sub.request({
      type: "subscribe",
      filter: { where: [{ path: "context.country", op: "eq", value: "BR" }] },
    });
    const subscription = reply.subscription as string;
    await t.fetch("/e", { ...from(CHROME_MAC, "203.0.113.77", BERLIN), method: "POST", body: '{"type":"berlin"}' });
    await t.fetch("/e", { ...from(IPHONE, "198.51.100.4", SAO_PAULO), method: "POST", body: '{"type":"sao-paulo"}' });
    const frame = await sub.next();
    expect(frame).toMatchObject({ type: "tail", subscription });
    const events = frame.events as { type: string; context: Record<string, unknown> }[];
    expect(events.map((e) => e.type)).toEqual(["sao-paulo"]);
    expect(events[0]?.context).toMatchObject({ country: "BR", city: "São Paulo", deviceType: "mobile", bot: false });
  });

  it("filters GET /events by country, browser and bot, buffered and flushed alike", async () => {
    const t = tenant("ctx-events");
    await t.fetch("/e", { ...from(CHROME_MAC, "203.0.113.77", BERLIN), method: "POST", body: '{"type":"berlin"}' });
    await t.fetch("/e", {
      ...from(GOOGLEBOT, "66.249.66.1", { country: "US" }),
      method: "POST",
      body: '{"type":"bot"}',
    });
    await t.post("/flush", {});
    await t.fetch("/e", { ...from(IPHONE, "198.51.100.4", SAO_PAULO), method: "POST", body: '{"type":"sao-paulo"}' });
    const types = async (q: string) =>
      ((await (await t.fetch(`/events?${q}`)).json()) as { events: { type: string }[] }).events.map((e) => e.type);
    expect(await types("country=DE,BR")).toEqual(["sao-paulo", "berlin"]);
    expect(await types("browser=Chrome")).toEqual(["berlin"]);
    expect(await types("bot=true")).toEqual(["bot"]);
    expect((await t.fetch("/events?bot=maybe")).status).toBe(400);
    const [row] = ((await (await t.fetch("/events?country=DE")).json()) as { events: Record<string, unknown>[] })
      .events;
    expect(row?.context).toMatchObject({ country: "DE", browser: "Chrome", ip: "203.0.113.0" });
  });

  it("reads and compacts an hour that mixes files written before the context columns", async () => {
    const t = tenant("ctx-old");
    await t.fetch("/e", {
      ...from(CHROME_MAC, "203.0.113.77", BERLIN),
      method: "POST",
      body: '{"type":"new","id":"n1"}',
    });
    const flushed = (await (await t.post("/flush", {})).json()) as { files: string[] };
    const key = flushed.files[0] as string;
    // A file of the first release: the 13 core columns only.
    const old = EventColumns.from([
      {
        id: "o1",
        tenant: "ctx-old",
        ts: Date.now(),
        receivedAt: Date.now(),
        source: "old",
        type: "old",
        importance: "normal",
        userId: null,
        anonymousId: null,
        sessionId: null,
        data: "{}",
        replica: "ctx-old-0",
        seq: 999_999,
      },
    ]).recordBatch();
    const { Table } = await import("apache-arrow");
    const core = new Table(old).select(old.schema.fields.slice(0, 13).map((f) => f.name));
    const oldKey = key.replace(/[^/]+\.parquet$/, "old-0-1.parquet");
    const body = encodeTable(core);
    await bucket().put(oldKey, body);
    const hourOfKey = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    await catalogOf("ctx-old").commit({ change: "insert", add: [describeFile(oldKey, hourOfKey, body, core)] });
    const events = ((await (await t.fetch("/events")).json()) as { events: Record<string, unknown>[] }).events;
    expect(
      events.map((e) => [e.type, (e.context as { country?: string } | undefined)?.country ?? null]).sort(),
    ).toEqual([
      ["new", "DE"],
      ["old", null],
    ]);
    const hour = Math.floor(Number(events[0]?.receivedAt) / 3_600_000) * 3_600_000;
    const summary = await compactHour(bucket(), catalogOf("ctx-old"), hour);
    expect(summary).toMatchObject({ inputs: 2, rowsOut: 2 });
    const rows = await readObject(summary.key);
    expect(rows.map((r) => [r.type, r.country, r.is_bot]).sort()).toEqual([
      ["new", "DE", false],
      ["old", null, null],
    ]);
  });
});
