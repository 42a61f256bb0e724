import { tableFromArrays, tableToIPC } from "apache-arrow";
import { CONTEXT_COLUMNS } from "../../src/protocol/events";
import type { TailEvent } from "../types";

/** An event as GET /events answers it (src/columns/json.ts `eventJson`). */
export interface QueriedEvent extends Omit<TailEvent, "data"> {
  tenant: string;
  ts: number;
  data: unknown;
}

/**
 * Events from GET /events as one Arrow IPC stream with the lake's column names: text columns as
 * text (null where an event has none), times and seq as numbers, `data` as JSON text.
 * {@link bufferedSelect} turns it into the `events` table's types. duckdb-wasm bundles its own
 * apache-arrow, so tables cross as IPC bytes, never as objects of another Arrow version.
 */
export function eventsIPC(events: readonly QueriedEvent[]): Uint8Array {
  const text = (get: (e: QueriedEvent) => unknown) =>
    events.map((e) => {
      const v = get(e);
      return v === null || v === undefined ? null : String(v);
    });
  const table = tableFromArrays({
    id: text((e) => e.id),
    tenant: text((e) => e.tenant),
    ts: Float64Array.from(events, (e) => e.ts),
    received_at: Float64Array.from(events, (e) => e.receivedAt),
    source: text((e) => e.source),
    type: text((e) => e.type),
    importance: text((e) => e.importance),
    user_id: text((e) => e.userId),
    anonymous_id: text((e) => e.anonymousId),
    session_id: text((e) => e.sessionId),
    data: events.map((e) => (e.data === undefined || e.data === null ? null : JSON.stringify(e.data))),
    replica: text((e) => e.replica),
    seq: Float64Array.from(events, (e) => e.seq),
    ...Object.fromEntries(CONTEXT_COLUMNS.map(([field, name]) => [name, text((e) => e.context?.[field])])),
    is_bot: text((e) => e.context?.bot),
  });
  return tableToIPC(table, "stream");
}

/** How a column of {@link eventsIPC}'s table becomes the `events` table's column. */
export function bufferedSelect(column: string): string {
  if (column === "ts" || column === "received_at") return `make_timestamp_ms(${column}::BIGINT) AS ${column}`;
  if (column === "seq") return "seq::BIGINT AS seq";
  if (column === "is_bot") return "is_bot::BOOLEAN AS is_bot";
  return `${column}::VARCHAR AS ${column}`;
}
