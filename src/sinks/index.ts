export { EVENT_SCHEMA, eventsToArrow } from "./columns";
export { encodeParquet } from "./parquet";
export { byHour, objectKey, R2ParquetSink } from "./r2-parquet";
export type { FlushContext, Sink } from "./sink";
