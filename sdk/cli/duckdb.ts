import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { CONTEXT_COLUMNS } from "../../src/protocol/events";
import type { TailEvent } from "../types";

/** An event as GET /events answers it (src/sinks/ndjson.ts `eventJson`). */
export interface QueriedEvent extends Omit<TailEvent, "data"> {
  tenant: string;
  ts: number;
  data: unknown;
}

/** A query's answer: column names in order, and rows of plain JSON values. */
export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
}

// Types that come out of Arrow as JSON-friendly JS values; anything else is cast in SQL first
// (DECIMAL and HUGEINT to DOUBLE, timestamps, intervals, lists… to their text).
const PLAIN = /^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|VARCHAR)$/;
const TO_DOUBLE = /^(DECIMAL.*|HUGEINT|UHUGEINT)$/;

const quoteIdent = (s: string) => `"${s.replaceAll('"', '""')}"`;

/** Values as JSON has them: safe bigints as numbers, larger ones as text. */
function plain(v: unknown): unknown {
  if (typeof v === "bigint")
    return v >= Number.MIN_SAFE_INTEGER && v <= Number.MAX_SAFE_INTEGER ? Number(v) : v.toString();
  return v;
}

type Connection = {
  query(sql: string): { schema: { fields: { name: string }[] }; toArray(): { toJSON(): Record<string, unknown> }[] };
  insertArrowFromIPCStream(buffer: Uint8Array, options: { name: string; schema?: string; create?: boolean }): void;
};

/**
 * An in-memory DuckDB (duckdb-wasm, blocking Node build) with the events in a table `events`
 * shaped like the Parquet lake (ts and received_at as TIMESTAMP, data as JSON text, the context
 * columns, null where an event has none). duckdb-wasm
 * cannot load extensions offline, so the rows go in as Arrow IPC rather than through read_json.
 */
export async function eventsDatabase(events: QueriedEvent[]): Promise<{ query(sql: string): QueryResult }> {
  const require = createRequire(import.meta.url);
  const entry = require.resolve("@duckdb/duckdb-wasm/dist/duckdb-node-blocking.cjs");
  const duckdb = require(entry);
  const dist = dirname(entry);
  const bundles = {
    mvp: { mainModule: join(dist, "duckdb-mvp.wasm"), mainWorker: "" },
    eh: { mainModule: join(dist, "duckdb-eh.wasm"), mainWorker: "" },
  };
  const db = await duckdb.createDuckDB(bundles, new duckdb.VoidLogger(), duckdb.NODE_RUNTIME);
  await db.instantiate();
  const conn = db.connect() as Connection;
  // Offline, autoloading an extension (e.g. json for `data->>'x'`) would wait on the network
  // forever; without it such a query fails at once, naming the extension.
  conn.query("SET autoinstall_known_extensions = false");
  conn.query("SET autoload_known_extensions = false");
  const text = (get: (e: QueriedEvent) => unknown) =>
    events.map((e) => {
      const v = get(e);
      return v === null || v === undefined ? null : String(v);
    });
  // Arrow (the IPC stream) is the bridge: duckdb-wasm bundles its own apache-arrow, so tables
  // are not passed as objects across the two versions.
  const raw = tableFromArrays({
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
  conn.insertArrowFromIPCStream(tableToIPC(raw, "stream"), { name: "events_raw", schema: "main", create: true });
  const v = (c: string) => `${c}::VARCHAR AS ${c}`;
  conn.query(
    `CREATE TABLE events AS SELECT ${v("id")}, ${v("tenant")}, make_timestamp_ms(ts::BIGINT) AS ts, ` +
      `make_timestamp_ms(received_at::BIGINT) AS received_at, ${v("source")}, ${v("type")}, ${v("importance")}, ` +
      `${v("user_id")}, ${v("anonymous_id")}, ${v("session_id")}, ${v("data")}, ${v("replica")}, seq::BIGINT AS seq, ` +
      `${CONTEXT_COLUMNS.map(([, name]) => v(name)).join(", ")}, is_bot::BOOLEAN AS is_bot ` +
      "FROM events_raw",
  );
  conn.query("DROP TABLE events_raw");
  return {
    query(sql: string): QueryResult {
      const body = sql.trim().replace(/;\s*$/, "");
      let run = body;
      try {
        // A single query: cast what JSON cannot hold as it is. DESCRIBE fails on anything else
        // (several statements, DDL), which then runs unchanged.
        const described = conn
          .query(`DESCRIBE ${body}`)
          .toArray()
          .map((r) => r.toJSON());
        const casts = described.map((d) => {
          const name = quoteIdent(String(d.column_name));
          const type = String(d.column_type);
          if (PLAIN.test(type)) return name;
          return `${name}::${TO_DOUBLE.test(type) ? "DOUBLE" : "VARCHAR"} AS ${name}`;
        });
        if (casts.length) run = `SELECT ${casts.join(", ")} FROM (${body})`;
      } catch {
        run = body;
      }
      const result = conn.query(run);
      const columns = result.schema.fields.map((f) => f.name);
      const rows = result.toArray().map((r) => {
        const o = r.toJSON();
        return Object.fromEntries(columns.map((c) => [c, plain(o[c])]));
      });
      return { columns, rows };
    },
  };
}
