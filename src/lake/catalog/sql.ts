/**
 * The SQLite a catalog runs on, as three calls, so the same catalog code runs in a Durable
 * Object (`ctx.storage.sql`) and in Node (`node:sqlite`, for tests and tools).
 */

export type SqlValue = string | number | null;

export interface CatalogSql {
  exec(query: string, ...params: SqlValue[]): void;
  all<T>(query: string, ...params: SqlValue[]): T[];
  /** Runs `fn` in one transaction: all of it is written, or (it threw) none. */
  transaction<T>(fn: () => T): T;
}

/** A Durable Object's SQLite storage as a CatalogSql. */
export function durableSql(storage: DurableObjectStorage): CatalogSql {
  return {
    exec: (query, ...params) => {
      storage.sql.exec(query, ...params);
    },
    all: <T>(query: string, ...params: SqlValue[]) => storage.sql.exec(query, ...params).toArray() as unknown as T[],
    transaction: (fn) => storage.transactionSync(fn),
  };
}

/** `YYYY-MM-DD HH:MM:SS.mmm+00`: how a TIMESTAMPTZ reads as text in a SQLite catalog (UTC). */
export function catalogTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}+00`;
}

/** Epoch ms of a TIMESTAMPTZ as `catalogTime` (or DuckDB, with any offset) writes it. */
export function parseCatalogTime(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-]\d{2}(?::?\d{2})?)?$/.exec(text.trim());
  if (!m) return Number.NaN;
  const offset = m[3] ? `${m[3].slice(0, 3)}:${m[3].slice(3).replace(":", "") || "00"}` : "Z";
  return Date.parse(`${m[1]}T${m[2]}${offset}`);
}
