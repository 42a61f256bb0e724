import { describe, expect, it } from "vitest";
import {
  DEFAULT_TIER_POLICY,
  nextTier,
  shardsFor,
  type TierDecision,
  type TierState,
  type TierVars,
  tierPolicyFrom,
} from "../../src/group/tiers";

const T0 = 1_764_000_000_000;
const QUIET = 300_000;

/** Feeds rates one per step of `stepMs` from `state`; returns every decision. */
function run(state: TierState, rates: number[], stepMs: number, start = T0): TierDecision[] {
  const decisions: TierDecision[] = [];
  let current = state;
  rates.forEach((rps, i) => {
    const decision = nextTier(current, { rps, now: start + i * stepMs });
    decisions.push(decision);
    current = decision;
  });
  return decisions;
}

/** How many times the tier changed across a run. */
function tierChanges(start: TierState, decisions: TierDecision[]): number {
  let changes = 0;
  let tier = start.tier;
  for (const d of decisions) {
    if (d.tier !== tier) changes++;
    tier = d.tier;
  }
  return changes;
}

describe("tier policy vars", () => {
  it("defaults to 1..128 shards, 45..95% thresholds, 1,000 req/s per shard, 5 min quiet, 0.8 band", () => {
    expect(DEFAULT_TIER_POLICY).toEqual({
      counts: [1, 4, 8, 16, 32, 64, 128],
      thresholds: [0, 45, 55, 65, 75, 85, 95],
      shardCapacityRps: 1000,
      scaleDownQuietMs: 300_000,
      downFactor: 0.8,
    });
    expect(tierPolicyFrom({})).toEqual(DEFAULT_TIER_POLICY);
    expect([1, 2, 3, 4, 5, 6, 7].map((t) => shardsFor(t))).toEqual([1, 4, 8, 16, 32, 64, 128]);
  });

  it("clamps tier inputs to 1..7", () => {
    expect([0, -3, Number.NaN, 8, 99, 2.7].map((t) => shardsFor(t))).toEqual([1, 1, 1, 128, 128, 4]);
  });

  it("applies overrides from vars", () => {
    const policy = tierPolicyFrom({
      SHARD_CAPACITY_RPS: "500",
      SCALE_DOWN_QUIET_MS: "60000",
      SCALE_DOWN_FACTOR: "0.5",
      SHARD_TIER2_THRESHOLD: "50",
      SHARD_TIER7_THRESHOLD: "100",
      SHARD_TIER2_COUNT: "2",
      SHARD_TIER7_COUNT: "256",
    });
    expect(policy).toEqual({
      counts: [1, 2, 8, 16, 32, 64, 256],
      thresholds: [0, 50, 55, 65, 75, 85, 100],
      shardCapacityRps: 500,
      scaleDownQuietMs: 60_000,
      downFactor: 0.5,
    });
    expect(shardsFor(7, policy)).toBe(256);
    // 1 → 2 at 50% of 1 × 500 req/s.
    expect(nextTier({ tier: 1, quietSince: null }, { rps: 249, now: T0 }, policy).tier).toBe(1);
    expect(nextTier({ tier: 1, quietSince: null }, { rps: 250, now: T0 }, policy).tier).toBe(2);
  });

  it.each<[TierVars, string]>([
    [{ SHARD_CAPACITY_RPS: "fast" }, "SHARD_CAPACITY_RPS"],
    [{ SHARD_CAPACITY_RPS: "0" }, "SHARD_CAPACITY_RPS"],
    [{ SCALE_DOWN_QUIET_MS: "-1" }, "SCALE_DOWN_QUIET_MS"],
    [{ SCALE_DOWN_QUIET_MS: "5 min" }, "SCALE_DOWN_QUIET_MS"],
    [{ SCALE_DOWN_FACTOR: "0" }, "SCALE_DOWN_FACTOR"],
    [{ SCALE_DOWN_FACTOR: "1.5" }, "SCALE_DOWN_FACTOR"],
    [{ SHARD_TIER2_COUNT: "0" }, "SHARD_TIER2_COUNT"],
    [{ SHARD_TIER2_COUNT: "1" }, "SHARD_TIER2_COUNT"],
    [{ SHARD_TIER3_COUNT: "6.5" }, "SHARD_TIER3_COUNT"],
    [{ SHARD_TIER4_COUNT: "8" }, "SHARD_TIER4_COUNT"],
    [{ SHARD_TIER2_COUNT: "10" }, "SHARD_TIER3_COUNT"],
    [{ SHARD_TIER6_COUNT: "lots" }, "SHARD_TIER6_COUNT"],
    [{ SHARD_TIER5_THRESHOLD: "0" }, "SHARD_TIER5_THRESHOLD"],
    [{ SHARD_TIER5_THRESHOLD: "101" }, "SHARD_TIER5_THRESHOLD"],
    [{ SHARD_TIER6_THRESHOLD: "70" }, "SHARD_TIER6_THRESHOLD"],
    [{ SHARD_TIER7_THRESHOLD: "x" }, "SHARD_TIER7_THRESHOLD"],
  ])("rejects %o naming %s", (vars, name) => {
    expect(() => tierPolicyFrom(vars)).toThrow(new RegExp(`^${name} `));
  });
});

