// Which sessions have a recording, so that the pages link only those to their replay: recording
// is opt-in and sampled, and a server's events name sessions too.
import type { DashboardContext } from "./page";

/** GET /recording/sessions's most per request. */
const LIMIT = 1000;

/**
 * The sessions recorded from `from` to `to` (epoch ms; `to` absent: up to now), or null when that
 * is not known (the list failed, or was cut at its limit): then every session gets its link.
 */
export async function recordedSessions(
  ctx: DashboardContext,
  from: number,
  to?: number,
  signal?: AbortSignal,
): Promise<Set<string> | null> {
  const range = `from=${Math.floor(from)}${to === undefined ? "" : `&to=${Math.ceil(to)}`}`;
  try {
    const res = await ctx.api(`/recording/sessions?${range}&limit=${LIMIT}`, signal ? { signal } : {});
    const { sessions } = (await res.json()) as { sessions: { session: string }[] };
    return sessions.length < LIMIT ? new Set(sessions.map((s) => s.session)) : null;
  } catch {
    return null;
  }
}

/** Whether `session` gets a replay link: recorded, or not known not to be. */
export function hasReplay(recorded: Set<string> | null, session: string): boolean {
  return recorded === null || recorded.has(session);
}
