import { EVENT_COLUMN_NAMES } from "./schema";

/**
 * The events columns a SQL text may read: a conservative scan, not a parse. Every word of the
 * text (identifiers, quoted identifiers, even words inside string literals, so `DESCRIBE` filters
 * and the like keep their columns) that names a column counts; a `*` other than `count(*)`'s, or
 * `COLUMNS(`, means every column. Reading a column too many costs bytes; one too few would be a
 * wrong answer, so anything doubtful reads more.
 */
export function referencedColumns(sql: string): string[] {
  const withoutCountStar = sql.replace(/\(\s*\*\s*\)/g, "()");
  if (withoutCountStar.includes("*") || /\bcolumns\s*\(/i.test(sql)) return [...EVENT_COLUMN_NAMES];
  const words = new Set((sql.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []).map((w) => w.toLowerCase()));
  return EVENT_COLUMN_NAMES.filter((c) => words.has(c));
}
