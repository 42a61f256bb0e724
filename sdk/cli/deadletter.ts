import { parseCommand, resolveConfig, UsageError } from "./args";
import { CONNECTION_HELP, type Command, printHelp } from "./command";
import { getJson, postJson } from "./http";
import { formatTable, outputMode, report } from "./output";

const COLUMNS = ["key", "sink", "replica", "seq", "rows", "attempts", "error"];

export const deadletter: Command = {
  name: "deadletter",
  summary: "list dead-lettered batches, or replay them to their sinks (admin key)",
  help: `Usage: ducktail deadletter list [--sink <name>] [--json]
       ducktail deadletter replay [--sink <name>] [<key>...]

A batch a sink refused for good (after SINK_MAX_ATTEMPTS tries) is kept in R2 under deadletter/.
list     GET /deadletter: each one with its sink, replica, flush seq, rows, tries and last error.
replay   POST /deadletter/replay: sends the given ones (default: all, or all of --sink) to their
         sink again, under their original flush seq (the sink's idempotency key is the same), and
         removes each one its sink took. Prints what was replayed and what failed; exit code 1 if
         any failed.

Options:
  --sink <name>  only this sink's dead letters
  --json         print JSON even on a terminal

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values, positionals } = parseCommand(
      "deadletter",
      argv,
      { sink: { type: "string" }, json: { type: "boolean" } },
      Number.POSITIVE_INFINITY,
    );
    if (values.help) return printHelp(io, deadletter.help);
    const [action, ...keys] = positionals;
    if (action !== "list" && action !== "replay") {
      throw new UsageError(`say list or replay${action ? `, not "${action}"` : ""}`, "deadletter");
    }
    if (action === "list" && keys.length > 0) throw new UsageError(`unexpected argument "${keys[0]}"`, "deadletter");
    const config = resolveConfig(values, io.env);
    const mode = outputMode(io.stdout, io.env);
    const out = { ...mode, tty: mode.tty && !values.json };
    if (action === "list") {
      const data = await getJson(config, "/deadletter", { sink: values.sink });
      const letters = (data.deadLetters as Record<string, unknown>[] | undefined) ?? [];
      report(io.stdout, out, letters, () => (letters.length === 0 ? "no dead letters" : formatTable(letters, COLUMNS)));
      return 0;
    }
    const body = keys.length > 0 ? { keys } : values.sink ? { sink: values.sink } : {};
    const result = await postJson(config, "/deadletter/replay", body);
    const replayed = (result.replayed as Record<string, unknown>[] | undefined) ?? [];
    const failed = (result.failed as Record<string, unknown>[] | undefined) ?? [];
    report(io.stdout, out, result, () => {
      const lines = [`replayed ${replayed.length}, failed ${failed.length}`];
      if (replayed.length > 0) lines.push(formatTable(replayed, ["key", "sink", "rows", "files"]));
      if (failed.length > 0) lines.push(formatTable(failed, ["key", "sink", "error"]));
      return lines.join("\n");
    });
    return failed.length > 0 ? 1 : 0;
  },
};
