import { readFileSync } from "node:fs";
import { createRequire, Module } from "node:module";
import { dirname, join } from "node:path";
import { type ArrowTypes, fixVarcharUdfs, registerJsonFunctions } from "../lake/json-functions";
import type { EventsDb } from "../lake/reader";
import { plain, type QueryResult, runQuery, type SqlConnection } from "../lake/results";

type Connection = {
  query(sql: string): { schema: { fields: { name: string }[] }; toArray(): { toJSON(): Record<string, unknown> }[] };
  insertArrowFromIPCStream(buffer: Uint8Array, options: { name: string; schema?: string; create?: boolean }): void;
  createScalarFunction(name: string, returns: unknown, fn: (...args: never[]) => unknown): void;
};

/** What this file uses of DuckDB-wasm's blocking Node build. */
type DuckDBModule = {
  createDuckDB(
    bundles: unknown,
    logger: unknown,
    runtime: unknown,
  ): Promise<{ instantiate(): Promise<unknown>; connect(): Connection }>;
  VoidLogger: new () => unknown;
  NODE_RUNTIME: unknown;
};

/** The Node module's internals that load a script from its text (to load DuckDB-wasm's, fixed). */
type ModuleInternals = {
  new (id: string): { filename: string; paths: string[]; exports: unknown; _compile(text: string, file: string): void };
  _nodeModulePaths(dir: string): string[];
};

/**
 * DuckDB-wasm's blocking Node build, with its scalar functions' VARCHAR answers fixed (see
 * fixVarcharUdfs); `fixed` false: the script was not the one expected, and is loaded as it is.
 */
function loadDuckDB(entry: string, require: NodeJS.Require): { duckdb: DuckDBModule; fixed: boolean } {
  const text = fixVarcharUdfs(readFileSync(entry, "utf8"));
  if (text === null) return { duckdb: require(entry), fixed: false };
  const M = Module as unknown as ModuleInternals;
  const mod = new M(entry);
  mod.filename = entry;
  mod.paths = M._nodeModulePaths(dirname(entry));
  mod._compile(text, entry);
  return { duckdb: mod.exports as DuckDBModule, fixed: true };
}

/**
 * An in-memory DuckDB (duckdb-wasm, blocking Node build): `db` for the lake reader
 * (sdk/lake/reader.ts) to build the `events` table in, `query` to run the user's SQL on it.
 * duckdb-wasm cannot load extensions offline, so rows go in as Arrow IPC rather than through
 * read_parquet or read_json, and the json extension's extraction functions are JavaScript ones.
 */
export async function nodeDuckDB(): Promise<{ db: EventsDb; query(sql: string): Promise<QueryResult> }> {
  const require = createRequire(import.meta.url);
  const entry = require.resolve("@duckdb/duckdb-wasm/dist/duckdb-node-blocking.cjs");
  const { duckdb, fixed } = loadDuckDB(entry, require);
  const dist = dirname(entry);
  const bundles = {
    mvp: { mainModule: join(dist, "duckdb-mvp.wasm"), mainWorker: "" },
    eh: { mainModule: join(dist, "duckdb-eh.wasm"), mainWorker: "" },
  };
  const instance = await duckdb.createDuckDB(bundles, new duckdb.VoidLogger(), duckdb.NODE_RUNTIME);
  await instance.instantiate();
  const conn = instance.connect();
  // Offline, autoloading an extension (e.g. json for `data->>'x'`) would wait on the network
  // forever; without it such a query fails at once, naming the extension.
  conn.query("SET autoinstall_known_extensions = false");
  conn.query("SET autoload_known_extensions = false");
  // Nor may SQL load one by hand (LOAD json waited on the network for ever) or read local files:
  // the events table is all a query needs.
  conn.query("SET enable_external_access = false");
  if (fixed) {
    try {
      registerJsonFunctions(conn, require(require.resolve("apache-arrow", { paths: [dist] })) as ArrowTypes);
    } catch (err) {
      // Queries still run; one using them fails naming the json extension, as before.
      console.error(`ducktail: the JSON functions could not be registered: ${(err as Error).message}`);
    }
  }
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
