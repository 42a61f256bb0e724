/**
 * Load tiers of a tenant's buffer shards: how many shards to run for the observed request rate.
 * Pure: the rate and the clock come in as arguments; the coordinator persists the state.
 *
 * Scale up fast: as soon as the rate reaches a threshold share of the tier's budget
 * (shards × capacity), jumping as many tiers as a spike needs, because an overloaded shard
 * delays or drops events right now. Scale down slow: only after the rate has stayed under a
 * lower band (threshold × downFactor) for a quiet period, because every tier change re-routes
 * clients, and load flapping around a boundary must not churn shards.
 */

export const TIER_COUNT = 7;

/** How tiers are sized and when they change. Arrays are indexed by tier - 1. */
export interface TierPolicy {
  /** Shards per tier, strictly increasing; tier 1 is always 1. Default [1, 4, 8, 16, 32, 64, 128]. */
  counts: number[];
  /**
   * Percent of the previous tier's budget at which a tier is entered, by destination tier;
   * thresholds[0] = 0 for tier 1. Default [0, 45, 55, 65, 75, 85, 95].
   */
  thresholds: number[];
  /** Requests/s one shard handles. Default 1,000. */
  shardCapacityRps: number;
  /** How long the rate must stay under the band before scaling down. Default 300,000 ms (5 min). */
  scaleDownQuietMs: number;
  /** Scale down only under entry threshold × this factor (hysteresis band). Default 0.8. */
  downFactor: number;
}

export const DEFAULT_TIER_POLICY: TierPolicy = {
  counts: [1, 4, 8, 16, 32, 64, 128],
  thresholds: [0, 45, 55, 65, 75, 85, 95],
  shardCapacityRps: 1000,
  scaleDownQuietMs: 300_000,
  downFactor: 0.8,
};

/** The vars that override DEFAULT_TIER_POLICY (all optional, decimal strings). */
export interface TierVars {
  SHARD_CAPACITY_RPS?: string;
  SCALE_DOWN_QUIET_MS?: string;
  SCALE_DOWN_FACTOR?: string;
  SHARD_TIER2_THRESHOLD?: string;
  SHARD_TIER3_THRESHOLD?: string;
  SHARD_TIER4_THRESHOLD?: string;
  SHARD_TIER5_THRESHOLD?: string;
  SHARD_TIER6_THRESHOLD?: string;
  SHARD_TIER7_THRESHOLD?: string;
  SHARD_TIER2_COUNT?: string;
  SHARD_TIER3_COUNT?: string;
  SHARD_TIER4_COUNT?: string;
  SHARD_TIER5_COUNT?: string;
  SHARD_TIER6_COUNT?: string;
  SHARD_TIER7_COUNT?: string;
}

/** Reads one var (default when unset) and checks it; errors name the var. */
function numberVar(vars: TierVars, name: keyof TierVars, fallback: number, ok: (n: number) => boolean, rule: string) {
  const value = vars[name];
  if (value === undefined || value === "") {
    if (!ok(fallback)) throw new Error(`${name} must be ${rule}; its default ${fallback} is not, so set it`);
    return fallback;
  }
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`${name} is not a number: "${value}"`);
  if (!ok(n)) throw new Error(`${name} must be ${rule}: "${value}"`);
  return n;
}

/**
 * Reads the vars (strings, as Workers vars are); unset → default. Throws an Error naming the var
 * for bad values: non-numeric, counts not positive integers or not strictly increasing (tier 1 is
 * always 1 shard), thresholds outside (0,100] or not non-decreasing, capacity ≤ 0, downFactor
 * outside (0,1], quiet < 0.
 */
