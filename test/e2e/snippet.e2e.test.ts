// Pages written for the original DuckTail package, unchanged, against this Worker: its README's
// snippet pasted verbatim (only the key and host replaced) into pages served from another origin,
// in headless Chromium (Debian's, driven by playwright-core). One pageview per page load (the
// snippet's `page` call and the automatic pageview are one), the `<noscript>` pixel without
// JavaScript, `sessionTimeout` in minutes, the `cookieDomain` cookie, `debug` logging, an endpoint
// behind a path prefix, and GET /snippet handing out the same form. Hosts like www.shop.test
// resolve to 127.0.0.1 inside Chromium, so nothing leaves the machine. Without Chromium the suite
// is skipped, unless DUCKTAIL_REQUIRE_BROWSER=1 (CI installs it), where that fails.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Miniflare } from "miniflare";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snippet } from "../../src/browser";
import { launchChromium, skipBrowser, warnIfSkipped } from "../helpers/browser";
// @ts-expect-error plain .mjs helper without types
import { buildWorker, startWorker } from "../helpers/miniflare.mjs";
import { PageEvents } from "../helpers/watch";

warnIfSkipped("the snippet browser tests");

/** The snippet the original DuckTail README documented, byte for byte. */
const ORIGINAL_SNIPPET = `<!-- DuckTail -->
<script>
  window.duck = window.duck || [];
  duck.push(['init', 'YOUR_WRITE_KEY']);
  duck.push(['page']);
</script>
<script async src="https://YOUR-WORKER.workers.dev/duck.js"></script>
<noscript><img src="https://YOUR-WORKER.workers.dev/p.gif?e=pageview&k=YOUR_WRITE_KEY" width="1" height="1" alt="" /></noscript>`;

/** One tenant per test, so each reads back exactly its own events. */
const TENANTS = [
  "original",
  "later",
  "sync",
  "merge",
  "manual",
  "session",
  "cookie",
  "nocookie",
  "debug",
  "prefix",
  "noscript",
] as const;
type Tenant = (typeof TENANTS)[number];
const KEYS = Object.fromEntries(
  TENANTS.flatMap((t) => [
    [`wk_${t}`, { tenant: `snip-${t}`, scope: "write" }],
    [`rk_${t}`, { tenant: `snip-${t}`, scope: "read" }],
  ]),
);

interface StoredEvent {
  type: string;
  anonymousId: string;
  sessionId: string;
  data: Record<string, unknown>;
}

type Duck = {
  push: (...calls: unknown[]) => number;
  page: (data?: object) => void;
  track: (type: string, data?: object, options?: object) => void;
  flush: () => void;
};
/** The page's globals these tests touch (the test runs in Node, so without DOM types). */
interface PageHistory {
  pushState(state: unknown, unused: string, url: string): void;
  replaceState(state: unknown, unused: string, url: string): void;
}
type PageGlobals = {
  duck: Duck;
  history: PageHistory;
  History: { prototype: PageHistory };
  location: { hash: string };
  Document: { prototype: object };
  DOMException: new (message: string, name: string) => Error;
};

/**
 * What a page did, recorded as it happens: console lines, WebSocket `events` frames sent and `ack`
 * frames received, socket URLs and finished requests (`until`: see PageEvents).
 */
class PageWatch extends PageEvents {
  readonly console: string[] = [];
  readonly sockets: string[] = [];
  readonly requests: string[] = [];
  sent = 0;
  acked = 0;

  constructor(page: Page) {
    super();
    page.on("console", (m) => this.record(() => this.console.push(`${m.type()}: ${m.text()}`)));
    page.on("requestfinished", (r) => this.record(() => this.requests.push(`${r.method()} ${r.url()}`)));
    page.on("websocket", (ws) => {
      this.record(() => this.sockets.push(ws.url()));
      ws.on("framesent", (f) => {
        if (String(f.payload).includes('"type":"events"')) this.record(() => this.sent++);
      });
      ws.on("framereceived", (f) => {
        if (String(f.payload).includes('"type":"ack"')) this.record(() => this.acked++);
      });
    });
  }

  protected override describe(): string {
    return JSON.stringify(this);
  }

