import { createRequire } from "node:module";
import type { LakeFileList } from "../../src/protocol/lake";
import type { QueriedEvent } from "../lake/buffered";
import { type LakeSource, type LoadStats, loadEvents, type ParquetReader } from "../lake/reader";
import type { QueryResult } from "../lake/results";
import { type Config, importanceOf, listOf, parseCommand, positiveInt, resolveConfig, UsageError } from "./args";
import { CONNECTION_HELP, type Command, printHelp } from "./command";
import { nodeDuckDB } from "./duckdb";
import { get } from "./http";
import { formatTable, outputMode } from "./output";

const DAY_MS = 86_400_000;
const MAX_LIMIT = 1_000_000;
/** Most buffered rows one read asks for (GET /events' NDJSON limit); the buffers hold far fewer. */
const MAX_BUFFERED = 1_000_000;

/** The deployment as the lake reader reaches it, through the CLI's requests (errors as `ducktail: …`). */
function lakeSource(config: Config): LakeSource {
  return {
    base: config.url,
    key: config.key,
    async files(range) {
      const res = await get(config, "/lake/files", {
        from: range.from,
        to: range.to,
        snapshot: range.snapshot,
        asOf: range.asOf,
      });
      return (await res.json()) as LakeFileList;
    },
    async buffered(range, filter) {
      const res = await get(config, "/events", {
        from: range.from,
        to: range.to,
        source: filter.source?.join(","),
        type: filter.type?.join(","),
        importance: filter.importance?.join(","),
        buffered: "only",
        format: "ndjson",
        limit: MAX_BUFFERED,
      });
      return (await res.text())
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as QueriedEvent);
    },
  };
}

/** `--stats`: what the query read of the lake. */
function statsLine(s: LoadStats): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  return (
    `read ${kb(s.bytesRead)} of ${kb(s.lakeBytes)} in ${s.files} files (${s.requests} requests, ` +
    `${s.rowGroupsRead}/${s.rowGroups} row groups, columns ${s.columns.join(", ")}); ` +
    `${s.lakeRows} rows from the lake, ${s.bufferedRows} buffered; snapshot ${s.snapshot}`
  );
}

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
                       [--json | --ndjson] [--stats]

Loads the events of the range into an in-memory DuckDB table named "events" and runs the SQL on
it. It reads the lake's Parquet objects through GET /lake/object with HTTP Range requests: of
each file of the range its footer, then only the columns the SQL names (a conservative scan of
its words; SELECT * reads them all), row group by row group; then what the shards still buffer
(GET /events?buffered=only), or nothing more for an earlier snapshot. Memory grows with the rows
and columns the query needs, not with the objects.
Columns: id, tenant, ts, received_at (TIMESTAMP), source, type, importance, user_id,
anonymous_id, session_id, data (JSON text), replica, seq, the context columns (country, region,
city, timezone, browser, browser_version, os, os_version, device_type, ip) and is_bot.
A table on a terminal; JSON (an array of rows) when piped or with --json; --ndjson for one row per line.
--stats prints to stderr the bytes read against the objects' total size.

Which events are loaded (time of receipt):
  --from <time>         epoch ms, ISO-8601, or back from now like 30m, 6h, 7d (default 24h)
  --to <time>           the same (default now)
  --source <s>          exact sources, comma separated
  --type <t>            exact types, comma separated
  --importance <level>  exact importances, comma separated
  --limit <n>           only the newest n events (at most 1000000; default: all of the range)
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
        stats: { type: "boolean" },
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
    const snapshot = values.snapshot === undefined ? undefined : Number(values.snapshot);
    const range = { from, to, snapshot, asOf: timeArg(values["as-of"], now, "--as-of") };
    const filter = { source: listOf(values.source), type: listOf(values.type), importance };
    const limit = positiveInt(values.limit, "--limit");
    if (limit !== undefined && limit > MAX_LIMIT) throw new UsageError(`--limit must be at most ${MAX_LIMIT}`, "query");
    const duck = await nodeDuckDB();
    const stats = await loadEvents({
      sql,
      range,
      filter,
      limit,
      source: lakeSource(config),
      parquet: createRequire(import.meta.url)("parquet-wasm/node") as ParquetReader,
      db: duck.db,
    });
    if (values.stats) io.stderr.write(`${statsLine(stats)}\n`);
    let result: QueryResult;
    try {
      result = await duck.query(sql);
    } catch (err) {
      io.stderr.write(`ducktail query: ${(err as Error).message}\n`);
      return 1;
    }
    const mode = outputMode(io.stdout, io.env);
    if (values.ndjson) io.stdout.write(result.rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
    else if (mode.tty && !values.json) {
      io.stdout.write(formatTable(result.rows, result.columns));
      io.stderr.write(`${result.rows.length} rows over ${stats.rows} events\n`);
    } else io.stdout.write(`${JSON.stringify(result.rows)}\n`);
    return 0;
  },
};
