import { CONTEXT_COLUMNS } from "../../src/protocol/events";

/**
 * The `events` table a lake reader builds, column by column as the Parquet lake has them
 * (src/columns/columns.ts EVENT_SCHEMA; test/unit/lake-reader.test.ts keeps the two in step),
 * with the DuckDB type each gets.
 */
export const EVENT_TABLE_COLUMNS: readonly (readonly [name: string, duckType: string])[] = [
  ["id", "VARCHAR"],
  ["tenant", "VARCHAR"],
  ["ts", "TIMESTAMP"],
  ["received_at", "TIMESTAMP"],
  ["source", "VARCHAR"],
  ["type", "VARCHAR"],
  ["importance", "VARCHAR"],
  ["user_id", "VARCHAR"],
  ["anonymous_id", "VARCHAR"],
  ["session_id", "VARCHAR"],
  ["data", "VARCHAR"],
  ["replica", "VARCHAR"],
  ["seq", "BIGINT"],
  ...CONTEXT_COLUMNS.map(([, name]) => [name, "VARCHAR"] as const),
  ["is_bot", "BOOLEAN"],
];

export const EVENT_COLUMN_NAMES = EVENT_TABLE_COLUMNS.map(([name]) => name);
