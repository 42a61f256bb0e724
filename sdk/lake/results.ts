/**
 * A query's answer as plain JSON values, from duckdb-wasm's Arrow result (Node or browser): each
 * column of a single query is first cast to what JSON holds as it is (DECIMAL and HUGEINT to
 * DOUBLE; timestamps, intervals, lists… to their text), through DESCRIBE. DESCRIBE fails on
 * anything else (several statements, DDL), which then runs unchanged.
 */

/** A query's answer: column names in order, their DuckDB types (before the casts; "" if unknown), rows of plain JSON values. */
export interface QueryResult {
  columns: string[];
  types: string[];
  rows: Record<string, unknown>[];
  /** More rows than `maxRows` answered: `rows` holds the first `maxRows`. */
  truncated?: boolean;
}

/** What of a duckdb-wasm connection is used; the blocking Node one is wrapped to answer promises. */
export interface SqlConnection {
  query(sql: string): Promise<{
    schema: { fields: { name: string }[] };
    toArray(): { toJSON(): Record<string, unknown> }[];
  }>;
}

const PLAIN = /^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|VARCHAR)$/;
const TO_DOUBLE = /^(DECIMAL.*|HUGEINT|UHUGEINT)$/;

const quoteIdent = (s: string) => `"${s.replaceAll('"', '""')}"`;

/** Values as JSON has them: safe bigints as numbers, larger ones as text. */
export function plain(v: unknown): unknown {
  if (typeof v === "bigint")
    return v >= Number.MIN_SAFE_INTEGER && v <= Number.MAX_SAFE_INTEGER ? Number(v) : v.toString();
  return v;
}

/** Runs `sql`; `maxRows` (default: all) keeps at most that many rows of a single query's answer. */
export async function runQuery(conn: SqlConnection, sql: string, maxRows?: number): Promise<QueryResult> {
  const body = sql.trim().replace(/;\s*$/, "");
  let run = body;
  let types: string[] = [];
  try {
    const described = (await conn.query(`DESCRIBE ${body}`)).toArray().map((r) => r.toJSON());
    types = described.map((d) => String(d.column_type));
    const casts = described.map((d) => {
      const name = quoteIdent(String(d.column_name));
      const type = String(d.column_type);
      if (PLAIN.test(type)) return name;
      return `${name}::${TO_DOUBLE.test(type) ? "DOUBLE" : "VARCHAR"} AS ${name}`;
    });
    const limit = maxRows === undefined ? "" : ` LIMIT ${maxRows + 1}`;
    if (casts.length) run = `SELECT ${casts.join(", ")} FROM (${body})${limit}`;
  } catch {
    run = body;
  }
  let result: Awaited<ReturnType<SqlConnection["query"]>>;
  try {
    result = await conn.query(run);
  } catch (err) {
    throw new Error(withoutRepeats((err as Error).message));
  }
  const columns = result.schema.fields.map((f) => f.name);
  const arrow = result.toArray();
  const truncated = maxRows !== undefined && arrow.length > maxRows;
  const rows = (truncated ? arrow.slice(0, maxRows) : arrow).map((r) => {
    const o = r.toJSON();
    return Object.fromEntries(columns.map((c) => [c, plain(o[c])]));
  });
  return { columns, types: columns.map((_, i) => types[i] ?? ""), rows, ...(truncated && { truncated }) };
}

/** DuckDB-wasm repeats an error's `LINE 1: …` context block; each paragraph once is enough. */
export function withoutRepeats(message: string): string {
  return message
    .split("\n\n")
    .filter((block, i, blocks) => i === 0 || block !== blocks[i - 1])
    .join("\n\n");
}