  /** At least `frames` events frames went out on the socket and every one sent is acked. */
  settled(frames = 1): Promise<void> {
    return this.until(() => this.sent >= frames && this.acked === this.sent, `${frames} events frame(s) acked`);
  }

  /** The console line matching `re`, once printed. */
  async line(re: RegExp): Promise<string> {
    await this.until(() => this.console.some((l) => re.test(l)), `a console line ${re}`);
    return this.console.find((l) => re.test(l)) as string;
  }
}

describe.skipIf(skipBrowser)("the original DuckTail snippet in Chromium", () => {
  let mf: Miniflare;
  let workerUrl: string;
  let site: Server;
  let port: number;
  let siteUrl: string;
  let browser: Browser;

  beforeAll(async () => {
    // First, so a required but missing Chromium fails before anything else starts.
    // Subdomains for the cookie tests, answered by the site server.
    browser = await launchChromium(["--host-resolver-rules=MAP *.shop.test 127.0.0.1"]);
    ({ mf, url: workerUrl } = await startWorker(buildWorker(), {
      // BASE_PATH: the Worker also answers under /ducktail, for the path-prefix test.
      vars: { DUCKTAIL_KEYS: JSON.stringify(KEYS), BASE_PATH: "/ducktail" },
    }));
    site = createServer(async (req, res) => {
      const url = new URL(req.url ?? "/", `http://${req.headers.host}`);
      res.setHeader("content-type", "text/html");
      const key = `wk_${url.searchParams.get("t") ?? "original"}`;
      const head = (html: string) => `<!doctype html><html><head><title>Shop ${url.pathname}</title>${html}</head>
        <body><p>${url.pathname}</p></body></html>`;
      if (url.pathname === "/blank") return res.end(head(""));
      // duck.js alone, for pages that call init themselves once it loaded.
      if (url.pathname === "/bare") return res.end(head(`<script async src="${workerUrl}/duck.js"></script>`));
      const host = url.searchParams.get("via") === "prefix" ? `${workerUrl}/ducktail` : workerUrl;
      const opts = url.searchParams.get("opts");
      let html = ORIGINAL_SNIPPET.replaceAll("https://YOUR-WORKER.workers.dev", host).replaceAll("YOUR_WRITE_KEY", key);
      if (opts) html = html.replace(`duck.push(['init', '${key}']);`, `duck.push(['init', '${key}', ${opts}]);`);
      res.end(head(html));
    });
    await new Promise<void>((done) => site.listen(0, "127.0.0.1", done));
    port = (site.address() as AddressInfo).port;
    siteUrl = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((done) => site?.close(done));
    await mf?.dispose();
  });

  /** The tenant's stored events (buffered or flushed), in the order they were received. */
  async function eventsOf(tenant: Tenant): Promise<StoredEvent[]> {
    const res = await fetch(`${workerUrl}/events?key=rk_${tenant}&limit=1000`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { events: StoredEvent[] }).events.reverse();
  }

  const pageviews = async (tenant: Tenant) => (await eventsOf(tenant)).filter((e) => e.type === "pageview");

  /** A page of the site with the original snippet; `opts` go into its `init` call. */
  function pageUrl(tenant: Tenant, opts?: object, base = siteUrl, path = "/home"): string {
    const query = new URLSearchParams({ t: tenant });
    if (opts) query.set("opts", JSON.stringify(opts));
    return `${base}${path}?${query}`;
  }

  async function open(context?: BrowserContext): Promise<{ page: Page; watch: PageWatch; context: BrowserContext }> {
    const ctx = context ?? (await browser.newContext());
    const page = await ctx.newPage();
    return { page, watch: new PageWatch(page), context: ctx };
  }

  /** Sends whatever the page still queues, then waits until all its frames are acked. */
  async function drain(page: Page, watch: PageWatch): Promise<void> {
    const before = watch.sent;
    await page.evaluate(() => {
      const duck = (globalThis as unknown as { duck: Duck }).duck;
      duck.track("drained");
      duck.flush();
    });
    await watch.settled(before + 1);
  }

  it("counts one pageview for the original README's snippet, posting to where duck.js came from", async () => {
    const { page, watch, context } = await open();
    await page.goto(pageUrl("original"));
    await drain(page, watch);
    const events = await eventsOf("original");
    const views = events.filter((e) => e.type === "pageview");
    expect(views).toHaveLength(1);
    expect(views[0]?.data).toMatchObject({ path: "/home", title: "Shop /home", url: pageUrl("original") });
    expect(events.find((e) => e.type === "drained")?.anonymousId).toBe(views[0]?.anonymousId);
    // `init` named no endpoint: the socket goes to where the script came from.
    expect(watch.sockets.map((u) => u.split("?")[0])).toEqual([`${workerUrl.replace("http", "ws")}/ws`]);
    // No cookieDomain, no cookie.
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });

  it("merges a later page() for the same location, and counts page() after a navigation it did not see", async () => {
    const { page, watch, context } = await open();
    await page.goto(pageUrl("later"));
    await watch.settled();
    await page.evaluate(() => {
      const { duck, location } = globalThis as unknown as PageGlobals;
      duck.page();
      duck.push(["page"]);
      // A hash change is no navigation to count.
      location.hash = "#reviews";
      duck.page();
    });
    await drain(page, watch);
    expect(await pageviews("later")).toHaveLength(1);

    await page.evaluate(() => {
      const { duck, history, History } = globalThis as unknown as PageGlobals;
      // Seen by duck.js's history hook: the automatic pageview, which the explicit one joins.
      history.pushState({}, "", "/cart?step=1");
      duck.page();
      history.replaceState({ scroll: 1 }, "", "/cart?step=1");
      // Through the prototype, as a router holding the original method would: the hook misses it.
      History.prototype.pushState.call(history, {}, "", "/cart?step=2");
      duck.page();
      duck.page();
    });
    await drain(page, watch);
    const views = await pageviews("later");
    expect(views.map((e) => e.data.url)).toEqual([
      pageUrl("later"),
      `${siteUrl}/cart?step=1`,
      `${siteUrl}/cart?step=2`,
    ]);
    await context.close();
  });

  it("counts page() run right after init once, with its data", async () => {
    const { page, watch, context } = await open();
    await page.goto(`${siteUrl}/bare?t=sync`);
    await page.evaluate(() => {
      const duck = (globalThis as unknown as { duck: Duck }).duck;
      duck.push(["init", "wk_sync"]);
      duck.push(["page", { campaign: "spring" }]);
    });
    await drain(page, watch);
    const views = await pageviews("sync");
    expect(views).toHaveLength(1);
    expect(views[0]?.data).toMatchObject({ campaign: "spring", path: "/bare" });
    await context.close();
  });

  it("adds a later page()'s data to the automatic pageview while that is still unsent", async () => {
    const { page, watch, context } = await open();
    await page.goto(`${siteUrl}/bare?t=merge`);
    await page.evaluate(async () => {
      const duck = (globalThis as unknown as { duck: Duck }).duck;
      duck.push(["init", "wk_merge"]);
      // The automatic pageview is counted once the calls queued with init have run.
      await Promise.resolve();
      duck.page({ campaign: "autumn" });
    });
    await drain(page, watch);
    const views = await pageviews("merge");
    expect(views).toHaveLength(1);
    expect(views[0]?.data).toMatchObject({ campaign: "autumn", path: "/bare" });
    await context.close();
  });

  it("keeps the queued page as the one pageview with autoTrackPageViews off, and counts each page() then", async () => {
    const { page, watch, context } = await open();
    await page.goto(pageUrl("manual", { autoTrackPageViews: false }));
    await drain(page, watch);
    expect((await pageviews("manual")).map((e) => e.data.path)).toEqual(["/home"]);

    await page.evaluate(() => {
      const { duck, history } = globalThis as unknown as PageGlobals;
      history.pushState({}, "", "/step-2");
      duck.page();
      duck.page({ again: true });
    });
    await drain(page, watch);
    expect((await pageviews("manual")).map((e) => e.data.path)).toEqual(["/home", "/step-2", "/step-2"]);
    await context.close();
  });

  it("takes sessionTimeout in minutes: a session survives 29 idle minutes of 30, not 31", async () => {
    const context = await browser.newContext();
    /** Loads the snippet page once more after `idle` minutes (the stored session's last event is moved back). */
    const visit = async (idleMinutes?: number) => {
      const { page, watch } = await open(context);
      if (idleMinutes !== undefined) {
        await page.goto(`${siteUrl}/blank`);
        await page.evaluate((ms) => {
          const sid = JSON.parse(localStorage.getItem("duck_sid") ?? "null") as { id: string; last: number };
          localStorage.setItem("duck_sid", JSON.stringify({ id: sid.id, last: Date.now() - ms }));
        }, idleMinutes * 60_000);
      }
      await page.goto(pageUrl("session", { sessionTimeout: 30 }));
      await watch.settled();
      // Leaving the page ends it without another event that would renew the session.
      await page.goto(`${siteUrl}/blank`);
      await page.close();
    };
    await visit();
    await visit(29);
    await visit(31);
    const sessions = (await pageviews("session")).map((e) => e.sessionId);
    expect(sessions).toHaveLength(3);
    expect(sessions[1]).toBe(sessions[0]);
    expect(sessions[2]).not.toBe(sessions[1]);
    await context.close();
  });

  it("keeps the anonymous id in a duck_aid cookie on cookieDomain, shared by subdomains", async () => {
    const opts = { cookieDomain: ".shop.test" };
    const { page, watch, context } = await open();
    await page.goto(pageUrl("cookie", opts, `http://www.shop.test:${port}`));
    await watch.settled();
    const [first] = await pageviews("cookie");
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    const cookie = cookies[0] as (typeof cookies)[number];
    expect(cookie).toMatchObject({
      name: "duck_aid",
      value: first?.anonymousId,
      domain: ".shop.test",
      path: "/",
      sameSite: "Lax",
      secure: false, // Secure only on https
    });
    const year = Date.now() / 1000 + 365 * 86_400;
    expect(Math.abs(cookie.expires - year)).toBeLessThan(86_400);

    // The same origin without its localStorage: the cookie keeps the visitor.
    await page.evaluate(() => localStorage.clear());
    await page.reload();
    await watch.settled(2);
    // Another subdomain, whose localStorage is empty.
    await page.goto(pageUrl("cookie", opts, `http://blog.shop.test:${port}`, "/post"));
    await watch.settled(3);
    expect(await page.evaluate(() => localStorage.getItem("duck_aid"))).toBe(first?.anonymousId);
    const views = await pageviews("cookie");
    expect(views.map((e) => e.data.url)).toEqual([
      pageUrl("cookie", opts, `http://www.shop.test:${port}`),
      pageUrl("cookie", opts, `http://www.shop.test:${port}`),
      pageUrl("cookie", opts, `http://blog.shop.test:${port}`, "/post"),
    ]);
    expect(new Set(views.map((e) => e.anonymousId))).toEqual(new Set([first?.anonymousId]));
    await context.close();
  });

  it("keeps the anonymous id in localStorage when cookies are blocked", async () => {
    const context = await browser.newContext();
    await context.addInitScript(() => {
      // As in a sandboxed frame: touching document.cookie throws.
      const { Document, DOMException } = globalThis as unknown as PageGlobals;
      const blocked = () => {
        throw new DOMException("cookies are blocked", "SecurityError");
      };
      Object.defineProperty(Document.prototype, "cookie", { get: blocked, set: blocked });
    });
    const { page, watch } = await open(context);
    await page.goto(pageUrl("nocookie", { cookieDomain: ".shop.test" }, `http://www.shop.test:${port}`));
    await watch.settled();
    await page.reload();
    await watch.settled(2);
    const views = await pageviews("nocookie");
    expect(views).toHaveLength(2);
    expect(views[0]?.anonymousId).toMatch(/^[0-9a-f-]{36}$/);
    expect(views[1]?.anonymousId).toBe(views[0]?.anonymousId);
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });

  it("logs each send and each ack or rejection with debug on, and nothing without it", async () => {
    const { page, watch, context } = await open();
    await page.goto(pageUrl("debug", { debug: true }));
    await watch.settled();
    expect(await watch.line(/^log: \[duck\] send 1 events via websocket$/)).toBeTruthy();
    expect(await watch.line(/^log: \[duck\] ack via websocket stored 1$/)).toBeTruthy();
    expect(await watch.line(/^log: \[duck\] pageview of \/home\?t=debug&opts=.* already counted$/)).toBeTruthy();
    await page.evaluate(() =>
      (globalThis as unknown as { duck: Duck }).duck.track("odd", {}, { importance: "urgent" }),
    );
    await drain(page, watch);
    const warning = await watch.line(/^warning: \[duck\] rejected via websocket /);
    expect(warning).toContain("importance");
    await context.close();

    // Over HTTP too, and a page without debug prints none of it.
    const quiet = await open();
    await quiet.page.goto(pageUrl("debug"));
    await quiet.watch.settled();
    const loud = await open();
    await loud.context.addInitScript(() => {
      (globalThis as unknown as { WebSocket: unknown }).WebSocket = undefined;
    });
    await loud.page.goto(pageUrl("debug", { debug: true, flushInterval: 100 }));
    await loud.watch.line(/^warning: \[duck\] websocket unavailable, sending over http$/);
    await loud.watch.line(/^log: \[duck\] send 1 events via http$/);
    await loud.watch.line(/^log: \[duck\] ack via http stored 1$/);
    expect(quiet.watch.console.filter((l) => l.includes("[duck]"))).toEqual([]);
    await quiet.context.close();
    await loud.context.close();
  });

  it("sends to the path prefix duck.js was served under", async () => {
    const { page, watch, context } = await open();
    // The Worker runs with BASE_PATH /ducktail, as on a route like example.com/ducktail/*.
    await page.goto(`${pageUrl("prefix")}&via=prefix`);
    await drain(page, watch);
    expect(watch.requests).toContain(`GET ${workerUrl}/ducktail/duck.js`);
    expect(watch.sockets.map((u) => u.split("?")[0])).toEqual([`${workerUrl.replace("http", "ws")}/ducktail/ws`]);
    expect((await pageviews("prefix")).map((e) => e.data.path)).toEqual(["/home"]);
    await context.close();
  });

  it("hands out the original form at GET /snippet, under the Worker's BASE_PATH", async () => {
    // The suite's Worker runs with BASE_PATH /ducktail: every URL of the snippet keeps it.
    const root = `${workerUrl}/ducktail`;
    const res = await fetch(`${root}/snippet?k=wk_original`);
    expect(res.status).toBe(200);
    const html = await res.text();
    const lines = html.split("\n").map((l) => l.trim());
    expect(lines).toEqual(
      expect.arrayContaining([
        "window.duck = window.duck || [];",
        `duck.push(["init", "wk_original", { endpoint: "${root}" }]);`,
        `duck.push(["page"]);`,
        `<script async src="${root}/duck.js"></script>`,
        `<noscript><img src="${root}/p.gif?e=pageview&k=wk_original" width="1" height="1" alt=""></noscript>`,
      ]),
    );
    // The stub and both calls come before the script that runs them.
    expect(html.indexOf(`duck.push(["page"])`)).toBeLessThan(html.indexOf("<script async"));
    const based = await snippet(new URL("https://example.com/snippet?k=wk_x"), "/ducktail/").text();
    expect(based).toContain(`{ endpoint: "https://example.com/ducktail" }`);
  });

  // The pixel: GET /p.gif with the original's `e` and `k` parameters.
  it("counts one more pageview from the <noscript> pixel on the same page without JavaScript", async () => {
    const { page, watch, context } = await open();
    await page.goto(pageUrl("noscript"));
    await drain(page, watch);
    expect(await pageviews("noscript")).toHaveLength(1);
    await context.close();

    const noJs = await browser.newContext({ javaScriptEnabled: false });
    const bare = await noJs.newPage();
    const workerRequests: string[] = [];
    bare.on("request", (r) => {
      if (r.url().startsWith(workerUrl)) workerRequests.push(`${r.method()} ${new URL(r.url()).pathname}`);
    });
    const pixel = bare.waitForResponse((r) => r.url().startsWith(`${workerUrl}/p.gif?`), { timeout: 10_000 });
    await bare.goto(pageUrl("noscript"));
    const answer = await pixel;
    expect(answer.status()).toBe(200);
    expect(answer.headers()["content-type"]).toBe("image/gif");
    expect(workerRequests).toEqual(["GET /p.gif"]);
    const views = await pageviews("noscript");
    expect(views).toHaveLength(2);
    // The pixel's page, from its Referer (cut to the origin: the Worker is another origin).
    expect(String(views[1]?.data.url)).toContain(siteUrl);
    await noJs.close();
  });
});
