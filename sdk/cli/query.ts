import { importanceOf, listOf, parseCommand, positiveInt, resolveConfig, UsageError } from "./args";
import { CONNECTION_HELP, type Command, printHelp } from "./command";
import { eventsDatabase, type QueriedEvent } from "./duckdb";
import { get } from "./http";
import { formatTable, outputMode } from "./output";

const DAY_MS = 86_400_000;

/** epoch ms, ISO-8601, or a duration back from now like 30m, 6h, 7d. */
export function timeArg(raw: string | undefined, now: number, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const ago = /^(\d+)(m|h|d)$/.exec(raw);
  if (ago) return now - Number(ago[1]) * { m: 60_000, h: 3_600_000, d: DAY_MS }[ago[2] as "m" | "h" | "d"];
  const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(ms)) throw new UsageError(`${flag} must be epoch ms, ISO-8601 or like 30m, 6h, 7d`, "query");
  return ms;
}

export const query: Command = {
  name: "query",
  summary:
    'run SQL (DuckDB) over the tenant\'s events: ducktail query "SELECT type, count(*) FROM events GROUP BY type"',
  help: `Usage: ducktail query "<SQL>" [--from <time>] [--to <time>] [--source <s>] [--type <t>]
                       [--importance <level>] [--limit <n>] [--snapshot <n> | --as-of <time>]
                       [--json | --ndjson]

Fetches events from GET /events (the lake's latest snapshot merged with what the shards still
buffer, or the lake alone as of an earlier snapshot), loads them into an in-memory DuckDB table
named "events" and runs the SQL on it.
Columns: id, tenant, ts, received_at (TIMESTAMP), source, type, importance, user_id,
anonymous_id, session_id, data (JSON text), replica, seq.
A table on a terminal; JSON (an array of rows) when piped or with --json; --ndjson for one row per line.

Which events are loaded (time of receipt):
  --from <time>         epoch ms, ISO-8601, or back from now like 30m, 6h, 7d (default 24h)
  --to <time>           the same (default now)
  --source <s>          exact sources, comma separated
  --type <t>            exact types, comma separated
  --importance <level>  exact importances, comma separated
  --limit <n>           most events, newest first (default 100000, at most 1000000)
  --snapshot <n>        the lake as of snapshot n (ids from GET /snapshots), without the buffers
  --as-of <time>        the lake as of the last snapshot at or before <time>, without the buffers

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values, positionals } = parseCommand(
      "query",
      argv,
      {
        from: { type: "string" },
        to: { type: "string" },
        source: { type: "string", multiple: true },
        type: { type: "string", multiple: true },
        importance: { type: "string", multiple: true },
        limit: { type: "string" },
        snapshot: { type: "string" },
        "as-of": { type: "string" },
        json: { type: "boolean" },
        ndjson: { type: "boolean" },
      },
      1,
    );
    if (values.help) return printHelp(io, query.help);
    const sql = positionals[0];
    if (!sql?.trim())
      throw new UsageError('query needs SQL, e.g. ducktail query "SELECT count(*) FROM events"', "query");
    const config = resolveConfig(values, io.env);
    const now = Date.now();
    const to = timeArg(values.to, now, "--to") ?? now + 1;
    const from = timeArg(values.from, now, "--from") ?? to - DAY_MS;
    if (values.snapshot !== undefined && values["as-of"] !== undefined) {
      throw new UsageError("give --snapshot or --as-of, not both", "query");
    }
    if (values.snapshot !== undefined && !/^\d+$/.test(values.snapshot)) {
      throw new UsageError("--snapshot must be a snapshot id (see GET /snapshots)", "query");
    }
    const importance = listOf(values.importance);
    for (const i of importance ?? []) importanceOf(i, "--importance");
    const res = await get(config, "/events", {
      from,
      to,
      source: listOf(values.source)?.join(","),
      type: listOf(values.type)?.join(","),
      importance: importance?.join(","),
      limit: positiveInt(values.limit, "--limit") ?? 100_000,
      snapshot: values.snapshot,
      asOf: timeArg(values["as-of"], now, "--as-of"),
      format: "ndjson",
    });
    const events = (await res.text())
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as QueriedEvent);
    const db = await eventsDatabase(events);
    let result: ReturnType<typeof db.query>;
    try {
      result = db.query(sql);
    } catch (err) {
      io.stderr.write(`ducktail query: ${(err as Error).message}\n`);
      return 1;
    }
    const mode = outputMode(io.stdout, io.env);
    if (values.ndjson) io.stdout.write(result.rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
    else if (mode.tty && !values.json) {
      io.stdout.write(formatTable(result.rows, result.columns));
      io.stderr.write(`${result.rows.length} rows over ${events.length} events\n`);
    } else io.stdout.write(`${JSON.stringify(result.rows)}\n`);
    return 0;
  },
};
