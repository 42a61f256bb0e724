/**
 * The replay page's address for other pages (the errors view, the Explorer's rows), without
 * importing the page itself (which would load rrweb's player with them).
 */

/** `#/replay/<session>?t=<ms>`: the session's replay from a little before `atMs` (e.g. an error's time). */
export function replayHash(session: string, atMs?: number): string {
  const t = atMs === undefined || !Number.isFinite(atMs) ? "" : `?t=${Math.round(atMs)}`;
  return `#/replay/${encodeURIComponent(session)}${t}`;
}
