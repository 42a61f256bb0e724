// Headless Chromium (Debian's, driven by playwright-core) for the browser suites. Without Chromium
// a suite is skipped, unless DUCKTAIL_REQUIRE_BROWSER=1 (CI installs it), where launching fails.
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const browserRequired = process.env.DUCKTAIL_REQUIRE_BROWSER === "1";
export const browserAvailable = existsSync(CHROMIUM);
/** True when the browser suites should be skipped: no Chromium and not required. */
export const skipBrowser = !browserAvailable && !browserRequired;

/** Warns loudly that the named suite (e.g. "the duck.js browser tests") is skipped, if it is. */
export function warnIfSkipped(suiteName: string): void {
  if (skipBrowser) {
    console.warn(`\n*** ${CHROMIUM} not found: ${suiteName} are SKIPPED (apt-get install chromium) ***\n`);
  }
}

/** Launches headless Chromium with the usual quiet flags plus `extraArgs`; fails clearly when it is required but missing. */
export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  if (!browserAvailable) throw new Error(`DUCKTAIL_REQUIRE_BROWSER=1 but ${CHROMIUM} is missing`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      ...extraArgs,
    ],
  });
}
