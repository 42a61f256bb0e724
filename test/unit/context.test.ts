import { describe, expect, it, vi } from "vitest";
import { EventColumns } from "../../src/columns/columns";
import { contextHeader, ipPolicy, parseAgent, requestContext, truncateIp } from "../../src/context";
import type { EventContext, StoredEvent } from "../../src/protocol/events";

const FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
const IPAD =
  "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

describe("request context", () => {
  it("parses a User-Agent into browser, version, OS and device type, and flags bots", () => {
    expect(parseAgent(FIREFOX_WINDOWS)).toEqual({
      browser: "Firefox",
      browserVersion: "133.0",
      os: "Windows",
      osVersion: "10",
      deviceType: "desktop",
      bot: false,
    });
    expect(parseAgent(IPAD)).toMatchObject({ browser: "Mobile Safari", os: "iOS", deviceType: "tablet", bot: false });
    expect(parseAgent("curl/8.5.0").bot).toBe(true);
    expect(parseAgent("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)").bot).toBe(true);
    expect(parseAgent(null)).toEqual({
      browser: null,
      browserVersion: null,
      os: null,
      osVersion: null,
      deviceType: null,
      bot: null,
    });
  });

  it("truncates IPv4 to its /24 and IPv6 to its /48, and refuses what is neither", () => {
    expect(truncateIp("203.0.113.77")).toBe("203.0.113.0");
    expect(truncateIp("2001:db8:abcd:12::1")).toBe("2001:db8:abcd::");
    expect(truncateIp("2001:0db8:0000:0012:0000:0000:0000:0001")).toBe("2001:db8:0::");
    expect(truncateIp("::1")).toBe("0:0:0::");
    expect(truncateIp("::ffff:192.0.2.1")).toBe("0:0:0::");
    expect(truncateIp("not-an-ip")).toBeNull();
    expect(truncateIp("1:2:3:4:5:6:7:8:9")).toBeNull();
  });

  it("takes drop, truncate or keep from IP_POLICY, and truncates (with a warning) for anything else", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    expect([ipPolicy(undefined), ipPolicy("keep"), ipPolicy("drop"), ipPolicy("truncate")]).toEqual([
      "truncate",
      "keep",
      "drop",
      "truncate",
    ]);
    expect(ipPolicy("none")).toBe("truncate");
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('IP_POLICY "none"'));
    warn.mockRestore();
  });

  it("reads geography from request.cf and the IP from CF-Connecting-IP", () => {
    const req = {
      headers: new Headers({ "user-agent": FIREFOX_WINDOWS, "cf-connecting-ip": "198.51.100.9" }),
      cf: { country: "AT", region: "Vienna", city: "Wien", timezone: "Europe/Vienna", asn: 1 },
    };
    expect(requestContext(req, "truncate")).toMatchObject({
      country: "AT",
      region: "Vienna",
      city: "Wien",
      timezone: "Europe/Vienna",
      browser: "Firefox",
      ip: "198.51.100.0",
    });
    expect(requestContext(req, "drop").ip).toBeNull();
    expect(requestContext({ headers: new Headers() }, "keep")).toMatchObject({ country: null, ip: null, bot: null });
  });

  it("writes a context as a header value of ASCII that is still its JSON", () => {
    const context = requestContext({ headers: new Headers(), cf: { city: "São Paulo", region: "Zürich" } }, "drop");
    const header = contextHeader(context);
    expect(/^[\x20-\x7e]*$/.test(header)).toBe(true);
    expect(JSON.parse(header)).toEqual(context);
  });
});

describe("context columns of the buffer", () => {
  const context: EventContext = {
    country: "DE",
    region: "Berlin",
    city: "Berlin",
    timezone: "Europe/Berlin",
    browser: "Chrome",
    browserVersion: "131.0",
    os: "Mac OS",
    osVersion: "10.15.7",
    deviceType: "desktop",
    bot: false,
    ip: "203.0.113.0",
  };
  const event = (id: string, seq: number, withContext: boolean): StoredEvent => ({
    id,
    tenant: "t",
    ts: 1_700_000_000_000,
    receivedAt: 1_700_000_000_000,
    source: "s",
    type: "x",
    importance: "normal",
    userId: null,
    anonymousId: null,
    sessionId: null,
    data: "{}",
    replica: "t-0",
    seq,
    ...(withContext && { context }),
  });

  it("shares one context among a batch's rows and writes each row's into the Arrow columns", () => {
    const columns = new EventColumns("t", "t-0");
    const plain = { ...event("a", 1, false) };
    columns.pushBatch([plain, { ...plain, id: "b" }], 1, 1, false, JSON.stringify(context));
    columns.pushBatch([{ ...plain, id: "c" }], 2, 3, false, null);
    expect(columns.row(0).context).toEqual(context);
    expect(columns.row(1).context).toEqual(context);
    expect(columns.row(2).context).toBeUndefined();
    const batch = columns.recordBatch();
    expect([0, 1, 2].map((i) => batch.getChild("city")?.get(i))).toEqual(["Berlin", "Berlin", null]);
    expect([0, 1, 2].map((i) => batch.getChild("is_bot")?.get(i))).toEqual([false, false, null]);
  });

  it("treats a context with nothing known as none, as Parquet reads it back", () => {
    const columns = new EventColumns("t", "t-0");
    const nothing = Object.fromEntries(Object.keys(context).map((k) => [k, null]));
    columns.pushBatch([event("a", 1, false)], 1, 1, false, JSON.stringify(nothing));
    expect(columns.row(0).context).toBeUndefined();
  });

  it("keeps each row's context through the SQLite blob, and reads blobs of the first format", () => {
    const rows = [event("a", 1, true), event("b", 2, false), event("c", 3, true)];
    const columns = EventColumns.from(rows);
    const copy = new EventColumns("t", "t-0");
    copy.appendEncoded(columns.encode(0, 3));
    expect([0, 1, 2].map((i) => copy.row(i))).toEqual(rows);
    // Version 1: no context per row and no context table.
    const v2 = EventColumns.from(rows.map((r) => ({ ...r, context: undefined }))).encode(0, 3);
    const n = 3;
    const contextsAt = 16 + n * 24 + n * 4 * 7;
    const v1 = new Uint8Array(v2.length - n * 4);
    v1.set(v2.subarray(0, contextsAt));
    v1.set(v2.subarray(contextsAt + n * 4), contextsAt);
    new Uint32Array(v1.buffer, 0, 1)[0] = 1;
    const old = new EventColumns("t", "t-0");
    old.appendEncoded(v1);
    expect([0, 1, 2].map((i) => old.row(i).id)).toEqual(["a", "b", "c"]);
    expect(old.row(0).context).toBeUndefined();
  });
});
