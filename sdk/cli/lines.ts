import type { TrackOptions } from "../types";

/** A line of NDJSON input read as an event for `track()`, or why it could not be. */
export type ParsedLine =
  | { ok: true; type: string; data: Record<string, unknown> | undefined; options: TrackOptions }
  | { ok: false; message: string };

/**
 * Reads one NDJSON line as an event: JSON, and an object. Its fields are passed on as they are
 * (the server validates them and rejects each bad event with a reason), so only what is not
 * an event at all is refused here.
 */
export function parseEventLine(text: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, message: `bad JSON: ${(err as Error).message}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, message: "not a JSON object" };
  }
  const e = value as Record<string, unknown>;
  const options = {
    id: e.id,
    timestamp: e.timestamp,
    source: e.source,
    importance: e.importance,
    userId: e.userId,
    anonymousId: e.anonymousId,
    sessionId: e.sessionId,
  } as TrackOptions;
  return { ok: true, type: e.type as string, data: e.data as Record<string, unknown> | undefined, options };
}

/**
 * Why the server would refuse a parsed line's event, worded as the server words it, for what
 * `track()` cannot even take (it throws a TypeError on those); null when the event may go.
 */
export function refusalBeforeSending(
  line: Extract<ParsedLine, { ok: true }>,
): { code: "invalid_field"; message: string } | null {
  const { type, data } = line as { type: unknown; data: unknown };
  if (type === undefined || type === null || type === "") return { code: "invalid_field", message: "type is required" };
  if (typeof type !== "string") return { code: "invalid_field", message: "type must be a string" };
  if (data !== undefined && data !== null && (typeof data !== "object" || Array.isArray(data))) {
    return { code: "invalid_field", message: "data must be a JSON object" };
  }
  return null;
}

/** Whether a line holds nothing to send (blank lines are skipped, not errors). */
export function isBlank(text: string): boolean {
  return text.trim() === "";
}
