// The dashboard's Explorer in headless Chromium against the Worker on Miniflare: DuckDB-wasm and
// parquet-wasm from the deployment, the lake read by HTTP Range, the buffers added.
// Without Chromium the suite is skipped, unless DUCKTAIL_REQUIRE_BROWSER=1 (CI installs it).
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LakeFileList } from "../../src/protocol/lake";
import { launchChromium, skipBrowser, warnIfSkipped } from "../helpers/browser";
import { dashboardPage, screenshot } from "../helpers/dashboard";
import { useWorker } from "../helpers/worker";

warnIfSkipped("the Explorer browser tests");

const KEYS = {
  rk_x: { tenant: "explorer", scope: "read" },
  ak_x: { tenant: "explorer", scope: "admin" },
};
const TYPES = ["click", "pageview", "signup"];
/** Events flushed to the lake, and sent after the flush (still buffered). */
const FLUSHED = 3000;
const BUFFERED = 7;

function events(n: number, offset: number) {
  return Array.from({ length: n }, (_, i) => ({
    type: TYPES[(i + offset) % TYPES.length],
    source: "explorer-test",
    sessionId: `s${(i + offset) % 5}`,
    data: { i: i + offset, path: `/page/${(i + offset) % 40}`, note: "x".repeat(40) },
  }));
}

/** Each type's count among the first `n` events sent. */
function expectedCounts(n: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const t = TYPES[i % TYPES.length] as string;
    counts[t] = (counts[t] ?? 0) + 1;
  }
  return counts;
}

/** Opens the Explorer with `sql` in its address (so it runs at once) and waits for its stats line or error. */
async function explore(page: Page, url: string, sql: string): Promise<void> {
  const hash = `#/explorer?${new URLSearchParams({ sql, from: "2h" })}`;
  await page.goto(`${url}/dashboard?key=rk_x${hash}`);
  await page.locator('[data-explorer="stats"]:has-text("rows"), [role="alert"]:not(:empty)').first().waitFor({
    timeout: 30_000,
  });
}

