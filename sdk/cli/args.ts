import { type ParseArgsConfig, parseArgs } from "node:util";
import { IMPORTANCE, type Importance } from "../../src/protocol/events";
import type { Predicate, PredicateOp, TailFilter } from "../../src/protocol/tail";
import { type Endpoints, endpoints } from "../url";

/** A mistake in how the command was called: printed with a hint to `--help`, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command it concerns, for the `--help` hint. */
    readonly command?: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

/** Where the Worker is and how to authenticate. */
export interface Config {
  /**
   * The Worker's base URL, `http(s)://host[/prefix]` without a trailing slash, normalised from
   * any form the client takes (`ws(s)://`, a trailing `/ws`). Default http://127.0.0.1:8787 (`npm run dev`).
   */
  url: string;
  key: string | undefined;
}

export const DEFAULT_URL = "http://127.0.0.1:8787";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Flags every command takes. */
export const COMMON_OPTIONS = {
  url: { type: "string" },
  key: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

/**
 * `node:util` parseArgs in strict mode for one command, with its errors (unknown flag, missing
 * value) turned into a `UsageError`.
 */
export function parseCommand<O extends Options>(command: string, argv: string[], options: O, maxPositionals: number) {
  const config = {
    args: argv,
    options: { ...COMMON_OPTIONS, ...options },
    allowPositionals: true,
    strict: true,
  } as const;
  const parsed = (() => {
    try {
      return parseArgs(config);
    } catch (err) {
      throw new UsageError((err as Error).message.split("\n")[0] ?? String(err), command);
    }
  })();
  if (!(parsed.values as { help?: boolean }).help && parsed.positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument "${parsed.positionals[maxPositionals]}"`, command);
  }
  return parsed;
}

/**
 * URL and key from the flags, else DUCKTAIL_URL / DUCKTAIL_KEY, else the local dev server without
 * a key. The URL takes the client's forms (sdk/url.ts); the key defaults to its `?key=` last.
 */
export function resolveConfig(
  values: { url?: string | undefined; key?: string | undefined },
  env: Record<string, string | undefined>,
): Config {
  const label = values.url !== undefined ? "--url" : env.DUCKTAIL_URL ? "DUCKTAIL_URL" : "the default URL";
  let ep: Endpoints;
  try {
    ep = endpoints(values.url ?? (env.DUCKTAIL_URL || DEFAULT_URL), label);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return { url: ep.base, key: values.key ?? (env.DUCKTAIL_KEY || undefined) ?? ep.key };
}

/** Repeated flags and comma lists both give lists: `--type a,b --type c` → a, b, c. */
export function listOf(values: string[] | undefined): string[] | undefined {
  const list = (values ?? []).flatMap((v) => v.split(",")).map((v) => v.trim());
  const kept = list.filter((v) => v !== "");
  return kept.length ? kept : undefined;
}

export function importanceOf(raw: string | undefined, flag: string): Importance | undefined {
  if (raw === undefined) return undefined;
  if (!IMPORTANCE.includes(raw as Importance)) throw new UsageError(`${flag} must be one of ${IMPORTANCE.join(", ")}`);
  return raw as Importance;
}

// Longest operators first, so ">=" is not read as ">" followed by "=…".
const OPERATORS: [string, PredicateOp][] = [
  [">=", "gte"],
  ["<=", "lte"],
  ["!=", "ne"],
  ["^=", "prefix"],
  ["==", "eq"],
  [">", "gt"],
  ["<", "lt"],
  ["=", "eq"],
];

/**
 * One `--where` predicate: `<path><op><value>` with op among = == != ^= (prefix) > >= < <=, e.g.
 * `data.status>=500`, `userId=u1`, `data.path^=/api`. The value is JSON when it parses as JSON
 * (numbers, true, false, null, "quoted strings"), else the text as it is.
 */
export function parseWhere(raw: string): Predicate {
  let best: { at: number; token: string; op: PredicateOp } | null = null;
  for (const [token, op] of OPERATORS) {
    const at = raw.indexOf(token);
    if (at > 0 && (best === null || at < best.at || (at === best.at && token.length > best.token.length))) {
      best = { at, token, op };
    }
  }
  if (!best) throw new UsageError(`--where "${raw}" must be <field><op><value>, op one of = != ^= > >= < <=`);
  const path = raw.slice(0, best.at).trim();
  const text = raw.slice(best.at + best.token.length).trim();
  let value: Predicate["value"] = text;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || ["string", "number", "boolean"].includes(typeof parsed))
      value = parsed as Predicate["value"];
  } catch {
    // not JSON: the text itself
  }
  if (["gt", "gte", "lt", "lte"].includes(best.op) && typeof value !== "number") {
    throw new UsageError(`--where "${raw}": ${best.token} needs a number`);
  }
  return { path, op: best.op, value };
}

/** The live-tail filter the flags describe; the server checks it again and names any problem. */
export function tailFilter(values: {
  source?: string[] | undefined;
  type?: string[] | undefined;
  "min-importance"?: string | undefined;
  where?: string[] | undefined;
}): TailFilter {
  const filter: TailFilter = {};
  const source = listOf(values.source);
  const type = listOf(values.type);
  const minImportance = importanceOf(values["min-importance"], "--min-importance");
  if (source) filter.source = source;
  if (type) filter.type = type;
  if (minImportance) filter.minImportance = minImportance;
  if (values.where?.length) filter.where = values.where.map(parseWhere);
  return filter;
}

/** A number in (0, 1]. */
export function sampleOf(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!(n > 0 && n <= 1)) throw new UsageError(`--sample must be a number in (0, 1], got "${raw}"`);
  return n;
}

/** A positive integer flag. */
export function positiveInt(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got "${raw}"`);
  return n;
}
