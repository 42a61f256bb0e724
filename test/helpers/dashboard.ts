// Driving the dashboard in headless Chromium: pages that record console errors and failed
// requests, screenshots saved as artifacts (test/artifacts/, git-ignored).
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";

/** Where the dashboard tests leave their screenshots. */
export const ARTIFACTS = resolve(dirname(fileURLToPath(import.meta.url)), "../artifacts");

/** A page of a fresh context (own sessionStorage) at `width`, and every console error and page error it logs. */
export async function dashboardPage(
  browser: Browser,
  width = 1280,
): Promise<{ page: Page; errors: string[]; close: () => Promise<void> }> {
  const context = await browser.newContext({ viewport: { width, height: width < 600 ? 800 : 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  // The console names no URL for a failed load; this does.
  page.on("response", (r) => {
    if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`);
  });
  return { page, errors, close: () => context.close() };
}

/** Saves a full-page screenshot as test/artifacts/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(ARTIFACTS, `${name}.png`);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path, fullPage: true });
  return path;
}
