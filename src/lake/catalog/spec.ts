import SPEC_DDL from "./ducklake-1.0.sql";

/**
 * The DuckLake specification this catalog implements: its version and its tables, read from the
 * spec's DDL kept beside this file (ducklake-1.0.sql names its exact source).
 */

/** The spec version, as `ducklake_metadata` records it under the key `version`. */
export const DUCKLAKE_VERSION = "1.0";

/** Where ducklake-1.0.sql was taken from (repeated in the file's header). */
export const DUCKLAKE_SOURCE =
  "github.com/duckdb/ducklake@5ef9e03d58286cf4bc532c62a69ae3c51fbb8f51 (branch v1.5-variegata) src/storage/ducklake_metadata_manager.cpp InitializeDuckLake";

export interface SpecColumn {
  name: string;
  /** The DuckDB type the spec declares (BIGINT, VARCHAR, BOOLEAN, UUID, TIMESTAMPTZ). */
  type: string;
  primaryKey: boolean;
  notNull: boolean;
}

export interface SpecTable {
  name: string;
  columns: SpecColumn[];
}

/** The spec's `CREATE TABLE` statements as tables and columns, in the file's order. */
export function parseDdl(sql: string): SpecTable[] {
  const text = sql
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("--"))
    .join("\n");
  const tables: SpecTable[] = [];
  for (const m of text.matchAll(/CREATE TABLE\s+(\w+)\s*\(([^;]*)\)\s*;/g)) {
    const columns = (m[2] as string).split(",").map((part): SpecColumn => {
      const words = part.trim().split(/\s+/);
      const rest = words.slice(2).join(" ").toUpperCase();
      return {
        name: words[0] as string,
        type: (words[1] as string).toUpperCase(),
        primaryKey: rest.includes("PRIMARY KEY"),
        notNull: rest.includes("NOT NULL"),
      };
    });
    tables.push({ name: m[1] as string, columns });
  }
  return tables;
}

/** Every table of the spec. */
export const SPEC_TABLES: readonly SpecTable[] = parseDdl(SPEC_DDL);

/**
 * The type DuckDB's sqlite extension declares for a column of a DuckDB type when the ducklake
 * extension creates its catalog in SQLite (`ATTACH 'ducklake:sqlite:…'`): integers and booleans
 * become BIGINT, floating point DOUBLE, BLOB stays, everything else (VARCHAR, UUID, TIMESTAMPTZ)
 * VARCHAR. Source: github.com/duckdb/duckdb-sqlite, src/sqlite_utils.cpp `SQLiteUtils::ToSQLiteType`,
 * applied by src/storage/sqlite_schema_entry.cpp `GetCreateTableSQL`. Values follow the same
 * rule: booleans are stored as 0/1, timestamps and UUIDs as text.
 */
export function sqliteType(duckdbType: string): "BIGINT" | "DOUBLE" | "BLOB" | "VARCHAR" {
  switch (duckdbType) {
    case "BOOLEAN":
    case "TINYINT":
    case "SMALLINT":
    case "INTEGER":
    case "BIGINT":
    case "UTINYINT":
    case "USMALLINT":
    case "UINTEGER":
      return "BIGINT";
    case "FLOAT":
    case "DOUBLE":
      return "DOUBLE";
    case "BLOB":
      return "BLOB";
    default:
      return "VARCHAR";
  }
}

/** The spec's tables as DuckDB creates them in a SQLite catalog database (see {@link sqliteType}). */
export function sqliteDdl(tables: readonly SpecTable[] = SPEC_TABLES): string[] {
  return tables.map((t) => {
    const columns = t.columns.map(
      (c) => `"${c.name}" ${sqliteType(c.type)}${c.primaryKey ? " PRIMARY KEY" : ""}${c.notNull ? " NOT NULL" : ""}`,
    );
    return `CREATE TABLE "${t.name}"(${columns.join(", ")});`;
  });
}
