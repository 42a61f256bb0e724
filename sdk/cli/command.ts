import type { Readable, Writable } from "node:stream";

/** What a command runs with: the process's streams and environment (swappable in tests). */
export interface Io {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  env: Record<string, string | undefined>;
}

/** One `ducktail <name>` command. */
export interface Command {
  name: string;
  /** One line for the top-level help. */
  summary: string;
  /** The whole `--help` text. */
  help: string;
  /** Resolves with the exit code. Throws `UsageError` (exit 2) or `RequestError` (exit 1). */
  run(argv: string[], io: Io): Promise<number>;
}

/** The lines every command's help ends with. */
export const CONNECTION_HELP = `Connection:
  --url <url>   the Worker's URL: http(s):// or ws(s)://, with its path prefix if it has one,
                /ws optional (env DUCKTAIL_URL; default http://127.0.0.1:8787)
  --key <key>   a DuckTail key (env DUCKTAIL_KEY; none for an open local Worker)
  -h, --help    this help`;

/** Prints a command's help to stdout; exit code 0. */
export function printHelp(io: Io, help: string): number {
  io.stdout.write(`${help}\n`);
  return 0;
}
