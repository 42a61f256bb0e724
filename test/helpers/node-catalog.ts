import { DatabaseSync } from "node:sqlite";
import { Catalog, type CatalogSettings } from "../../src/lake/catalog/catalog";
import type { CatalogSql, SqlValue } from "../../src/lake/catalog/sql";

/** node:sqlite as a CatalogSql: the catalog's SQL runs in Node as in the Durable Object. */
export function nodeSql(db: DatabaseSync): CatalogSql {
  return {
    exec: (query, ...params) => {
      db.prepare(query).run(...params);
    },
    all: <T>(query: string, ...params: SqlValue[]) => db.prepare(query).all(...params) as T[],
    transaction: (fn) => {
      db.exec("BEGIN");
      try {
        const result = fn();
        db.exec("COMMIT");
        return result;
      } catch (err) {
        db.exec("ROLLBACK");
        throw err;
      }
    },
  };
}

/** A fresh in-memory catalog of `tenant`, created at `now`. */
export function memoryCatalog(tenant = "acme", now = Date.UTC(2026, 0, 1), settings: Partial<CatalogSettings> = {}) {
  const db = new DatabaseSync(":memory:");
  const catalog = new Catalog(nodeSql(db), {
    tenant,
    prefix: "events",
    dataPath: "s3://ducktail-events/",
    author: "DuckTail test",
    ...settings,
  });
  catalog.init(now);
  return { db, catalog };
}
