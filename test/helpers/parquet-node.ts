import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { initSync } from "parquet-wasm/esm";

/** parquet-wasm in Node: the same esm build the Worker uses, initialized from the .wasm bytes. */
const require = createRequire(import.meta.url);
initSync({ module: readFileSync(require.resolve("parquet-wasm/esm/parquet_wasm_bg.wasm")) });
