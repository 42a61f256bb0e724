import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { EventsDb } from "../lake/reader";

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
 * An in-memory DuckDB (duckdb-wasm, blocking Node build): `db` for the lake reader
 * (sdk/lake/reader.ts) to build the `events` table in, `query` to run the user's SQL on it.
 * duckdb-wasm cannot load extensions offline, so rows go in as Arrow IPC rather than through
 * read_parquet or read_json.
 */
export async function nodeDuckDB(): Promise<{ db: EventsDb; query(sql: string): QueryResult }> {
  const require = createRequire(import.meta.url);
  const entry = require.resolve("@duckdb/duckdb-wasm/dist/duckdb-node-blocking.cjs");
  const duckdb = require(entry);
  const dist = dirname(entry);
  const bundles = {
    mvp: { mainModule: join(dist, "duckdb-mvp.wasm"), mainWorker: "" },
    eh: { mainModule: join(dist, "duckdb-eh.wasm"), mainWorker: "" },
  };
  const instance = await duckdb.createDuckDB(bundles, new duckdb.VoidLogger(), duckdb.NODE_RUNTIME);
  await instance.instantiate();
  const conn = instance.connect() as Connection;
  // Offline, autoloading an extension (e.g. json for `data->>'x'`) would wait on the network
  // forever; without it such a query fails at once, naming the extension.
  conn.query("SET autoinstall_known_extensions = false");
  conn.query("SET autoload_known_extensions = false");
  const db: EventsDb = {
    run: async (sql) => {
      conn.query(sql);
    },
    value: async (sql) => {
      const result = conn.query(sql);
      return plain(result.toArray()[0]?.toJSON()[result.schema.fields[0]?.name ?? ""]);
    },
    insertIPC: async (name, ipc) => conn.insertArrowFromIPCStream(ipc, { name, schema: "main", create: true }),
  };
  return {
    db,
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
