export { type BatchPart, EventBatch } from "./batch";
export { EVENT_SCHEMA, EventColumns } from "./columns";
export {
  type CompactionOptions,
  type CompactionRun,
  type CompactionSummary,
  compactAll,
  compactHour,
  compactTenant,
  type HourRollup,
} from "./compaction";
export { deadLetterKey } from "./dead-letter";
export { R2NdjsonSink, toNdjson } from "./ndjson";
export { encodeParquet, encodeTable } from "./parquet";
export { objectKey, R2ParquetSink } from "./r2-parquet";
export { readEvents } from "./read";
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
