import { describe, expect, it } from "vitest";
import { baseFrom } from "../../sdk/dashboard/api";
import { parseRoute } from "../../sdk/dashboard/route";

describe("the dashboard's hash routes", () => {
  it("shows the overview for an empty hash", () => {
    expect(parseRoute("").page).toBe("overview");
    expect(parseRoute("#/").page).toBe("overview");
  });

  it("hands a page its query and the path after its name", () => {
    const r = parseRoute("#/replay/s%201?t=123");
    expect(r.page).toBe("replay");
    expect(r.path).toBe("s 1");
    expect(r.params.get("t")).toBe("123");
    expect(r.params.get("path")).toBe("s 1");
  });

  it("keeps an explorer query's SQL intact", () => {
    const sql = "SELECT type, count(*) FROM events WHERE x = 'a&b' GROUP BY 1";
    const r = parseRoute(`#/explorer?sql=${encodeURIComponent(sql)}`);
    expect(r.page).toBe("explorer");
    expect(r.params.get("sql")).toBe(sql);
    expect(r.params.has("path")).toBe(false);
  });
});

describe("the dashboard's base URL", () => {
  it("is the origin plus the BASE_PATH the dashboard is served under", () => {
    expect(baseFrom({ origin: "http://localhost:8787", pathname: "/dashboard" })).toBe("http://localhost:8787");
    expect(baseFrom({ origin: "https://ex.com", pathname: "/ducktail/dashboard" })).toBe("https://ex.com/ducktail");
  });
});
