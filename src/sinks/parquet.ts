import { tableToIPC } from "apache-arrow";
import { Compression, Table as WasmTable, WriterPropertiesBuilder, writeParquet } from "parquet-wasm/esm";
import type { StoredEvent } from "../protocol/events";
import { eventsToArrow } from "./columns";

let writerProps: ReturnType<WriterPropertiesBuilder["build"]> | null = null;

function props() {
  // WriterProperties are consumed by writeParquet in parquet-wasm, so build a fresh one each time
  // but keep the builder settings in one place.
  writerProps = new WriterPropertiesBuilder()
    .setCompression(Compression.ZSTD)
    .setMaxRowGroupSize(128 * 1024)
    .setCreatedBy("ducktail")
    .build();
  return writerProps;
}

/**
 * Encodes a flush batch as a ZSTD Parquet file with the DESIGN.md columns.
 * parquet-wasm must have been initialized first (see `./wasm`).
 */
export function encodeParquet(events: readonly StoredEvent[]): Uint8Array {
  const ipc = tableToIPC(eventsToArrow(events), "stream");
  const table = WasmTable.fromIPCStream(ipc);
  return writeParquet(table, props());
}
