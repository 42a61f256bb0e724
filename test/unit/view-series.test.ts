import { describe, expect, it } from "vitest";
import { type AggregateStore, type ReplicaBucket, ViewAggregate } from "../../src/views/aggregate";
import { BUCKET_MS, ViewStore } from "../../src/views/buckets";
import { MAX_SERIES_BUCKETS, parseStep, seriesOf, TOTAL_KEY } from "../../src/views/series";
import { BUILTIN_VIEWS, pageviews, type ViewEvent } from "../../src/views/views";

/** Just enough storage for the aggregate: partials by minute. */
class Partials implements AggregateStore {
  private readonly rows = new Map<string, ReplicaBucket>();
  putPartials(b: ReplicaBucket): void {
    this.rows.set(`${b.view}|${b.bucketStart}|${b.replica}`, b);
  }
  partialsOf(view: string, start: number): string[] {
    return [...this.rows.values()].filter((b) => b.view === view && b.bucketStart === start).map((b) => b.json);
  }
  opened(): void {}
  putMerged(): void {}
  prune(): void {}
}

const NOW = Date.UTC(2026, 11, 1, 12, 30, 2);
const HOUR = 3_600_000;

function event(i: number, receivedAt: number): ViewEvent {
  const kind = i % 4;
  return {
    id: `e${i}`,
    ts: receivedAt,
    receivedAt,
    source: "web",
    type: kind < 2 ? "pageview" : kind === 2 ? "error" : "request",
    importance: "normal",
    userId: `u${(i * 7) % 23}`,
    anonymousId: null,
    sessionId: null,
    data:
      kind < 2
        ? { path: ["/", "/docs", "/pricing"][i % 3] }
        : kind === 2
          ? { name: "TypeError", message: `m${(i >> 2) % 3}`, stack: "Error\n at f (a.js:1:2)" }
          : { route: ["/api/a", "/api/b"][(i >> 2) % 2], duration: (i * 37) % 900 },
  };
}

/** Three replicas' events spread over the last 3 hours (the last minute still open), and what each received. */
function aggregated(): { aggregate: ViewAggregate; events: ViewEvent[] } {
  const stores = [0, 1, 2].map(() => new ViewStore(BUILTIN_VIEWS));
  const events: ViewEvent[] = [];
  for (let i = 0; i < 3000; i++) {
    const e = event(i, NOW - ((i * 7919) % (3 * HOUR)));
    events.push(e);
    stores[i % 3]?.add(e);
  }
  const aggregate = new ViewAggregate(BUILTIN_VIEWS, new Partials());
  stores.forEach((s, r) => {
    for (const row of s.takeDirty()) aggregate.put({ ...row, replica: `r${r}` }, NOW);
  });
  return { aggregate, events };
}

describe("a view over time (?step=)", () => {
  it("counts in each step bucket exactly the events received in it, empty buckets included", () => {
    const { aggregate, events } = aggregated();
    const to = NOW + 1;
    const from = to - 4 * HOUR;
    const step = 15 * 60_000;
    const series = aggregate.series("pageviews", from, to, step, NOW)!;
    const first = Math.floor((Math.floor(from / BUCKET_MS) * BUCKET_MS) / step) * step;
    expect(series.buckets.map((b) => b.start)).toEqual(
      Array.from({ length: series.buckets.length }, (_, i) => first + i * step),
    );
    expect(series.buckets.at(-1)!.start).toBeLessThanOrEqual(NOW);
    expect(series.buckets.at(-1)!.start + step).toBeGreaterThan(NOW);
    for (const b of series.buckets) {
      const inIt = events.filter(
        (e) => e.type === "pageview" && e.receivedAt >= b.start && e.receivedAt < b.start + step,
      );
      expect((b.total as { views: number } | null)?.views ?? 0, `bucket ${b.start}`).toBe(inIt.length);
    }
    // The hour before the events began is empty but there.
    expect(series.buckets.slice(0, 3).every((b) => b.total === null && b.rows.every((r) => r === null))).toBe(true);
  });

  it("answers per bucket the rows of the window's top keys, as the view over that bucket alone", () => {
    const { aggregate } = aggregated();
    const to = NOW + 1;
    const step = 30 * 60_000;
    for (const name of ["pageviews", "errors", "latency"]) {
      const series = aggregate.series(name, to - 3 * HOUR, to, step, NOW, { limit: 2 })!;
      expect(series.rows).toEqual(aggregate.rows(name, to - 3 * HOUR, to, NOW, { limit: 2 }));
      expect(series.rows).toHaveLength(2);
      for (const b of series.buckets) {
        const alone = aggregate.rows(name, Math.max(b.start, to - 3 * HOUR), b.start + step, NOW, { limit: 1000 });
        const keyOf = (r: unknown) => JSON.stringify(Object.values(r as object)[0]);
        b.rows.forEach((row, i) => {
          const expected = alone.find((r) => keyOf(r) === keyOf(series.rows[i])) ?? null;
          expect(row, `${name} bucket ${b.start} key ${i}`).toEqual(expected);
        });
      }
    }
  });

  it("merges every key into the total, so unique visitors are not summed over paths", () => {
    const { aggregate, events } = aggregated();
    const to = NOW + 1;
    const series = aggregate.series("pageviews", to - 3 * HOUR, to, HOUR, NOW)!;
    const visitors = new Set(events.filter((e) => e.type === "pageview").map((e) => e.userId)).size;
    const total = series.total as { path: string; views: number; uniques: number };
    expect(total.path).toBe(TOTAL_KEY);
    expect(total.views).toBe(events.filter((e) => e.type === "pageview").length);
    expect(total.uniques).toBe(visitors); // HLL is exact at this cardinality
    const perPath = (series.rows as { uniques: number }[]).reduce((n, r) => n + r.uniques, 0);
    expect(perPath).toBeGreaterThan(total.uniques);
  });

  it("never changes the partials it merges", () => {
    const view = pageviews;
    const p = view.add(view.init(), event(0, NOW));
    const before = JSON.stringify(view.toJSON?.(p));
    seriesOf(view, [[Math.floor(NOW / BUCKET_MS) * BUCKET_MS, new Map([["/", p]])]], NOW - HOUR, NOW + 1, 5 * 60_000);
    expect(JSON.stringify(view.toJSON?.(p))).toBe(before);
  });
});

describe("the step parameter", () => {
  it("takes whole minutes in any unit", () => {
    expect(parseStep("5m", 24 * HOUR)).toBe(300_000);
    expect(parseStep("1h", 24 * HOUR)).toBe(HOUR);
    expect(parseStep("120s", HOUR)).toBe(120_000);
  });

  it("refuses what is not a whole number of minutes, with why", () => {
    expect(() => parseStep("90s", HOUR)).toThrow(/whole number of minutes/);
    expect(() => parseStep("0m", HOUR)).toThrow(/step must be like/);
    expect(() => parseStep("5 minutes", HOUR)).toThrow(/step must be like 1m, 5m or 1h; got "5 minutes"/);
  });

  it(`refuses more than ${MAX_SERIES_BUCKETS} buckets and names the least step that fits`, () => {
    expect(parseStep("1m", 24 * HOUR)).toBe(60_000); // 1,441 buckets
    expect(() => parseStep("1m", 48 * HOUR)).toThrow(/2881 buckets .* at most 1500: use a step of at least 2m/);
    expect(parseStep("2m", 48 * HOUR)).toBe(120_000);
  });
});
