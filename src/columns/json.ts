import { CONTEXT_COLUMNS, type EventContext, type StoredEvent } from "../protocol/events";

/** An event as one JSON text: `data` as the object it is, times as epoch ms. */
export function eventJson(e: StoredEvent): string {
  return (
    `{"id":${JSON.stringify(e.id)},"tenant":${JSON.stringify(e.tenant)},"ts":${e.ts},"receivedAt":${e.receivedAt},` +
    `"source":${JSON.stringify(e.source)},"type":${JSON.stringify(e.type)},"importance":"${e.importance}",` +
    `"userId":${JSON.stringify(e.userId)},"anonymousId":${JSON.stringify(e.anonymousId)},` +
    `"sessionId":${JSON.stringify(e.sessionId)},"data":${e.data},"replica":${JSON.stringify(e.replica)},"seq":${e.seq}` +
    `${e.context ? `,"context":${contextJson(e.context)}` : ""}}`
  );
}

/** A context's JSON, its fields in column order and `bot` last (what the NDJSON sink writes too). */
function contextJson(c: EventContext): string {
  let out = "{";
  for (const [field] of CONTEXT_COLUMNS) out += `"${field}":${JSON.stringify(c[field] ?? null)},`;
  return `${out}"bot":${c.bot ?? null}}`;
}
