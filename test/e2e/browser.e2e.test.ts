// duck.js in headless Chromium (Debian's, driven by playwright-core) on a page served from another
// origin than the Worker (Miniflare), pasted from GET /snippet: pageviews, clicks and uncaught
// errors arrive over the WebSocket; with WebSockets gone they arrive over HTTP; what is queued
// when the page goes away arrives by sendBeacon. Without Chromium the suite is skipped, unless
// DUCKTAIL_REQUIRE_BROWSER=1 (CI installs it), where that fails.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Miniflare } from "miniflare";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, skipBrowser, warnIfSkipped } from "../helpers/browser";
import { lakeRows } from "../helpers/lake";
// @ts-expect-error plain .mjs helper without types
import { buildWorker, startWorker } from "../helpers/miniflare.mjs";

warnIfSkipped("the duck.js browser tests");

/** One tenant per test, so each reads back exactly its own events. */
const TENANTS = ["ws", "http", "dropped", "backlog", "beacon", "return"] as const;
const KEYS = Object.fromEntries(
  TENANTS.flatMap((t) => [
    [`wk_${t}`, { tenant: `web-${t}`, scope: "write" }],
    [`rk_${t}`, { tenant: `web-${t}`, scope: "read" }],
    [`ak_${t}`, { tenant: `web-${t}`, scope: "admin" }],
  ]),
);

interface BrowserEvent {
  type: string;
  source: string;
  importance: string;
  userId: string | null;
  anonymousId: string;
  sessionId: string;
  data: Record<string, unknown>;
}