describe("nextTier", () => {
  it("walks a slow ramp from 0 to 70,000 req/s up one tier at a time at each threshold", () => {
    // Up from t at threshold(t+1)% × counts[t-1] × 1,000: 45%×1k, 55%×4k, 65%×8k, 75%×16k, 85%×32k, 95%×64k.
    const rates = Array.from({ length: 7001 }, (_, i) => i * 10);
    const decisions = run({ tier: 1, quietSince: null }, rates, 1000);
    const ups: [number, number][] = [];
    let tier = 1;
    decisions.forEach((d, i) => {
      if (d.tier !== tier) ups.push([rates[i]!, d.tier]);
      tier = d.tier;
    });
    expect(ups).toEqual([
      [450, 2],
      [2200, 3],
      [5200, 4],
      [12_000, 5],
      [27_200, 6],
      [60_800, 7],
    ]);
    expect(decisions.at(-1)).toEqual({ tier: 7, quietSince: null, reason: "steady" });
  });

  it("jumps a spike from 100 to 30,000 req/s straight to tier 6 in one decision", () => {
    const [calm, spike] = run({ tier: 1, quietSince: null }, [100, 30_000], 1000);
    expect(calm).toEqual({ tier: 1, quietSince: null, reason: "steady" });
    expect(spike).toEqual({ tier: 6, quietSince: null, reason: "up" });
    expect(nextTier({ tier: 1, quietSince: null }, { rps: 27_199, now: T0 }).tier).toBe(5);
    expect(nextTier({ tier: 1, quietSince: null }, { rps: 70_000, now: T0 }).tier).toBe(7);
  });

  it("scales down only once the rate has stayed under the band for the quiet period", () => {
    // Tier 3's band: 55% × 4,000 × 0.8 = 1,760 req/s; tier 2's: 45% × 1,000 × 0.8 = 360.
    const start = { tier: 3, quietSince: null };
    expect(nextTier(start, { rps: 1760, now: T0 })).toEqual({ tier: 3, quietSince: null, reason: "steady" });
    const first = nextTier(start, { rps: 1000, now: T0 });
    expect(first).toEqual({ tier: 3, quietSince: T0, reason: "quiet" });
    const early = nextTier(first, { rps: 1000, now: T0 + QUIET - 1 });
    expect(early).toEqual({ tier: 3, quietSince: T0, reason: "quiet" });
    const down = nextTier(early, { rps: 1000, now: T0 + QUIET });
    expect(down).toEqual({ tier: 2, quietSince: T0 + QUIET, reason: "down" });
    expect(nextTier(down, { rps: 1000, now: T0 + QUIET + 10_000 })).toEqual({
      tier: 2,
      quietSince: null,
      reason: "steady",
    });
  });

  it("descends to the lowest tier the band allows in one step", () => {
    const quiet = nextTier({ tier: 5, quietSince: null }, { rps: 100, now: T0 });
    expect(quiet).toEqual({ tier: 5, quietSince: T0, reason: "quiet" });
    expect(nextTier(quiet, { rps: 100, now: T0 + QUIET })).toEqual({ tier: 1, quietSince: T0 + QUIET, reason: "down" });
    // 2,000 req/s is under tier 5's and tier 4's bands but not tier 3's (1,760).
    expect(nextTier({ tier: 5, quietSince: T0 }, { rps: 2000, now: T0 + QUIET }).tier).toBe(3);
  });

  it("restarts the quiet clock after a single blip back above the band", () => {
    const decisions = run({ tier: 3, quietSince: null }, [1000, 1000, 1000, 2000, 1000, 1000, 1000], 50_000);
    expect(decisions.map((d) => [d.tier, d.reason])).toEqual([
      [3, "quiet"],
      [3, "quiet"],
      [3, "quiet"],
      [3, "steady"],
      [3, "quiet"],
      [3, "quiet"],
      [3, "quiet"],
    ]);
    expect(decisions[4]?.quietSince).toBe(T0 + 4 * 50_000);
    // Past the first dip's deadline (T0 + 300 s) it still waits; the clock now runs from the blip.
    const last = decisions.at(-1)!;
    expect(nextTier(last, { rps: 1000, now: T0 + 4 * 50_000 + QUIET - 1 }).reason).toBe("quiet");
    expect(nextTier(last, { rps: 1000, now: T0 + 4 * 50_000 + QUIET }).tier).toBe(2);
  });

  it("goes up once and never down while load flaps around the 1→2 boundary for an hour", () => {
    const start = { tier: 1, quietSince: null };
    const rates = Array.from({ length: 360 }, (_, i) => (i % 2 === 0 ? 430 : 470));
    const decisions = run(start, rates, 10_000);
    expect(tierChanges(start, decisions)).toBe(1);
    expect(decisions.at(-1)?.tier).toBe(2);
  });

  it("never scales down while load flaps around the down band for an hour", () => {
    const start = { tier: 2, quietSince: null };
    const rates = Array.from({ length: 360 }, (_, i) => (i % 2 === 0 ? 350 : 370));
    const decisions = run(start, rates, 10_000);
    expect(tierChanges(start, decisions)).toBe(0);
    expect(new Set(decisions.map((d) => d.reason))).toEqual(new Set(["quiet", "steady"]));
  });

  it("raises one tier under pressure even at low rates, and caps at tier 7", () => {
    expect(nextTier({ tier: 2, quietSince: T0 }, { rps: 0, now: T0 + QUIET, pressure: true })).toEqual({
      tier: 3,
      quietSince: null,
      reason: "pressure",
    });
    expect(nextTier({ tier: 7, quietSince: null }, { rps: 0, now: T0, pressure: true }).tier).toBe(7);
    // When the rate alone climbs further, the rate wins.
    expect(nextTier({ tier: 1, quietSince: null }, { rps: 30_000, now: T0, pressure: true })).toEqual({
      tier: 6,
      quietSince: null,
      reason: "up",
    });
  });

  it("returns a pinned tier whatever the load, clamped to 1..7", () => {
    const busy = { rps: 70_000, now: T0, pressure: true };
    expect(nextTier({ tier: 1, quietSince: T0 }, { ...busy, pinned: 2 })).toEqual({
      tier: 2,
      quietSince: null,
      reason: "pinned",
    });
    expect(nextTier({ tier: 7, quietSince: null }, { rps: 0, now: T0 + QUIET, pinned: 7 }).tier).toBe(7);
    expect(nextTier({ tier: 3, quietSince: null }, { ...busy, pinned: 12 }).tier).toBe(7);
    expect(nextTier({ tier: 3, quietSince: null }, { ...busy, pinned: 0 }).tier).toBe(1);
    expect(nextTier({ tier: 1, quietSince: null }, { ...busy, pinned: null }).reason).toBe("up");
  });

  it("treats a NaN or negative rate as 0", () => {
    const due = { tier: 2, quietSince: T0 };
    expect(nextTier(due, { rps: Number.NaN, now: T0 + QUIET })).toEqual({
      tier: 1,
      quietSince: T0 + QUIET,
      reason: "down",
    });
    expect(nextTier(due, { rps: -5, now: T0 + QUIET })).toEqual({ tier: 1, quietSince: T0 + QUIET, reason: "down" });
    expect(nextTier({ tier: 4, quietSince: null }, { rps: Number.NaN, now: T0 })).toEqual({
      tier: 4,
      quietSince: T0,
      reason: "quiet",
    });
  });
});
