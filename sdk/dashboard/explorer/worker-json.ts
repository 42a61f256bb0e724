// Prepended to DuckDB-wasm's worker script as the dashboard serves it (sdk/dashboard/wasm-assets.mjs):
// the worker calls `__ducktailConnected` with each connection it opens (a line the build adds to
// its CONNECT handler), which gets the json extension's extraction functions, as in the CLI
// (sdk/lake/json-functions.ts): DuckDB-wasm cannot download the extension offline, and its async
// connections cannot take JavaScript functions from the page.
import { registerJsonFunctions, type UdfConnection } from "../../lake/json-functions";

/** Arrow's types as DuckDB-wasm reads a function's return type: by `typeId` (Arrow's Type enum). */
class Utf8 {
  readonly typeId = 5;
}
class Int32 {
  readonly typeId = 2;
}

(globalThis as { __ducktailConnected?: (conn: UdfConnection) => void }).__ducktailConnected = (conn) =>
  registerJsonFunctions(conn, { Utf8, Int32 });
