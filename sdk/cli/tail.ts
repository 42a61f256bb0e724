import { DuckTailClient } from "../client";
import type { DuckTailClientError } from "../errors";
import { parseCommand, resolveConfig, sampleOf, tailFilter } from "./args";
import { CONNECTION_HELP, type Command, printHelp } from "./command";
import { get } from "./http";
import { eventLine, outputMode, paint, writeOrWait } from "./output";

export const tail: Command = {
  name: "tail",
  summary: "follow the tenant's events live, filtered on the server",
  help: `Usage: ducktail tail [--source <glob>] [--type <glob>] [--min-importance <level>]
                     [--where <field><op><value>]... [--sample <share>] [--json]

Follows the tenant's events live (needs a read key). One coloured line per event on a
terminal, NDJSON (one event per line) when piped or with --json. Ctrl-C stops (exit 0).
Reconnects on its own; events missed meanwhile are reported on stderr.

Filters (all given must match; repeat a flag or use commas for "any of"):
  --source <glob>            e.g. web-*, api
  --type <glob>              e.g. signup*, error
  --min-importance <level>   low < normal < high < critical
  --where <predicate>        <field><op><value>; field is id, ts, receivedAt, source, type,
                             importance, userId, anonymousId, sessionId or data.<path>;
                             op is = != ^= (prefix) > >= < <=; the value is JSON if it parses
                             (500, true, null, "quoted") else text. e.g. --where 'data.status>=500'
  --sample <share>           deliver this share of the matches, in (0, 1]
  --json                     NDJSON even on a terminal
  --quiet                    no status line on stderr

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values } = parseCommand(
      "tail",
      argv,
      {
        source: { type: "string", multiple: true },
        type: { type: "string", multiple: true },
        "min-importance": { type: "string" },
        where: { type: "string", multiple: true },
        sample: { type: "string" },
        json: { type: "boolean" },
        quiet: { type: "boolean", short: "q" },
      },
      0,
    );
    if (values.help) return printHelp(io, tail.help);
    const config = resolveConfig(values, io.env);
    const filter = tailFilter(values);
    const sample = sampleOf(values.sample);
    const mode = outputMode(io.stdout, io.env);
    const pretty = mode.tty && !values.json;
    // Fails fast with the server's reason (unreachable, 401, 403), where a socket would retry.
    await get(config, "/shards");
    const errColour = outputMode(io.stderr, io.env).color;
    const warn = (text: string) => io.stderr.write(`${paint("ducktail tail:", "yellow", errColour)} ${text}\n`);

    let fatal: DuckTailClientError | null = null;
    const client = new DuckTailClient({
      url: config.url,
      key: config.key,
      transport: "websocket",
      onError: (err) => {
        if (err.code === "tail_dropped")
          warn(`the server dropped ${err.count ?? "some"} events: this tail fell behind`);
        else if (err.code === "tail_gap") warn("reconnected; events in between were missed");
        else if (err.code === "unauthorized" || err.code === "forbidden") fatal = err;
        else warn(`${err.code}: ${err.message}`);
      },
    });
    const subscription = client.subscribe(filter, { sample });

    // Ctrl-C, or the reader of a pipe going away, ends the tail: closing the client ends the
    // subscription, so the loop below returns, and closes the socket with 1000.
    let stopping = false;
    const stop = () => {
      stopping = true;
      void client.close(0);
    };
    const onPipeError = (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE") warn(`stdout: ${err.message}`);
      stop();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    io.stdout.on("error", onPipeError);
    try {
      await subscription.ready;
      if (!values.quiet)
        warn(`subscribed to ${JSON.stringify(filter)}${sample ? ` sample ${sample}` : ""}; Ctrl-C to stop`);
      for await (const event of subscription) {
        const line = pretty ? eventLine(event, mode.color) : JSON.stringify(event);
        // Not pulling the next event while stdout is full leaves its tail frame unacked, which
        // holds the server at its window instead of buffering here.
        await writeOrWait(io.stdout, `${line}\n`);
        if (stopping) break;
      }
    } catch (err) {
      if (!stopping) {
        io.stderr.write(`ducktail tail: ${(err as Error).message}\n`);
        await client.close(0);
        return 1;
      }
    } finally {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    }
    await client.close(0);
    if (fatal && !stopping) {
      io.stderr.write(`ducktail tail: ${(fatal as DuckTailClientError).message}\n`);
      return 1;
    }
    return 0;
  },
};
