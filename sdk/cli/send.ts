import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { STORAGE_MODES, type StorageMode } from "../../src/protocol/frames";
import { DuckTailClient } from "../client";
import type { DuckTailClientError } from "../errors";
import { parseCommand, positiveInt, resolveConfig, UsageError } from "./args";
import { CONNECTION_HELP, type Command, type Io, printHelp } from "./command";
import { get } from "./http";
import { isBlank, parseEventLine, refusalBeforeSending } from "./lines";
import { formatTable, outputMode, paint } from "./output";

/** What `send` did, line by line where something went wrong. */
export interface SendSummary {
  lines: number;
  sent: number;
  accepted: number;
  /** Refused by the server (or the client), with its code and reason. */
  rejected: { line: number; code: string; message: string }[];
  /** Not sent: not JSON, or not an object. */
  invalid: { line: number; message: string }[];
  storageMode: StorageMode;
}

// Waiting for acks past this many in flight keeps memory bounded and under the client's maxQueue.
const MAX_IN_FLIGHT = 5_000;

/** The summary for a person. */
export function summaryText(s: SendSummary, color: boolean): string {
  const ok = paint(`${s.accepted} accepted`, "green", color);
  const bad = s.rejected.length + s.invalid.length;
  const head = `${ok}, ${paint(`${s.rejected.length} rejected`, s.rejected.length ? "red" : "gray", color)}, ${paint(`${s.invalid.length} invalid lines skipped`, s.invalid.length ? "red" : "gray", color)} (${s.lines} lines, storage mode ${s.storageMode})\n`;
  if (bad === 0) return head;
  const rows = [
    ...s.invalid.map((i) => ({ line: i.line, problem: "invalid", reason: i.message })),
    ...s.rejected.map((r) => ({ line: r.line, problem: r.code, reason: r.message })),
  ].sort((a, b) => a.line - b.line);
  return head + formatTable(rows);
}

/** A one-line progress bar, redrawn in place on a terminal. */
function progress(io: Io, color: boolean) {
  let last = 0;
  return (s: SendSummary, final = false) => {
    const now = Date.now();
    if (!final && now - last < 100) return;
    last = now;
    const done = s.accepted + s.rejected.length;
    const width = 30;
    const filled = s.sent === 0 ? width : Math.round((done / s.sent) * width);
    const bar = paint("█".repeat(filled), "green", color) + paint("░".repeat(width - filled), "gray", color);
    io.stderr.write(
      `\r${bar} ${done}/${s.sent} acked, ${s.rejected.length} rejected, line ${s.lines}${final ? "\n" : ""}`,
    );
  };
}

export const send: Command = {
  name: "send",
  summary: "send NDJSON events from a file or stdin, batched, and report what the server refused",
  help: `Usage: ducktail send [<file.ndjson>] [--storage-mode <mode>] [--batch-size <n>] [--json]

Sends one event per line ({"type": "signup", "data": {...}, "source": ..., "importance": ...})
from the file, or from stdin without one (or with "-"), in batches over one socket.
Bad JSON lines are reported with their line number and skipped; the others are still sent.
At the end, a summary: accepted, and each rejection with its line and the server's reason
(text on a terminal, JSON when piped or with --json). A progress bar on a terminal (stderr).
Exit code 1 if any line was rejected or invalid.

Options:
  --storage-mode <mode>   fire-and-forget | buffered | confirmed | durable: when the server
                          acks (default buffered)
  --batch-size <n>        events per batch (default 100, at most 1000)
  --source <name>         source of events that name none
  --json                  the summary as JSON even on a terminal

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values, positionals } = parseCommand(
      "send",
      argv,
      {
        "storage-mode": { type: "string" },
        "batch-size": { type: "string" },
        source: { type: "string" },
        json: { type: "boolean" },
      },
      1,
    );
    if (values.help) return printHelp(io, send.help);
    const config = resolveConfig(values, io.env);
    const storageMode = (values["storage-mode"] ?? "buffered") as StorageMode;
    if (!STORAGE_MODES.includes(storageMode)) {
      throw new UsageError(`--storage-mode must be one of ${STORAGE_MODES.join(", ")}`, "send");
    }
    const batchSize = positiveInt(values["batch-size"], "--batch-size") ?? 100;
    if (batchSize > 1000) throw new UsageError("--batch-size must be at most 1000", "send");
    const file = positionals[0];
    if (file === undefined && io.stdin.isTTY) {
      throw new UsageError("send reads NDJSON from a file argument or from stdin (pipe something in)", "send");
    }
    const input: Readable = file === undefined || file === "-" ? io.stdin : createReadStream(file);
    const opened = new Promise<void>((resolve, reject) => {
      if (input === io.stdin) resolve();
      input.once("open", () => resolve());
      input.once("error", reject);
    });
    try {
      await opened;
    } catch (err) {
      io.stderr.write(`ducktail send: cannot read ${file}: ${(err as Error).message}\n`);
      return 1;
    }

    await get(config, "/health"); // fails fast when the Worker is not there; the client would retry
    const summary: SendSummary = { lines: 0, sent: 0, accepted: 0, rejected: [], invalid: [], storageMode };
    const client = new DuckTailClient({
      url: config.url,
      key: config.key,
      storageMode,
      maxBatchSize: batchSize,
      batchInterval: 20,
      source: values.source,
      maxQueue: MAX_IN_FLIGHT * 2,
    });
    const bar = io.stderr.isTTY ? progress(io, outputMode(io.stderr, io.env).color) : null;
    const pending = new Set<Promise<void>>();
    try {
      await sendLines(input, client, summary, pending, bar);
    } catch (err) {
      await client.close(0); // an open socket would keep the process from exiting
      throw err;
    }
    await client.flush(Number.POSITIVE_INFINITY);
    await Promise.all(pending);
    await client.close();
    bar?.(summary, true);
    summary.rejected.sort((a, b) => a.line - b.line);
    const mode = outputMode(io.stdout, io.env);
    io.stdout.write(mode.tty && !values.json ? summaryText(summary, mode.color) : `${JSON.stringify(summary)}\n`);
    return summary.rejected.length + summary.invalid.length > 0 ? 1 : 0;
  },
};

/** Tracks each line's event, at most MAX_IN_FLIGHT waiting for acks at once, counting outcomes in `summary`. */
async function sendLines(
  input: Readable,
  client: DuckTailClient,
  summary: SendSummary,
  pending: Set<Promise<void>>,
  bar: ((s: SendSummary) => void) | null,
): Promise<void> {
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    const line = ++summary.lines;
    if (isBlank(text)) continue;
    const parsed = parseEventLine(text);
    if (!parsed.ok) {
      summary.invalid.push({ line, message: parsed.message });
      continue;
    }
    summary.sent++;
    const refused = refusalBeforeSending(parsed);
    if (refused) {
      summary.rejected.push({ line, ...refused });
      continue;
    }
    const settled = client.track(parsed.type, parsed.data, parsed.options).then(
      () => {
        summary.accepted++;
      },
      (err: DuckTailClientError) => {
        summary.rejected.push({ line, code: err.code, message: err.message });
      },
    );
    const tracked = settled.finally(() => pending.delete(tracked));
    pending.add(tracked);
    bar?.(summary);
    if (pending.size >= MAX_IN_FLIGHT) await client.flush(Number.POSITIVE_INFINITY);
  }
}