describe.skipIf(skipBrowser)("duck.js in Chromium", () => {
  let mf: Miniflare;
  let workerUrl: string;
  let site: Server;
  let siteUrl: string;
  let browser: Browser;

  beforeAll(async () => {
    // First, so a required but missing Chromium fails before anything else starts.
    browser = await launchChromium();
    ({ mf, url: workerUrl } = await startWorker(buildWorker(), { vars: { DUCKTAIL_KEYS: JSON.stringify(KEYS) } }));
    site = createServer(async (req, res) => {
      const url = new URL(req.url ?? "/", "http://site");
      const tenant = url.searchParams.get("t") ?? "ws";
      // The snippet exactly as the Worker hands it out, with shorter batching for the test.
      const snippet = (await (await fetch(`${workerUrl}/snippet?k=wk_${tenant}`)).text()).replace(
        "{ endpoint:",
        `{ flushInterval: ${url.searchParams.get("flush") ?? 200}, endpoint:`,
      );
      res.setHeader("content-type", "text/html");
      // A call queued before duck.js has loaded (the script tag is async).
      const queued = `<script>duck.push(["identify", "user-7", { plan: "pro" }]);</script>`;
      res.end(`<!doctype html><html><head><title>Shop ${url.pathname}</title>${snippet}${queued}</head><body>
        <button id="buy" onclick="duck.track('click_buy', { sku: 'A1' })">Buy</button>
        <button id="boom" onclick="setTimeout(() => { throw new Error('boom from a button') })">Break</button>
        <a id="next" href="/next?t=${tenant}&flush=${url.searchParams.get("flush") ?? 200}">Next</a>
      </body></html>`);
    });
    await new Promise<void>((done) => site.listen(0, "127.0.0.1", done));
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((done) => site?.close(done));
    await mf?.dispose();
  });

  /** Polls GET /events (lake + live buffers) until `ready` holds for the tenant's events. */
  async function eventsOf(tenant: string, ready: (events: BrowserEvent[]) => boolean): Promise<BrowserEvent[]> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await fetch(`${workerUrl}/events?key=rk_${tenant}&limit=1000`);
      const events = ((await res.json()) as { events: BrowserEvent[] }).events;
      if (ready(events)) return events;
      if (Date.now() > deadline) throw new Error(`events of ${tenant} never got ready: ${JSON.stringify(events)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Every request the page makes to the Worker, as "METHOD path". */
  function workerRequests(page: Page): string[] {
    const seen: string[] = [];
    page.on("request", (r) => {
      if (r.url().startsWith(workerUrl)) seen.push(`${r.method()} ${new URL(r.url()).pathname}`);
    });
    page.on("websocket", (ws) => seen.push(`WS ${new URL(ws.url()).pathname}`));
    return seen;
  }

  const has = (events: BrowserEvent[], type: string) => events.some((e) => e.type === type);

  it("delivers a pageview, a click and an uncaught error over WebSocket", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const requests = workerRequests(page);
    await page.goto(`${siteUrl}/home?t=ws`);
    await page.click("#buy");
    await page.click("#boom");
    await page.evaluate(() => (globalThis as unknown as { duck: unknown[] }).duck.push(["track", "pushed_after_load"]));
    const events = await eventsOf(
      "ws",
      (e) => has(e, "pageview") && has(e, "click_buy") && has(e, "error") && has(e, "pushed_after_load"),
    );

    const pageview = events.find((e) => e.type === "pageview") as BrowserEvent;
    expect(pageview).toMatchObject({ source: "browser", importance: "normal" });
    expect(pageview.data).toMatchObject({ path: "/home", title: "Shop /home", url: `${siteUrl}/home?t=ws` });
    const click = events.find((e) => e.type === "click_buy") as BrowserEvent;
    expect(click.data).toMatchObject({ sku: "A1", path: "/home" });
    // The identify queued before load applies to what follows.
    expect(events.find((e) => e.type === "identify")?.data).toMatchObject({ plan: "pro" });
    expect(click.userId).toBe("user-7");
    expect(pageview.userId).toBe("user-7");
    const error = events.find((e) => e.type === "error") as BrowserEvent;
    expect(error.importance).toBe("high");
    expect(error.data.message).toContain("boom from a button");
    // One visitor, one session, on every event.
    expect(new Set(events.map((e) => e.anonymousId)).size).toBe(1);
    expect(new Set(events.map((e) => e.sessionId)).size).toBe(1);
    expect(requests).toContain("WS /ws");
    expect(requests.filter((r) => r === "POST /e")).toEqual([]);
    await context.close();

    // And they land in the Parquet lake as browser events of the page's tenant.
    expect((await fetch(`${workerUrl}/flush?key=ak_ws`, { method: "POST" })).status).toBe(200);
    const rows = (await lakeRows(mf)).rows.filter((r) => r.tenant === "web-ws");
    expect(rows.map((r) => r.type)).toEqual(expect.arrayContaining(["pageview", "click_buy", "error"]));
    const lakeError = rows.find((r) => r.type === "error");
    expect(lakeError).toMatchObject({ source: "browser", importance: "high", user_id: "user-7" });
    expect(JSON.parse(lakeError?.data ?? "{}")).toMatchObject({ path: "/home" });
  });

  it("falls back to HTTP when WebSockets are blocked", async () => {
    const context = await browser.newContext();
    await context.addInitScript(() => {
      // As a proxy or a privacy extension that refuses sockets would leave it.
      (globalThis as unknown as { WebSocket: unknown }).WebSocket = undefined;
    });
    const page = await context.newPage();
    const requests = workerRequests(page);
    await page.goto(`${siteUrl}/home?t=http`);
    await page.click("#buy");
    await page.click("#boom");
    const events = await eventsOf("http", (e) => has(e, "pageview") && has(e, "click_buy") && has(e, "error"));
    expect(events.find((e) => e.type === "click_buy")?.data).toMatchObject({ sku: "A1" });
    expect(requests).toContain("POST /e");
    expect(requests).not.toContain("WS /ws");
    await context.close();
  });

  it("falls back to HTTP when every WebSocket closes before the server answers", async () => {
    const context = await browser.newContext();
    let upgrades = 0;
    // As a proxy that accepts the upgrade and drops the connection: the page sees open, then close.
    await context.routeWebSocket(/\/ws\?/, (ws) => {
      upgrades++;
      ws.close();
    });
    const page = await context.newPage();
    const requests = workerRequests(page);
    await page.goto(`${siteUrl}/home?t=dropped`);
    await page.click("#buy");
    const events = await eventsOf("dropped", (e) => has(e, "pageview") && has(e, "click_buy"));
    expect(events.filter((e) => e.type === "pageview")).toHaveLength(1);
    expect(upgrades).toBe(3);
    expect(requests).toContain("POST /e");
    await context.close();
  });

  it("delivers a backlog piled up during an HTTP outage, in batches, once the Worker is back", async () => {
    const context = await browser.newContext();
    await context.addInitScript(() => {
      (globalThis as unknown as { WebSocket: unknown }).WebSocket = undefined;
    });
    const page = await context.newPage();
    let refused = 0;
    const outage = (route: { abort: () => Promise<void> }) => {
      refused++;
      return route.abort();
    };
    await page.route(`${workerUrl}/e?*`, outage);
    await page.goto(`${siteUrl}/home?t=backlog`);
    // ~300 bytes each: 400 of them are far over the 64 KB a keepalive request may carry.
    await page.evaluate(() => {
      const duck = (globalThis as unknown as { duck: { track: (t: string, d: object) => void } }).duck;
      for (let i = 0; i < 400; i++) duck.track("backlog", { i, note: "x".repeat(250) });
    });
    await expect.poll(() => refused, { timeout: 10_000 }).toBeGreaterThan(3);
    await page.unroute(`${workerUrl}/e?*`, outage);
    const events = await eventsOf("backlog", (e) => e.filter((x) => x.type === "backlog").length >= 400);
    const seen = events.filter((e) => e.type === "backlog").map((e) => e.data.i as number);
    expect(new Set(seen).size).toBe(400);
    await context.close();
  });

  it("sends what is queued with sendBeacon when the page goes away, with a pageleave", async () => {
    const context = await browser.newContext();
    await context.addInitScript(() => {
      // Counts beacons in sessionStorage, which the next page of the tab can read.
      type Beacon = (url: string, data?: unknown) => boolean;
      const nav = (globalThis as unknown as { navigator: { sendBeacon: Beacon } }).navigator;
      const send = nav.sendBeacon.bind(nav);
      nav.sendBeacon = (url, data) => {
        sessionStorage.setItem("beacons", String(Number(sessionStorage.getItem("beacons") ?? 0) + 1));
        return send(url, data);
      };
    });
    const page = await context.newPage();
    // Batches would wait a minute: only the page hide sends them.
    await page.goto(`${siteUrl}/home?t=beacon&flush=60000`);
    await page.click("#buy");
    await page.click("#next");
    await page.waitForURL(/\/next/);
    const events = await eventsOf("beacon", (e) => has(e, "click_buy") && has(e, "pageleave"));
    const leave = events.find((e) => e.type === "pageleave") as BrowserEvent;
    expect(leave.importance).toBe("low");
    expect(leave.data.path).toBe("/home");
    expect(leave.data.duration).toBeGreaterThanOrEqual(0);
    expect(await page.evaluate(() => sessionStorage.getItem("beacons"))).toBe("1");
    await context.close();
  });

  it("sends a pageleave for each time the tab is hidden, also after the visitor comes back", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // The socket sends the pageview as soon as it opens. Hidden while that frame is unacked, the
    // page would also beacon it (at least once), so the tab switches wait for its ack.
    const pageviewAcked = new Promise<void>((resolve) => {
      page.on("websocket", (ws) =>
        ws.on("framereceived", (f) => {
          if (String(f.payload).includes('"type":"ack"')) resolve();
        }),
      );
    });
    await page.goto(`${siteUrl}/home?t=return&flush=60000`);
    await pageviewAcked;
    // As switching to another tab and back, twice: the browser's own visibility events.
    await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: EventTarget }).document;
      let state = "visible";
      Object.defineProperty(doc, "visibilityState", { get: () => state });
      for (const next of ["hidden", "visible", "hidden"]) {
        state = next;
        doc.dispatchEvent(new Event("visibilitychange"));
      }
    });
    const events = await eventsOf("return", (e) => e.filter((x) => x.type === "pageleave").length >= 2);
    expect(events.filter((e) => e.type === "pageleave").map((e) => e.data.path)).toEqual(["/home", "/home"]);
    expect(events.filter((e) => e.type === "pageview")).toHaveLength(1);
    await context.close();
  });
});
