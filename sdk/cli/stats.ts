import { parseCommand, resolveConfig } from "./args";
import { CONNECTION_HELP, type Command, printHelp } from "./command";
import { getJson } from "./http";
import { formatTable, keyValueRows, outputMode, report } from "./output";

/** The counters a person looks at first; `--json` has every one. */
const SHARD_COLUMNS = [
  "n",
  "name",
  "state",
  "health",
  "connections",
  "received",
  "stored",
  "rejected",
  "dropped",
  "bufferedRows",
  "committedRows",
  "flushed",
  "files",
  "flushFailures",
  "subscriptions",
];

/** One table row per shard: its registry entry and its main counters. */
export function shardRows(data: Record<string, unknown>): Record<string, unknown>[] {
  const shards = (data.shards as Record<string, unknown>[] | undefined) ?? [];
  return shards.map(({ stats, ...shard }) => {
    const all: Record<string, unknown> = { ...(stats as Record<string, unknown> | null), ...shard };
    return Object.fromEntries(SHARD_COLUMNS.map((c) => [c, all[c]]));
  });
}

export const stats: Command = {
  name: "stats",
  summary: "the tenant's shards and their counters (GET /buffer/stats), or totals with --aggregate",
  help: `Usage: ducktail stats [--aggregate] [--json]

Reads GET /buffer/stats: the tenant's tier and shards with each shard's counters, or with
--aggregate GET /buffer/stats/aggregate: the counters summed over every shard.
A table on a terminal, JSON when piped or with --json.

Options:
  --aggregate   totals over every shard
  --json        print JSON even on a terminal

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values } = parseCommand("stats", argv, { aggregate: { type: "boolean" }, json: { type: "boolean" } }, 0);
    if (values.help) return printHelp(io, stats.help);
    const config = resolveConfig(values, io.env);
    const data = await getJson(config, values.aggregate ? "/buffer/stats/aggregate" : "/buffer/stats");
    const mode = outputMode(io.stdout, io.env);
    report(io.stdout, { ...mode, tty: mode.tty && !values.json }, data, () => {
      if (values.aggregate) return formatTable(keyValueRows(data));
      const { shards: _, ...summary } = data;
      return `${formatTable(keyValueRows(summary))}\n${formatTable(shardRows(data))}`;
    });
    return 0;
  },
};