describe.skipIf(skipBrowser)("the Explorer in Chromium", () => {
  let browser: Browser;
  const worker = useWorker({ DUCKTAIL_KEYS: JSON.stringify(KEYS) });
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${worker.url}${path}`, { ...init, headers: { authorization: "Bearer ak_x" } });

  beforeAll(async () => {
    browser = await launchChromium();
    for (let sent = 0; sent < FLUSHED; sent += 1000) {
      const res = await admin("/e", { method: "POST", body: JSON.stringify(events(1000, sent)) });
      expect(res.status).toBe(200);
    }
    expect((await admin("/flush", { method: "POST" })).status).toBe(200);
    await admin("/e", { method: "POST", body: JSON.stringify(events(BUFFERED, FLUSHED)) });
    // Session s3 is recorded; the others are not.
    const chunk = {
      session: "s3",
      seq: 0,
      events: [{ type: 4, timestamp: Date.now(), data: { href: "https://site.test/" } }],
    };
    expect((await admin("/recording", { method: "POST", body: JSON.stringify(chunk) })).status).toBe(200);
  });
  afterAll(async () => {
    await browser?.close();
  });

  it("counts the lake and the buffers by type while reading fewer bytes than the objects hold", async () => {
    const lake = (await (await admin(`/lake/files?from=${Date.now() - 7_200_000}`)).json()) as LakeFileList;
    expect(lake.rows).toBe(FLUSHED);
    const { page, errors, close } = await dashboardPage(browser);
    let rangeBytes = 0;
    let rangeAnswers = 0;
    page.on("response", async (r) => {
      if (!r.url().includes("/lake/object?")) return;
      rangeAnswers++;
      rangeBytes += Number(r.headers()["content-length"] ?? 0);
    });
    await explore(page, worker.url, "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY type");
    expect(await page.getByRole("alert").textContent()).toBe("");
    const cells = await page.getByRole("table", { name: "Query result" }).locator("tbody tr").allTextContents();
    const want = expectedCounts(FLUSHED + BUFFERED);
    expect(cells).toEqual(TYPES.map((t) => `${t}${want[t]}`));
    expect(rangeAnswers).toBeGreaterThan(0);
    expect(rangeBytes).toBeGreaterThan(0);
    expect(rangeBytes).toBeLessThan(lake.bytes / 2);
    const stats = await page.locator('[data-explorer="stats"]').textContent();
    expect(stats).toMatch(new RegExp(`${FLUSHED.toLocaleString("en-US")} lake \\+ ${BUFFERED} buffered`));
    await expect.poll(() => page.locator(".uplot").count()).toBe(1);
    await screenshot(page, "explorer-1280");
    expect(errors).toEqual([]);
    await close();
  });

  it("runs the json extension's functions on data, which DuckDB-wasm could not download", async () => {
    const { page, errors, close } = await dashboardPage(browser);
    await explore(
      page,
      worker.url,
      "SELECT data->>'path' AS path, count(*) AS n, max((data->>'$.i')::INTEGER) AS last, bool_and(json_exists(data, '$.note')) AS noted FROM events GROUP BY 1 ORDER BY n DESC, path LIMIT 2",
    );
    expect(await page.getByRole("alert").textContent()).toBe("");
    const rows = await page.getByRole("table", { name: "Query result" }).locator("tbody tr").allTextContents();
    // Events 0…3006 spread over 40 paths: /page/0…/page/6 have one more.
    const all = FLUSHED + BUFFERED;
    const last = (k: number) => all - 1 - ((all - 1 - k) % 40);
    expect(rows).toEqual([0, 1].map((k) => `/page/${k}${Math.ceil((all - k) / 40)}${last(k)}true`));
    expect(errors).toEqual([]);
    await close();
  });

  it("shows a SQL error, runs on Ctrl+Enter, links sessions to their replay, and fits 375 px", async () => {
    const { page, close } = await dashboardPage(browser, 375);
    await explore(page, worker.url, "SELECT nope FROM events");
    expect(await page.getByRole("alert").textContent()).toMatch(/nope/);
    const editor = page.getByLabel("SQL");
    await editor.fill("SELECT session_id, ts FROM events WHERE session_id = 's3' ORDER BY ts LIMIT 1");
    await editor.press("Control+Enter");
    const link = page.getByRole("link", { name: "s3" });
    await link.waitFor({ timeout: 30_000 });
    expect(await link.getAttribute("href")).toMatch(/^#\/replay\/s3\?t=\d{13}$/);
    const shared = new URLSearchParams(new URL(page.url()).hash.split("?")[1]);
    expect(shared.get("sql")).toContain("session_id = 's3'");
    // A session without a recording is shown, not linked to a replay that does not exist.
    await editor.fill("SELECT DISTINCT session_id FROM events WHERE session_id IN ('s1', 's3') ORDER BY 1");
    await editor.press("Control+Enter");
    const cells = page.getByRole("table", { name: "Query result" }).locator("tbody td");
    await expect.poll(() => cells.allTextContents(), { timeout: 30_000 }).toEqual(["s1", "s3"]);
    expect(await page.getByRole("table", { name: "Query result" }).getByRole("link").allTextContents()).toEqual(["s3"]);
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(375);
    await screenshot(page, "explorer-375");
    await close();
  });

  it("serves DuckDB-wasm from the deployment, gzipped, under the 25 MiB a static asset may be", async () => {
    const res = await fetch(`${worker.url}/dashboard/wasm/duckdb-eh.wasm.gz`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/wasm");
    expect(res.headers.get("content-encoding")).toBe("gzip");
    const worker_ = await fetch(`${worker.url}/dashboard/wasm/duckdb-browser-eh.worker.js.gz`);
    expect(worker_.headers.get("content-type")).toMatch(/javascript/);
    expect((await worker_.text()).length).toBeGreaterThan(100_000); // inflated by fetch
  });
});
