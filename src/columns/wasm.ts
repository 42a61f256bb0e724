// parquet-wasm in workerd: the .wasm must be imported as a module (no runtime compilation).
import { initSync } from "parquet-wasm/esm";
import wasm from "parquet-wasm/esm/parquet_wasm_bg.wasm";

initSync({ module: wasm });
