import type { Writable } from "node:stream";
import type { TailEvent } from "../types";

/** How to print: for a person at a terminal (tables, colours) or for a program (JSON). */
export interface OutputMode {
  tty: boolean;
  color: boolean;
}

/** A TTY gets tables and colours (unless NO_COLOR); a pipe or file gets JSON. FORCE_COLOR forces colours. */
export function outputMode(stream: { isTTY?: boolean }, env: Record<string, string | undefined>): OutputMode {
  const tty = stream.isTTY === true;
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0";
  return { tty, color: forced || (tty && env.NO_COLOR === undefined) };
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, gray: 90, bold: 1 } as const;
export type Colour = keyof typeof CODES;

export function paint(text: string, colour: Colour, on: boolean): string {
  return on ? `\x1b[${CODES[colour]}m${text}\x1b[0m` : text;
}

const IMPORTANCE_COLOUR: Record<string, Colour> = { critical: "red", high: "yellow", normal: "green", low: "gray" };

/** `12:00:01.234 high   web-app  signup  {"plan":"pro"}` — the UTC time of receipt, one line per event. */
export function eventLine(e: TailEvent, color: boolean): string {
  const time = new Date(e.receivedAt).toISOString().slice(11, 23);
  const data = e.data === undefined || e.data === null ? "" : JSON.stringify(e.data);
  const user = e.userId ? ` ${paint(`user=${e.userId}`, "magenta", color)}` : "";
  return [
    paint(time, "gray", color),
    paint(e.importance.padEnd(8), IMPORTANCE_COLOUR[e.importance] ?? "green", color),
    paint(e.source, "cyan", color),
    paint(e.type, "bold", color) + user,
    data,
  ]
    .join(" ")
    .trimEnd();
}

/** One table cell: strings as they are, objects as JSON, nothing as empty. */
export function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/**
 * Rows as an aligned text table with a header; numbers right-aligned. Columns are the keys of
 * every row in order of first appearance unless given.
 */
export function formatTable(rows: Record<string, unknown>[], columns?: string[]): string {
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  if (cols.length === 0) return "(no rows)\n";
  const text = rows.map((r) => cols.map((c) => cell(r[c])));
  const numeric = cols.map(
    (c) => rows.length > 0 && rows.every((r) => r[c] == null || typeof r[c] === "number" || typeof r[c] === "bigint"),
  );
  const width = cols.map((c, i) => Math.max(c.length, ...text.map((t) => (t[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((s, i) => (numeric[i] ? s.padStart(width[i] ?? 0) : s.padEnd(width[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const out = [line(cols), line(width.map((w) => "-".repeat(w))), ...text.map(line)];
  if (rows.length === 0) out.push("(no rows)");
  return `${out.join("\n")}\n`;
}

/** Scalar fields of an object as `key | value` rows (objects and lists inline as JSON). */
export function keyValueRows(o: Record<string, unknown>): Record<string, unknown>[] {
  return Object.entries(o).map(([key, value]) => ({ key, value: cell(value) }));
}

/**
 * Writes and, when the stream's buffer is full (`write` returned false), waits for 'drain'
 * before resolving, so a caller that awaits it pulls no more than the reader takes.
 */
export function writeOrWait(stream: Writable, text: string): Promise<void> {
  if (stream.write(text)) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      stream.off("error", done);
      resolve();
    };
    stream.once("drain", done);
    stream.once("close", done);
    stream.once("error", done);
  });
}

/** Pretty JSON for a pipe; a table for a person. */
export function report(out: Writable, mode: OutputMode, data: unknown, table: () => string): void {
  out.write(mode.tty ? table() : `${JSON.stringify(data, null, 2)}\n`);
}
