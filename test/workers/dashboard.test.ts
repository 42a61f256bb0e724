import { describe, expect, it } from "vitest";
import { tenant } from "./harness";

describe("GET /dashboard", () => {
  it("serves the page and its files from the static assets, below BASE_PATH too", async () => {
    for (const base of ["", "/ducktail"]) {
      const t = tenant("dash-route", "read", { BASE_PATH: base });
      const page = await t.fetch(`${base}/dashboard`, {}, "");
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toMatch(/text\/html/);
      expect(await page.text()).toContain('src="dashboard/main.js"');
      const script = await t.fetch(`${base}/dashboard/main.js`, {}, "");
      expect(script.status).toBe(200);
      expect(script.headers.get("content-type")).toMatch(/javascript/);
      const slash = await t.fetch(`${base}/dashboard/`, { redirect: "manual" }, "");
      expect(slash.status).toBe(308);
      expect(new URL(slash.headers.get("location") as string).pathname).toBe(`${base}/dashboard`);
    }
  });

  it("answers a missing file and a POST with DuckTail errors", async () => {
    const t = tenant("dash-route-errors", "read");
    const missing = await t.fetch("/dashboard/nope.js", {}, "");
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
    expect((await t.fetch("/dashboard", { method: "POST" }, "")).status).toBe(405);
  });

  it("is a 404 on a Worker deployed without the dashboard's assets", async () => {
    const t = tenant("dash-route-none", "read", { ASSETS: undefined });
    const res = await t.fetch("/dashboard", {}, "");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/no dashboard assets/);
  });
});
