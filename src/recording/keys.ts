/**
 * Where recordings live in the bucket, one place for every key:
 *   recordings/tenant=<t>/dt=<day>/<session>/<seq>.json.gz   a chunk's rrweb events, gzipped JSON
 *   recordings/tenant=<t>/sessions/dt=<day>/<session>.json   the session's index (its summary),
 *                                                            listed with its custom metadata
 * `<day>` is the UTC day the session started, for all of its objects, so retention removes whole days.
 */

export const RECORDINGS_PREFIX = "recordings";
const DAY_MS = 86_400_000;

/** YYYY-MM-DD, UTC. */
export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function tenantRoot(tenant: string): string {
  return `${RECORDINGS_PREFIX}/tenant=${tenant}/`;
}

export function chunkPrefix(tenant: string, day: string, session: string): string {
  return `${tenantRoot(tenant)}dt=${day}/${session}/`;
}

export function chunkKey(tenant: string, day: string, session: string, seq: number): string {
  return `${chunkPrefix(tenant, day, session)}${seq}.json.gz`;
}

/** The seq of a chunk key; null for any other key. */
export function seqOfKey(key: string): number | null {
  const m = /\/(\d+)\.json\.gz$/.exec(key);
  return m ? Number(m[1]) : null;
}

export function indexDayPrefix(tenant: string, day: string): string {
  return `${tenantRoot(tenant)}sessions/dt=${day}/`;
}

export function indexKey(tenant: string, day: string, session: string): string {
  return `${indexDayPrefix(tenant, day)}${session}.json`;
}

/** The days from `from`'s to `to`'s (UTC), oldest first. */
export function daysBetween(from: number, to: number): string[] {
  const days: string[] = [];
  for (let t = Math.floor(from / DAY_MS) * DAY_MS; t <= to; t += DAY_MS) days.push(dayOf(t));
  return days;
}
