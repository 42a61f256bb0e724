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

(globalThis as { __ducktailConnected?: (conn: UdfConnection) => void }).__ducktailConnected = (conn) => {
  try {
    registerJsonFunctions(conn, { Utf8, Int32 });
  } catch (err) {
    // The connection still works; a query using them fails naming the json extension, as before.
    console.warn("ducktail: the Explorer's JSON functions could not be registered", err);
  }
};
