import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { EventsDb } from "../lake/reader";
import { plain, type QueryResult, runQuery, type SqlConnection } from "../lake/results";

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
export async function nodeDuckDB(): Promise<{ db: EventsDb; query(sql: string): Promise<QueryResult> }> {
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
  // Nor may SQL load one by hand (LOAD json waited on the network for ever) or read local files:
  // the events table is all a query needs.
  conn.query("SET enable_external_access = false");
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
  const sql: SqlConnection = { query: async (text) => conn.query(text) };
  return { db, query: (text) => runQuery(sql, text) };
}
