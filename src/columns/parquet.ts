import { type Table, tableFromIPC, tableToIPC } from "apache-arrow";
import {
  Compression,
  Encoding,
  readParquet,
  Table as WasmTable,
  WriterPropertiesBuilder,
  writeParquet,
} from "parquet-wasm/esm";
import type { EventBatch } from "./batch";

// parquet-wasm dictionary-encodes every column by default. For columns that are (nearly)
// unique per row a dictionary only adds bytes: monotonic integers delta-pack far better,
// and ids/JSON compress better plain under ZSTD. This keeps files at or below DuckDB's size.
const DELTA_COLUMNS = ["ts", "received_at", "seq"];
const PLAIN_COLUMNS = ["id", "data", "session_id"];

/** Writer settings; parquet-wasm consumes the properties on write, so each file builds its own. */
function writerProperties() {
  let builder = new WriterPropertiesBuilder()
    .setCompression(Compression.ZSTD)
    .setMaxRowGroupSize(128 * 1024)
    .setCreatedBy("ducktail");
  for (const column of DELTA_COLUMNS) {
    builder = builder.setColumnDictionaryEnabled(column, false).setColumnEncoding(column, Encoding.DELTA_BINARY_PACKED);
  }
  for (const column of PLAIN_COLUMNS) builder = builder.setColumnDictionaryEnabled(column, false);
  return builder.build();
}

/**
 * Encodes a flush batch as a ZSTD Parquet file with the events columns (docs/ARCHITECTURE.md).
 * parquet-wasm must have been initialized first (see `./wasm`).
 */
export function encodeParquet(batch: EventBatch): Uint8Array {
  return encodeTable(batch.table());
}

/** A Parquet file as one Arrow table. parquet-wasm must have been initialized first (see `./wasm`). */
export function readTable(bytes: Uint8Array): Table {
  return tableFromIPC(readParquet(bytes).intoIPCStream());
}

/** Encodes an Arrow table with the events columns (docs/ARCHITECTURE.md) (compaction's merged hours) with the same settings. */
export function encodeTable(table: Table): Uint8Array {
  return writeParquet(WasmTable.fromIPCStream(tableToIPC(table, "stream")), writerProperties());
}
