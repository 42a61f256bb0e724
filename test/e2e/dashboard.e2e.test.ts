// The dashboard (GET /dashboard, sdk/dashboard) in headless Chromium against the Worker on Miniflare.
// Without Chromium the suite is skipped, unless DUCKTAIL_REQUIRE_BROWSER=1 (CI installs it).
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, skipBrowser, warnIfSkipped } from "../helpers/browser";
import { dashboardPage, screenshot } from "../helpers/dashboard";
import { useWorker } from "../helpers/worker";

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
});
