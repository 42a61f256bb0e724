export { type BatchPart, EventBatch } from "./batch";
export { EVENT_SCHEMA, EventColumns } from "./columns";
export { deadLetterKey } from "./dead-letter";
export { R2NdjsonSink, toNdjson } from "./ndjson";
export { encodeParquet } from "./parquet";
export { objectKey, R2ParquetSink } from "./r2-parquet";
export { type FlushContext, idempotencyKey, type Sink } from "./sink";
export { type WebhookOptions, WebhookSink } from "./webhook";