export function tierPolicyFrom(vars: TierVars): TierPolicy {
  const d = DEFAULT_TIER_POLICY;
  const counts = [1];
  const thresholds = [0];
  for (let t = 2; t <= TIER_COUNT; t++) {
    const below = counts[t - 2]!;
    const countName = `SHARD_TIER${t}_COUNT` as keyof TierVars;
    const countRule = `an integer above tier ${t - 1}'s ${below} shards`;
    counts.push(numberVar(vars, countName, d.counts[t - 1]!, (n) => Number.isInteger(n) && n > below, countRule));
    const prev = thresholds[t - 2]!;
    const thresholdName = `SHARD_TIER${t}_THRESHOLD` as keyof TierVars;
    const thresholdRule = `a percent in (0, 100] and at least tier ${t - 1}'s ${prev}`;
    thresholds.push(
      numberVar(vars, thresholdName, d.thresholds[t - 1]!, (n) => n > 0 && n <= 100 && n >= prev, thresholdRule),
    );
  }
  return {
    counts,
    thresholds,
    shardCapacityRps: numberVar(vars, "SHARD_CAPACITY_RPS", d.shardCapacityRps, (n) => n > 0, "above 0"),
    scaleDownQuietMs: numberVar(vars, "SCALE_DOWN_QUIET_MS", d.scaleDownQuietMs, (n) => n >= 0, "0 or more"),
    downFactor: numberVar(vars, "SCALE_DOWN_FACTOR", d.downFactor, (n) => n > 0 && n <= 1, "in (0, 1]"),
  };
}

/** The persisted tier of a tenant; quietSince is when the rate last fell under the down band. */
export interface TierState {
  tier: number;
  quietSince: number | null;
}

/** One observation: request rate (req/s), the clock (ms), and the overrides. */
export interface TierSignal {
  rps: number;
  now: number;
  /** Early warning from the rate-limit binding: go up at least one tier now. */
  pressure?: boolean;
  /** Admin override: this tier, whatever the load. */
  pinned?: number | null;
}

/** The next state, and why ("pressure" also when pressure finds the tier already at 7). */
export interface TierDecision extends TierState {
  reason: "pinned" | "up" | "pressure" | "down" | "quiet" | "steady";
}

function clampTier(tier: number): number {
  if (Number.isNaN(tier)) return 1;
  return Math.min(TIER_COUNT, Math.max(1, Math.trunc(tier)));
}

/** Shards of a tier under a policy. */
export function shardsFor(tier: number, policy: TierPolicy = DEFAULT_TIER_POLICY): number {
  return policy.counts[clampTier(tier) - 1]!;
}

/** Rate at which tier t moves up to t + 1: threshold(t + 1)% of budget(t). */
function upAt(tier: number, policy: TierPolicy): number {
  return (policy.thresholds[tier]! * shardsFor(tier, policy) * policy.shardCapacityRps) / 100;
}

/** Rate under which tier t may move down to t - 1: the entry rate of t, times downFactor. */
function downAt(tier: number, policy: TierPolicy): number {
  return upAt(tier - 1, policy) * policy.downFactor;
}

/** "quiet" = below the band but the quiet period has not elapsed yet. */
export function nextTier(state: TierState, signal: TierSignal, policy: TierPolicy = DEFAULT_TIER_POLICY): TierDecision {
  if (signal.pinned != null) return { tier: clampTier(signal.pinned), quietSince: null, reason: "pinned" };
  const rps = Number.isNaN(signal.rps) ? 0 : Math.max(signal.rps, 0); // NaN and negatives count as idle
  const current = clampTier(state.tier);
  let tier = current;
  while (tier < TIER_COUNT && rps >= upAt(tier, policy)) tier++;
  if (tier > current) return { tier, quietSince: null, reason: "up" };
  if (signal.pressure) return { tier: Math.min(current + 1, TIER_COUNT), quietSince: null, reason: "pressure" };
  if (tier === 1 || rps >= downAt(tier, policy)) return { tier, quietSince: null, reason: "steady" };
  const quietSince = state.quietSince ?? signal.now;
  if (signal.now - quietSince < policy.scaleDownQuietMs) return { tier, quietSince, reason: "quiet" };
  while (tier > 1 && rps < downAt(tier, policy)) tier--;
  return { tier, quietSince: signal.now, reason: "down" };
}
