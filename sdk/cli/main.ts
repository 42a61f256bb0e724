import { VERSION } from "../../src/protocol/version";
import { UsageError } from "./args";
import type { Command, Io } from "./command";
import { deadletter } from "./deadletter";
import { RequestError } from "./http";
import { lake } from "./lake";
import { mv } from "./mv";
import { query } from "./query";
import { rollups } from "./rollups";
import { send } from "./send";
import { stats } from "./stats";
import { tail } from "./tail";

export const COMMANDS: Command[] = [tail, send, mv, stats, query, rollups, deadletter, lake];

export const TOP_HELP = `Usage: ducktail <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join("\n")}

Every command takes --url (env DUCKTAIL_URL, default http://127.0.0.1:8787), --key (env
DUCKTAIL_KEY) and --help. Output is for people on a terminal and JSON when piped.
Exit codes: 0 done, 1 failed or rejected, 2 wrong usage. ducktail --version prints the version.`;

/** Runs `ducktail <argv>`; resolves with the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const target = name === "help" ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    io.stdout.write(`${target ? target.help : TOP_HELP}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") {
    io.stdout.write(`ducktail ${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (!command) {
      const what = name.startsWith("-") ? `unknown option "${name}"` : `unknown command "${name}"`;
      throw new UsageError(`${what}; commands: ${COMMANDS.map((c) => c.name).join(", ")}`);
    }
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      const hint = err.command ? `ducktail ${err.command} --help` : "ducktail --help";
      io.stderr.write(`ducktail: ${err.message}\nSee \`${hint}\`.\n`);
      return 2;
    }
    if (err instanceof RequestError) {
      io.stderr.write(`ducktail: ${err.message}\n`);
      return 1;
    }
    io.stderr.write(`ducktail: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
