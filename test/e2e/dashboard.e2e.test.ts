// The dashboard (GET /dashboard, sdk/dashboard) in headless Chromium against the Worker on Miniflare.
// Without Chromium the suite is skipped, unless DUCKTAIL_REQUIRE_BROWSER=1 (CI installs it).
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, skipBrowser, warnIfSkipped } from "../helpers/browser";
import { dashboardPage, screenshot } from "../helpers/dashboard";
import { eventually } from "../helpers/eventually";
import { useWorker } from "../helpers/worker";
import { WsClient } from "../helpers/ws-client";

warnIfSkipped("the dashboard browser tests");

const KEYS = {
  rk_dash: { tenant: "dash", scope: "read" },
  wk_dash: { tenant: "dash", scope: "write" },
  ak_dash: { tenant: "dash", scope: "admin" },
};

describe.skipIf(skipBrowser)("the dashboard in Chromium", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  const worker = useWorker({ DUCKTAIL_KEYS: JSON.stringify(KEYS) });

  it("serves the shell, signs in with a read key and keeps it for the tab only", async () => {
    const { page, errors, close } = await dashboardPage(browser);
    await page.goto(`${worker.url}/dashboard`);
    await page.getByLabel("Read key").fill("rk_dash");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("navigation", { name: "Pages" }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("ducktail.key"))).toBe("rk_dash");
    await page.reload();
    await page.getByRole("navigation", { name: "Pages" }).waitFor();
    await page.getByRole("link", { name: "Cluster" }).click();
    await page.waitForURL(/#\/cluster$/);
    await screenshot(page, "shell-1280");
    expect(errors).toEqual([]);
    await close();
  });

  it("takes ?key= once and removes it from the address", async () => {
    const { page, errors, close } = await dashboardPage(browser);
    await page.goto(`${worker.url}/dashboard?key=rk_dash#/errors`);
    await page.getByRole("navigation", { name: "Pages" }).waitFor();
    expect(new URL(page.url()).search).toBe("");
    expect(new URL(page.url()).hash).toBe("#/errors");
    expect(errors).toEqual([]);
    await close();
  });

  it("refuses a wrong key with the server's reason", async () => {
    const { page, close } = await dashboardPage(browser);
    await page.goto(`${worker.url}/dashboard?key=nope`);
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/unauthorized|unknown key|key/i);
    expect(await page.evaluate(() => sessionStorage.getItem("ducktail.key"))).toBeNull();
    await close();
  });

  it("answers /dashboard/ with a redirect and an unknown file with a DuckTail 404", async () => {
    const slash = await fetch(`${worker.url}/dashboard/?x=1`, { redirect: "manual" });
    expect(slash.status).toBe(308);
    expect(slash.headers.get("location")).toBe(`${worker.url}/dashboard?x=1`);
    const missing = await fetch(`${worker.url}/dashboard/nope.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
    expect((await fetch(`${worker.url}/dashboard/main.js`)).headers.get("content-type")).toMatch(/javascript/);
  });

  describe("with traffic", () => {
    const PATHS = ["/", "/docs", "/pricing", "/blog"];
    /** What the test sent, counted by brute force. */
    const sent = {
      views: new Map<string, number>(),
      visitors: new Set<string>(),
      errors: 0,
      /** Sessions of the errors of each message. */
      errorSessions: new Map<string, Set<string>>(),
      durations: [] as number[],
    };

    beforeAll(async () => {
      const events: Record<string, unknown>[] = [];
      for (let i = 0; i < 90; i++) {
        const path = PATHS[(i * 7) % PATHS.length] as string;
        const user = `u${i % 13}`;
        sent.views.set(path, (sent.views.get(path) ?? 0) + 1);
        sent.visitors.add(user);
        events.push({ type: "pageview", source: "web", userId: user, sessionId: `s${i % 13}`, data: { path } });
        if (i % 9 === 0) {
          sent.errors++;
          const message = `x${i % 2} is undefined`;
          sent.errorSessions.set(message, (sent.errorSessions.get(message) ?? new Set()).add(`s${i % 13}`));
          events.push({
            type: "error",
            source: "web",
            sessionId: `s${i % 13}`,
            data: {
              name: "TypeError",
              message: `x${i % 2} is undefined`,
              stack: `TypeError\n at f (app.js:${i % 2}:1)`,
            },
          });
        }
        const duration = 5 + ((i * 37) % 400);
        sent.durations.push(duration);
        events.push({ type: "request", source: "api", data: { route: i % 2 ? "/api/a" : "/api/b", duration } });
      }
      const res = await fetch(`${worker.url}/e?key=wk_dash`, { method: "POST", body: JSON.stringify(events) });
      expect(res.status).toBe(200);
      // Views follow ingest within about a second.
      await eventually(async () => {
        const a = (await (await fetch(`${worker.url}/buffer/mv/pageviews?key=rk_dash&window=1h&step=1m`)).json()) as {
          total: { views: number } | null;
        };
        return a.total?.views === 90;
      }, 10_000);
    });

    it("shows on the overview the numbers a brute-force count of what was sent gives", async () => {
      const { page, errors, close } = await dashboardPage(browser);
      await page.goto(`${worker.url}/dashboard?key=rk_dash#/overview`);
      const metric = (name: string) => page.locator(`[data-metric="${name}"]`).getAttribute("data-value");
      await expect.poll(() => metric("pageviews"), { timeout: 5000 }).toBe("90");
      expect(await metric("visitors")).toBe(String(sent.visitors.size));
      expect(await metric("errors")).toBe(String(sent.errors));
      const rows = await page
        .locator('[data-table="paths"] tbody tr')
        .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
      expect(Object.fromEntries(rows.map(([path, views]) => [path, Number(views)]))).toEqual(
        Object.fromEntries(sent.views),
      );
      // Nearest-rank p95 of every duration, within the histogram's 1 %.
      const sorted = [...sent.durations].sort((a, b) => a - b);
      const p95 = sorted[Math.ceil(0.95 * sorted.length) - 1] as number;
      expect(Math.abs(Number(await metric("p95")) - p95)).toBeLessThanOrEqual(p95 * 0.01 + 0.5);
      for (const chart of ["traffic", "errors", "latency"]) {
        // A minute a point over the hour: 61, or 60 when the window starts on a minute.
        expect(["60", "61"]).toContain(await page.locator(`[data-chart="${chart}"]`).getAttribute("data-points"));
      }
      await screenshot(page, "overview-1280");
      // Another range asks the views again in that range's steps (24 h in 15 minutes).
      await page.getByRole("link", { name: "24h" }).click();
      await expect
        .poll(async () => Number(await page.locator('[data-chart="traffic"]').getAttribute("data-points")))
        .toBeGreaterThanOrEqual(96);
      expect(await metric("pageviews")).toBe("90");
      expect(errors).toEqual([]);
      await close();
    });

    it("lists each error fingerprint with its count, sample and a link to its session's replay", async () => {
      const { page, errors, close } = await dashboardPage(browser);
      await page.goto(`${worker.url}/dashboard?key=rk_dash#/errors?range=24h`);
      const rows = page.locator('[data-table="errors"] tbody tr[data-fingerprint]');
      await expect.poll(() => rows.count(), { timeout: 5000 }).toBe(2);
      // No session is recorded yet: no sample links to a replay that does not exist.
      expect(await rows.locator('[data-replay="none"]').allTextContents()).toEqual([
        "Session not recorded",
        "Session not recorded",
      ]);
      expect(await rows.locator("a.replay").count()).toBe(0);
      // Once the sessions are recorded, a refresh links them.
      const now = Date.now();
      const chunks = [...new Set([...sent.errorSessions.values()].flatMap((s) => [...s]))].map((session) => ({
        session,
        seq: 0,
        events: [{ type: 4, timestamp: now, data: { href: "https://site.test/", width: 800, height: 600 } }],
      }));
      const recorded = await fetch(`${worker.url}/recording?key=wk_dash`, {
        method: "POST",
        body: JSON.stringify(chunks),
      });
      expect(recorded.status).toBe(200);
      await page.getByRole("button", { name: "Refresh" }).click();
      await expect.poll(() => rows.locator("a.replay").count(), { timeout: 5000 }).toBe(2);
      const counts = await rows
        .locator("[data-count]")
        .evaluateAll((tds) => tds.map((td) => Number(td.getAttribute("data-count"))));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(sent.errors);
      const message = /TypeError (x\d is undefined)/.exec((await rows.first().textContent()) ?? "")?.[1] as string;
      expect(sent.errorSessions.has(message)).toBe(true);
      await rows.first().locator("summary").click();
      expect(await rows.first().locator("pre").textContent()).toMatch(/at f \(app\.js:\d:1\)/);
      // The sample is one of the group's errors, and the link names its session.
      const href = (await rows.first().locator("a.replay").getAttribute("href")) as string;
      const session = /^#\/replay\/([^?]+)\?t=\d+$/.exec(href)?.[1] as string;
      expect([...(sent.errorSessions.get(message) ?? [])]).toContain(session);
      await page.locator(".spark canvas").first().waitFor();
      await rows.first().locator("a.replay").click();
      await page.waitForURL((url) => url.hash === href);
      expect(errors).toEqual([]);
      await close();
    });

    it("shows the cluster: tier, every shard with its buffer, the sinks and the dead letters", async () => {
      const { page, errors, close } = await dashboardPage(browser);
      await page.goto(`${worker.url}/dashboard?key=ak_dash#/cluster`);
      const stats = (await (await fetch(`${worker.url}/stats?key=rk_dash`)).json()) as {
        tier: number;
        routed: number;
        shards: { name: string }[];
      };
      await expect.poll(() => page.locator('[data-metric="tier"]').getAttribute("data-value")).toBe(String(stats.tier));
      expect(await page.locator('[data-metric="shards"]').getAttribute("data-value")).toBe(String(stats.routed));
      expect(await page.locator('[data-table="shards"] tbody tr td:first-child').allTextContents()).toEqual(
        stats.shards.map((s) => s.name),
      );
      expect(await page.locator('[data-table="shards"] .gauge').count()).toBe(stats.shards.length);
      expect(await page.locator('[data-sink="r2-parquet"] td').nth(1).textContent()).toBe("ok");
      await page.locator('[data-dead-letters="0"]').waitFor();
      await screenshot(page, "cluster-1280");
      expect(errors).toEqual([]);
      await close();

      // A read key sees everything but the dead letters, and is told why.
      const reader = await dashboardPage(browser);
      await reader.page.goto(`${worker.url}/dashboard?key=rk_dash#/cluster`);
      await reader.page.getByText("Dead letters need an admin key.").waitFor();
      expect(reader.errors).toEqual([]);
      await reader.close();
    });

    it("lays every page out at 375 px without horizontal overflow", async () => {
      const { page, errors, close } = await dashboardPage(browser, 375);
      await page.goto(`${worker.url}/dashboard?key=ak_dash#/overview`);
      for (const name of ["overview", "errors", "tail", "cluster"]) {
        await page.evaluate((hash) => {
          (globalThis as unknown as { location: { hash: string } }).location.hash = hash;
        }, `#/${name}`);
        await page.locator(`section.page-${name}`).waitFor();
        if (name !== "tail") await page.locator(`section.page-${name}[data-loaded]`).waitFor();
        else await expect.poll(() => page.getByRole("status").textContent()).toMatch(/^subscribed/);
        await screenshot(page, `${name}-375`);
        const overflow = await page.evaluate(() => {
          const doc = (
            globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }
          ).document.documentElement;
          return doc.scrollWidth - doc.clientWidth;
        });
        expect(overflow, `${name} overflows by ${overflow}px`).toBeLessThanOrEqual(0);
      }
      expect(errors).toEqual([]);
      await close();
    });

    it("is usable from the keyboard: Tab reaches the pages in the navigation, Enter opens one", async () => {
      const { page, errors, close } = await dashboardPage(browser);
      await page.goto(`${worker.url}/dashboard?key=rk_dash#/overview`);
      await page.locator("section.page-overview[data-loaded]").waitFor();
      const focused = () =>
        page.evaluate(
          () =>
            (globalThis as unknown as { document: { activeElement: { textContent: string } } }).document.activeElement
              .textContent,
        );
      const seen: string[] = [];
      for (let i = 0; i < 8 && !seen.includes("Errors"); i++) {
        await page.keyboard.press("Tab");
        seen.push((await focused()) ?? "");
      }
      expect(seen).toEqual(["DuckTail", "Overview", "Errors"]);
      await page.keyboard.press("Enter");
      await page.waitForURL(/#\/errors$/);
      await page.locator("section.page-errors[data-loaded]").waitFor();
      expect(await page.getByRole("link", { name: "Errors" }).getAttribute("aria-current")).toBe("page");
      expect(errors).toEqual([]);
      await close();
    });
  });

  it("shows an event sent over a socket in the live tail within a second, through the filter built in the form", async () => {
    const { page, errors, close } = await dashboardPage(browser);
    await page.goto(`${worker.url}/dashboard?key=rk_dash#/tail`);
    await page.getByLabel("Filter").locator("#tail-type").fill("tail-*");
    await page.getByRole("button", { name: "+ where" }).click();
    await page.getByLabel("Field").fill("data.n");
    await page.getByLabel("Operator").selectOption("gte");
    await page.getByLabel("Value").fill("10");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL((url) => url.hash.startsWith("#/tail?filter="));
    expect(JSON.parse(new URLSearchParams(new URL(page.url()).hash.slice(6)).get("filter") as string)).toEqual({
      type: ["tail-*"],
      where: [{ path: "data.n", op: "gte", value: 10 }],
    });
    await expect.poll(() => page.getByRole("status").textContent()).toMatch(/^subscribed/);

    const ws = await WsClient.open(worker.url, "?key=wk_dash");
    await ws.events([{ type: "tail-test", data: { n: 3, tag: "filtered-out" } }]);
    const sentAt = Date.now();
    await ws.events([{ type: "tail-test", data: { n: 42, tag: "shown" } }]);
    await page.locator(".vlist-row", { hasText: '"tag":"shown"' }).waitFor({ timeout: 1_000 });
    const within = Date.now() - sentAt;
    expect(within).toBeLessThan(1_000);
    expect(await page.locator(".vlist-row", { hasText: "filtered-out" }).count()).toBe(0);
    await expect.poll(() => page.locator('[data-metric="received"]').getAttribute("data-value")).toBe("1");
    // A few more, for the screenshot.
    await ws.events(
      Array.from({ length: 30 }, (_, i) => ({
        type: i % 5 ? "tail-pageview" : "tail-error",
        importance: i % 5 ? "normal" : "high",
        source: "web",
        userId: `u${i % 4}`,
        data: { n: 10 + i, path: ["/", "/docs", "/pricing"][i % 3] },
      })),
    );
    await expect.poll(() => page.locator('[data-metric="received"]').getAttribute("data-value")).toBe("31");
    await screenshot(page, "tail-1280");
    await ws.close();
    expect(errors).toEqual([]);
    await close();
  });

  it("refuses a filter the server would refuse, with its message", async () => {
    const { page, close } = await dashboardPage(browser);
    await page.goto(`${worker.url}/dashboard?key=rk_dash#/tail`);
    await page.getByRole("button", { name: "+ where" }).click();
    await page.getByLabel("Field").fill("nope");
    await page.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => page.getByRole("status").textContent()).toMatch(/where\[0\]\.path must be a field/);
    await close();
  });
});
