// The Explorer's engines, loaded on its first query: DuckDB-wasm (its worker script and module)
// and parquet-wasm, all from the deployment (GET /dashboard/wasm/…, sdk/dashboard/wasm-assets.mjs),
// never from a third-party host.
import * as duckdb from "@duckdb/duckdb-wasm";
import initParquet, * as parquet from "parquet-wasm/esm";
import type { EventsDb, ParquetReader } from "../../lake/reader";
import type { SqlConnection } from "../../lake/results";

export interface Engine {
  /** Where the lake reader builds `events`. */
  db: EventsDb;
  /** Where the user's SQL runs. */
  sql: SqlConnection;
  parquet: ParquetReader;
}

let loading: Promise<Engine> | null = null;
let running: Promise<unknown> = Promise.resolve();

/**
 * Runs `work` after every earlier one: a query rebuilds the table `events`, so two (a page left
 * and mounted again while its query runs) must not interleave on the one connection.
 */
export function exclusive<T>(work: () => Promise<T>): Promise<T> {
  const next = running.then(work, work);
  running = next.catch(() => {});
  return next;
}

/** The page's engines, started once per page load (`assets`: the dashboard's URL, `<base>/dashboard`). */
export function explorerEngine(assets: string): Promise<Engine> {
  loading ??= start(assets);
  loading.catch(() => {
    loading = null; // a failed start is tried again by the next query
  });
  return loading;
}

async function start(assets: string): Promise<Engine> {
  const worker = new Worker(`${assets}/wasm/duckdb-browser-eh.worker.js.gz`);
  const db = new duckdb.AsyncDuckDB(new duckdb.VoidLogger(), worker);
  await Promise.all([
    db.instantiate(`${assets}/wasm/duckdb-eh.wasm.gz`),
    initParquet({ module_or_path: `${assets}/wasm/parquet_wasm_bg.wasm.gz` }),
  ]);
  const conn = await db.connect();
  // Offline there is no extension to download: a query that needs one (json for `data->>'x'`)
  // fails at once, naming it, instead of waiting on the network.
  await conn.query("SET autoinstall_known_extensions = false");
  await conn.query("SET autoload_known_extensions = false");
  // Nor may SQL load one by hand (LOAD json waited on the network for ever) or read local files:
  // the events table is all a query needs.
  await conn.query("SET enable_external_access = false");
  return {
    db: {
      run: async (text) => {
        await conn.query(text);
      },
      value: async (text) => {
        const table = await conn.query(text);
        const first = table.toArray()[0]?.toJSON() as Record<string, unknown> | undefined;
        return first?.[table.schema.fields[0]?.name ?? ""];
      },
      insertIPC: (name, ipc) => conn.insertArrowFromIPCStream(ipc, { name, schema: "main", create: true }),
    },
    sql: { query: (text) => conn.query(text) as unknown as ReturnType<SqlConnection["query"]> },
    parquet: parquet as unknown as ParquetReader,
  };
}
