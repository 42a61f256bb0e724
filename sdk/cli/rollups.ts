import type { RollupAnswer, RollupRow } from "../../src/protocol/lake";
import { parseCommand, resolveConfig, UsageError } from "./args";
import { CONNECTION_HELP, type Command, printHelp } from "./command";
import { getJson } from "./http";
import { formatTable, outputMode, report } from "./output";

const GRAINS = ["hour", "day", "month"];

/** The table a person reads: the groups by period, then the pages (`--pages`: only them). */
export function rollupTableText(answer: RollupAnswer, pages: boolean): string {
  const groups = answer.rows.filter((r) => r.path === null);
  const paths = answer.rows.filter((r) => r.path !== null);
  const period = (r: RollupRow) =>
    answer.grain === "hour" ? r.period.slice(0, 13) : r.period.slice(0, answer.grain === "day" ? 10 : 7);
  const parts: string[] = [];
  if (!pages && groups.length > 0) {
    parts.push(
      formatTable(
        groups.map((r) => ({
          period: period(r),
          source: r.source,
          type: r.type,
          importance: r.importance,
          events: r.events,
          uniques: r.uniques,
        })),
      ),
    );
  }
  if (paths.length > 0) {
    parts.push(
      formatTable(paths.map((r) => ({ period: period(r), path: r.path, pageviews: r.events, uniques: r.uniques }))),
    );
  }
  return parts.length > 0 ? parts.join("\n") : `no ${answer.grain} rollups from ${answer.from} to ${answer.to}`;
}

export const rollups: Command = {
  name: "rollups",
  summary: "events and uniques per hour, day or month from the lake's rollup tables (GET /rollups)",
  help: `Usage: ducktail rollups --grain <hour|day|month> [--from <time>] [--to <time>] [--pages] [--json]

Reads GET /rollups: the lake's rollup tables (written as each hour is compacted, days and months
rolled up by the cron): events per source, type and importance, and page views per path, each
with its distinct visitors (HyperLogLog sketches merged, so a day's uniques are not the sum of its
hours'). A table on a terminal, JSON when piped or with --json.

Options:
  --grain <g>    hour, day or month (required)
  --from <time>  ISO-8601 or epoch ms; its period is included (default: a day, 31 days or a year
                 before --to)
  --to <time>    periods starting before it (default: now)
  --pages        only the page rows
  --json         print JSON even on a terminal

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values } = parseCommand(
      "rollups",
      argv,
      {
        grain: { type: "string" },
        from: { type: "string" },
        to: { type: "string" },
        pages: { type: "boolean" },
        json: { type: "boolean" },
      },
      0,
    );
    if (values.help) return printHelp(io, rollups.help);
    if (values.grain === undefined || !GRAINS.includes(values.grain)) {
      throw new UsageError(`--grain must be one of ${GRAINS.join(", ")}`, "rollups");
    }
    const config = resolveConfig(values, io.env);
    const data = (await getJson(config, "/rollups", {
      grain: values.grain,
      from: values.from,
      to: values.to,
    })) as unknown as RollupAnswer;
    const mode = outputMode(io.stdout, io.env);
    report(io.stdout, { ...mode, tty: mode.tty && !values.json }, data, () =>
      rollupTableText(data, values.pages === true),
    );
    return 0;
  },
};
