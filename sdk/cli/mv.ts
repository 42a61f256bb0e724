import { parseCommand, positiveInt, resolveConfig, UsageError } from "./args";
import { CONNECTION_HELP, type Command, printHelp } from "./command";
import { getJson } from "./http";
import { formatTable, outputMode, report } from "./output";

export const mv: Command = {
  name: "mv",
  summary: "read a materialized view (pageviews, errors, latency, or your own), merged over every shard",
  help: `Usage: ducktail mv <name> [--window 1h] [--step 5m] [--by <key>] [--limit <n>] [--json]

Reads GET /buffer/mv/<name>: the view's rows over the window, merged over every shard.
A table on a terminal, JSON when piped or with --json.

Options:
  --window <w>  how far back, like 5m, 1h, 24h (at most 48h; server default)
  --step <s>    over time: one row per bucket of this many minutes (like 1m, 5m, 1h), each
                with every key merged (--json adds the top keys' rows per bucket)
  --by <key>    group or order by this key (as the view defines it)
  --limit <n>   at most n rows
  --json        print JSON even on a terminal

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values, positionals } = parseCommand(
      "mv",
      argv,
      {
        window: { type: "string" },
        step: { type: "string" },
        by: { type: "string" },
        limit: { type: "string" },
        json: { type: "boolean" },
      },
      1,
    );
    if (values.help) return printHelp(io, mv.help);
    const name = positionals[0];
    if (!name) throw new UsageError("mv needs a view name, e.g. `ducktail mv pageviews`", "mv");
    if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new UsageError(`view name "${name}" may hold only A-Z a-z 0-9 _ -`, "mv");
    const config = resolveConfig(values, io.env);
    const limit = positiveInt(values.limit, "--limit");
    const query = { window: values.window, step: values.step, by: values.by, limit };
    const data = await getJson(config, `/buffer/mv/${name}`, query);
    const mode = outputMode(io.stdout, io.env);
    report(io.stdout, { ...mode, tty: mode.tty && !values.json }, data, () => {
      const rows = (data.rows as Record<string, unknown>[] | undefined) ?? [];
      const replicas = data.replicas as { asked?: number; answered?: number } | undefined;
      const from = new Date(Number(data.from)).toISOString();
      const head = `view ${name}, since ${from}, ${replicas?.answered ?? "?"}/${replicas?.asked ?? "?"} shards answered\n`;
      return head + formatTable(values.step === undefined ? rows : bucketRows(data.buckets));
    });
    return 0;
  },
};

/** One table row per time bucket: its start and its total's numbers (every key merged), blank when empty. */
export function bucketRows(buckets: unknown): Record<string, unknown>[] {
  const list = Array.isArray(buckets) ? (buckets as { start: number; total: Record<string, unknown> | null }[]) : [];
  return list.map((b) => {
    const numbers = Object.entries(b.total ?? {}).filter(([, v]) => typeof v === "number");
    return { time: new Date(b.start).toISOString(), ...Object.fromEntries(numbers) };
  });
}
