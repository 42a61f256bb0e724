import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileFilter, validateFilter } from "../../src/gossip/filters";
import { compileGlob, compileGlobs } from "../../src/gossip/glob";
import type { TailEvent } from "../../src/protocol/tail";

/** What a glob means, as a regular expression: fine for small inputs, exponential for bad ones. */
function referenceRegExp(glob: string): RegExp {
  const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${glob.split("*").map(literal).join(".*")}$`, "s");
}

const withSource = (source: string) => ({ source }) as TailEvent;

/**
 * Whether `times` runs of `run` finish within `budgetMs` in one of 5 tries (a try gives up as soon
 * as it is over budget, so a backtracking matcher fails in about 5 budgets, not in years).
 */
function finishesWithin(budgetMs: number, times: number, run: () => void): boolean {
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    let i = 0;
    while (i < times && performance.now() - start <= budgetMs) {
      run();
      i++;
    }
    if (i === times && performance.now() - start <= budgetMs) return true;
  }
  return false;
}

/** Best of 5 runs of `run` repeated `times` times, in ms (the minimum is the least noisy). */
function bestOf(times: number, run: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    for (let i = 0; i < times; i++) run();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

/** How many repetitions make `run` take about 10 ms, so timer noise is small against it. */
function repetitionsFor(run: () => void): number {
  for (let times = 1; ; times *= 2) {
    const start = performance.now();
    for (let i = 0; i < times; i++) run();
    if (performance.now() - start >= 10 || times >= 1 << 20) return times;
  }
}

describe("glob matching", () => {
  it("runs in time linear in the source, however the glob backtracks a regular expression", () => {
    // Each case: 32 globs of up to 256 characters, against sources of `length` characters with
    // the "b" at the end, in the middle, or missing. The first case is mild so a backtracking
    // matcher fails it within milliseconds; the later ones would take it minutes to years.
    const cases = [
      {
        length: 64,
        globs: Array.from({ length: 32 }, (_, i) => `${"*a".repeat(2 + (i % 2))}*b${i % 4 < 2 ? "" : "*"}`),
      },
      { length: 128, globs: Array.from({ length: 32 }, (_, i) => `${"*a".repeat(6 + (i % 4))}*b${i % 2 ? "*" : ""}`) },
      { length: 4096, globs: Array.from({ length: 32 }, (_, i) => `${"*a".repeat(6 + (i % 4))}*b${i % 2 ? "*" : ""}`) },
      // 256 characters each: up to 128 segments.
      { length: 4096, globs: Array.from({ length: 32 }, (_, i) => `${"*a".repeat(127 - i)}*b${"*".repeat(2 * i)}`) },
    ];
    for (const { length, globs } of cases) {
      expect(globs.every((g) => g.length <= 256)).toBe(true);
      const half = "a".repeat(length / 2);
      const noB = "a".repeat(length);
      const endB = `${"a".repeat(length - 1)}b`;
      const midB = `${half}b${half}`;
      for (const glob of globs) {
        const test = compileGlob(glob);
        expect([test(noB), test(endB), test(midB)], glob).toEqual([false, true, glob.endsWith("*")]);
      }

      const filter = compileFilter(validateFilter({ source: globs }));
      const events = [noB, endB, midB].map(withSource);
      const matchAll = () => {
        for (const e of events) filter(e);
      };
      // The baseline: one native indexOf per segment of every glob over every source, which is
      // the most a linear matcher does (it stops early, and only ever searches forward).
      const segments = globs.map((g) => g.split("*").filter((s) => s.length > 0));
      let sink = 0;
      const scanAll = () => {
        for (const e of events) for (const segs of segments) for (const seg of segs) sink += e.source.indexOf(seg);
      };
      const times = repetitionsFor(scanAll);
      const baseline = bestOf(times, scanAll);
      expect(sink).not.toBe(0);
      expect(
        finishesWithin(10 * baseline, times, matchAll),
        `${length}-character sources: ${times} matches within 10 x ${baseline} ms (a scan of each segment)`,
      ).toBe(true);
    }
  });

  it("agrees with the regular expression it replaces on random small globs and strings", () => {
    // "." and "\n" check that nothing is a regex metacharacter and `*` spans newlines.
    const char = fc.constantFrom("a", "b", ".", "\n", "*");
    const glob = fc.string({ unit: char, maxLength: 8 });
    const text = fc.string({ unit: fc.constantFrom("a", "b", ".", "\n", "*"), maxLength: 12 });
    fc.assert(
      fc.property(glob, text, (g, s) => compileGlob(g)(s) === referenceRegExp(g).test(s)),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.array(glob, { minLength: 1, maxLength: 4 }), text, (globs, s) => {
        const expected = globs.some((g) => referenceRegExp(g).test(s));
        return (
          compileGlobs(globs)(s) === expected && compileFilter({ type: globs })({ type: s } as TailEvent) === expected
        );
      }),
      { numRuns: 1000 },
    );
  });
});
