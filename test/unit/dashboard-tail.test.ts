import { describe, expect, it } from "vitest";
import { filterFromParams, globs, predicateValue } from "../../sdk/dashboard/tail/filter-text";
import { RateMeter } from "../../sdk/dashboard/tail/rate";

describe("the live tail's filter as text", () => {
  it("reads a comma-separated glob list, one glob as itself, none as nothing", () => {
    expect(globs(" web-*, api ,")).toEqual(["web-*", "api"]);
    expect(globs("error")).toBe("error");
    expect(globs(" , ")).toBeUndefined();
  });

  it("reads a where value as a number, boolean or null when it is one, and as text otherwise", () => {
    expect(predicateValue("500")).toBe(500);
    expect(predicateValue("-1.5")).toBe(-1.5);
    expect(predicateValue("true")).toBe(true);
    expect(predicateValue("null")).toBeNull();
    expect(predicateValue('"500"')).toBe("500");
    expect(predicateValue("DE")).toBe("DE");
    expect(predicateValue("")).toBe("");
  });

  it("takes the filter in the address only as the server would", () => {
    const filter = { type: "error", where: [{ path: "data.status", op: "gte", value: 500 }] };
    expect(filterFromParams(new URLSearchParams({ filter: JSON.stringify(filter) }))).toEqual({
      type: ["error"],
      where: filter.where,
    });
    expect(filterFromParams(new URLSearchParams())).toEqual({});
    expect(() => filterFromParams(new URLSearchParams({ filter: "{" }))).toThrow(/not JSON/);
    expect(() =>
      filterFromParams(new URLSearchParams({ filter: '{"where":[{"path":"data.x","op":"gt","value":"a"}]}' })),
    ).toThrow(/must be a number for gt/);
  });
});

describe("the live tail's rate", () => {
  it("counts the events of the last five seconds per second", () => {
    const meter = new RateMeter(5_000);
    for (let t = 100; t <= 10_000; t += 100) meter.note(100, t); // 1,000 a second
    expect(meter.rate(10_000)).toBeCloseTo(1_000, 0);
    expect(meter.rate(12_500)).toBeCloseTo(500, 0);
    expect(meter.rate(20_000)).toBe(0);
  });
});
