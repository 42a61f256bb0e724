export { type BatchPart, EventBatch } from "./batch";
export { EVENT_SCHEMA, EventColumns } from "./columns";
export { encodeParquet } from "./parquet";
export { objectKey, R2ParquetSink } from "./r2-parquet";
export type { FlushContext, Sink } from "./sink";
