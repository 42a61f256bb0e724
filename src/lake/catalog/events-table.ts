import { DataType, type Field } from "apache-arrow";
import { EVENT_SCHEMA } from "../../columns/columns";

/**
 * The one table of a tenant's lake, `events`, as the catalog describes it: its columns in
 * DuckLake's types and its partitioning. The ids are fixed, so every catalog numbers them alike.
 */

export const SCHEMA_ID = 0;
export const TABLE_ID = 1;
export const PARTITION_ID = 2;
/** The files carry no Parquet field ids, so DuckDB maps their columns to the table's by name. */
export const MAPPING_ID = 3;
/** The next free catalog id after the ones above. */
export const NEXT_CATALOG_ID = 4;
export const TABLE_NAME = "events";

export interface TableColumn {
  /** DuckLake's column_id: the field id of the column (1-based, in file order). */
  id: number;
  name: string;
  /** DuckLake type name (spec "Data Types"). */
  type: "varchar" | "timestamp" | "int64" | "boolean";
}

function ducklakeType(field: Field): TableColumn["type"] {
  if (DataType.isUtf8(field.type)) return "varchar";
  if (DataType.isTimestamp(field.type)) return "timestamp";
  if (DataType.isInt(field.type)) return "int64";
  if (DataType.isBool(field.type)) return "boolean";
  throw new Error(`no DuckLake type for column ${field.name}`);
}

/** The events columns (docs/ARCHITECTURE.md), in file order. */
export const EVENT_COLUMNS: readonly TableColumn[] = EVENT_SCHEMA.fields.map((f, i) => ({
  id: i + 1,
  name: f.name,
  type: ducklakeType(f),
}));

/**
 * Partitioned by the UTC hour of receipt, as the object keys are (`dt=…/hour=…`): DuckLake's
 * transforms have no date, so the day is year, month and day of `received_at`, then its hour.
 */
export const PARTITION_KEYS = ["year", "month", "day", "hour"] as const;
export const PARTITION_COLUMN = "received_at";

/** The partition values of an hour, as DuckLake writes them (BIGINT as text), in key order. */
export function partitionValues(hourStart: number): string[] {
  const d = new Date(hourStart);
  return [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours()].map(String);
}

/** The hour a file's partition values name (fewer values, as a rollup table's: the period's first hour). */
export function hourOf(values: readonly (string | number)[]): number {
  const [y, m = 1, d = 1, h = 0] = values.map(Number);
  return Date.UTC(y as number, m - 1, d, h);
}
