// How the lake names things: an hour's folder, its compacted parts, the manifest of a split under
// way, its spill folder, and the rollup files of each grain. Pure functions of their arguments.

import { type Grain, ROLLUP_PREFIX } from "./catalog/rollup-tables";
import { rollupTablePath } from "./catalog/tables";

/** The name compaction gave its output before the catalog: one per hour, rewritten in place. */
const COMPACTED_NAME = /^compacted-\d+\.parquet$/;
const PART_NAME = /^compacted-\d+-([0-9a-z]+)-(\d+)of(\d+)\.parquet$/;
export const MANIFEST_NAME = "_compaction.json";

/** `<prefix>/tenant=<t>/dt=<YYYY-MM-DD>/hour=<HH>/`: the folder `objectKey` writes an hour's objects to. */
export function hourPrefix(prefix: string, tenant: string, hourStart: number): string {
  const iso = new Date(hourStart).toISOString();
  return `${prefix}/tenant=${tenant}/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/`;
}

/**
 * Part `k` of `parts` of the output of compaction generation `gen` (a whole hour is part 0 of 1).
 * Each compaction writes under a new generation: the objects older snapshots list are never
 * overwritten.
 */
export function partKey(
  prefix: string,
  tenant: string,
  hourStart: number,
  gen: string,
  k: number,
  parts: number,
): string {
  return `${hourPrefix(prefix, tenant, hourStart)}compacted-${hourStart}-${gen}-${k}of${parts}.parquet`;
}

/** A new compaction generation: time-ordered and unique enough to never name an existing object. */
export function newGeneration(): string {
  return Date.now().toString(36) + Math.floor(Math.random() * 36 ** 4).toString(36);
}

/** The manifest of a split compaction under way. */
export function manifestKey(prefix: string, tenant: string, hourStart: number): string {
  return `${hourPrefix(prefix, tenant, hourStart)}${MANIFEST_NAME}`;
}

/** Whether an hour holding objects of these names is compacted: one compacted object, or every part of one generation. */
export function isCompacted(names: string[]): boolean {
  if (names.length === 1 && COMPACTED_NAME.test(names[0] as string)) return true;
  const parts = names.map((name) => PART_NAME.exec(name));
  const first = parts[0];
  if (!first || parts.some((p) => !p || p[1] !== first[1] || p[3] !== first[3])) return false;
  return new Set(parts.map((p) => p?.[2])).size === Number(first[3]) && names.length === Number(first[3]);
}

/** Where a split keeps its intermediate objects: outside the events prefix, so no reader sees them. */
export function spillPrefix(prefix: string, tenant: string, hour: number, gen: string): string {
  return `${prefix}-spill/tenant=${tenant}/hour=${hour}/${gen}/`;
}

/** The last segment of a key: the object's name in its folder. */
export function nameOf(key: string): string {
  return key.slice(key.lastIndexOf("/") + 1);
}

/** Where a period's rollup file goes: a new name (a generation) each time, never over one a snapshot lists. */
export function rollupKey(tenant: string, grain: Grain, period: number): string {
  const iso = new Date(period).toISOString();
  const folder =
    grain === "hour"
      ? `dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}`
      : grain === "day"
        ? `dt=${iso.slice(0, 10)}`
        : `month=${iso.slice(0, 7)}`;
  return `${ROLLUP_PREFIX}/${rollupTablePath(tenant, grain)}${folder}/rollup-${period}-${newGeneration()}.parquet`;
}
