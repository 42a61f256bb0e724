export { type BatchPart, EventBatch } from "../columns/batch";
export { EVENT_SCHEMA, EventColumns } from "../columns/columns";
export { encodeParquet, encodeTable } from "../columns/parquet";
export { readEvents } from "../columns/read";
export {
  type CompactionOptions,
  type CompactionRun,
  type CompactionSummary,
  compactAll,
  compactHour,
  compactTenant,
} from "../lake/compaction";
export { deadLetterKey } from "./dead-letter";
export { R2NdjsonSink, toNdjson } from "./ndjson";
export { type FlushCommitter, objectKey, R2ParquetSink } from "./r2-parquet";
export {
  type FlushContext,
  idempotencyKey,
  isPermanentFailure,
  PermanentSinkError,
  type Sink,
  settleAll,
} from "./sink";
export { StorageTimeoutError, timedBucket, withTimeout } from "./timeout";
export { type WebhookOptions, WebhookSink } from "./webhook";
