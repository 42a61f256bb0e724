/**
 * `ducktail/console`: importing it sends what a program writes with `console.log/info/debug/warn/error`
 * to DuckTail as events, and still prints it as before.
 *
 * ```ts
 * import "ducktail/console"; // configured from DUCKTAIL_ENDPOINT, DUCKTAIL_API_KEY, ...
 * console.error("payment failed", err); // an event: type "console", importance "critical"
 * ```
 *
 * Or in code, under the original package's name: `wrapConsole({ endpoint, apiKey })`.
 *
 * Levels map to importance: error → critical, warn → high, log/info → normal, debug → low.
 * Events go over HTTP batches by default and never hold a Node process open by themselves: when
 * a script ends, what it logged is sent at once and the process exits once the server answered,
 * or, if the server cannot be reached, after one last attempt with a warning of what was lost.
 */
import { DuckTailClient } from "./client";
import type { DuckTailClientError } from "./errors";
import type { ClientOptions, FlushReport, Importance, StorageMode, Transport } from "./types";
import { endpoints } from "./url";

export const CONSOLE_LEVELS = ["log", "info", "debug", "warn", "error"] as const;
export type ConsoleLevel = (typeof CONSOLE_LEVELS)[number];

const IMPORTANCE: Record<ConsoleLevel, Importance> = {
  error: "critical",
  warn: "high",
  log: "normal",
  info: "normal",
  debug: "low",
};

/** Longest message kept in an event; longer ones are cut and marked. */
const MAX_MESSAGE_CHARS = 16_000;

export interface ConsoleOptions {
  /**
   * The DuckTail Worker's URL (any form `DuckTailClient` takes). Env DUCKTAIL_ENDPOINT. Without
   * one nothing is captured. An invalid one throws a TypeError when given here, and only warns
   * (once, capturing nothing) when it comes from the environment.
   */
  endpoint?: string;
  /** A write key. Env DUCKTAIL_API_KEY. */
  apiKey?: string;
  /** `source` of the events. Env DUCKTAIL_SOURCE. Default "console". */
  source?: string;
  /** Capture at all. Env DUCKTAIL_ENABLED ("false" or "0" turns it off). Default true. */
  enabled?: boolean;
  /** Most ms a line waits before its batch is sent. Env DUCKTAIL_BATCH_INTERVAL. Default 1000. */
  batchInterval?: number;
  /** Lines per batch. Env DUCKTAIL_MAX_BATCH_SIZE. Default 100. */
  maxBatchSize?: number;
  /** Levels captured. Default all of log, info, debug, warn, error. */
  levels?: readonly ConsoleLevel[];
  /** Default "buffered". */
  storageMode?: StorageMode;
  /** Default "http" (see the module comment); "auto" prefers a WebSocket. */
  transport?: Transport;
}

type Writer = (...args: unknown[]) => void;

const originals = new Map<ConsoleLevel, Writer>();
let client: DuckTailClient | null = null;
let settings: ConsoleOptions = {};
/** The invalid DUCKTAIL_ENDPOINT last warned about, so a program hears of it once. */
let badEnvEndpoint: string | undefined;
/** True while a capture is being queued, so nothing the client prints is captured again. */
let capturing = false;

function env(): Record<string, string | undefined> {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
}

function envNumber(value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Options from the environment (DUCKTAIL_*), for what `configure()` was not told. */
export function optionsFromEnv(vars: Record<string, string | undefined> = env()): ConsoleOptions {
  const enabled = vars.DUCKTAIL_ENABLED;
  return {
    endpoint: vars.DUCKTAIL_ENDPOINT || undefined,
    apiKey: vars.DUCKTAIL_API_KEY || undefined,
    source: vars.DUCKTAIL_SOURCE || undefined,
    enabled: enabled === undefined ? undefined : !/^(false|0|no|off)$/i.test(enabled.trim()),
    batchInterval: envNumber(vars.DUCKTAIL_BATCH_INTERVAL),
    maxBatchSize: envNumber(vars.DUCKTAIL_MAX_BATCH_SIZE),
  };
}

function inspect(value: unknown, seen: WeakSet<object>): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.stack ?? `${value.name}: ${value.message}`;
  if (typeof value !== "object" || value === null) return String(value);
  try {
    return JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v === "bigint") return `${v}n`;
      if (v instanceof Error) return { name: v.name, message: v.message, stack: v.stack };
      if (typeof v === "object" && v !== null) {
        if (seen.has(v)) return "[Circular]";
        seen.add(v);
      }
      return v;
    });
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** The line `console.log(...args)` prints, close to Node's `util.format` (%s %d %i %f %j %o %O %c %%). */
export function formatArgs(args: readonly unknown[]): string {
  const seen = new WeakSet<object>();
  let rest = args;
  let head = "";
  const first = args[0];
  if (typeof first === "string" && first.includes("%")) {
    let i = 1;
    head = first.replace(/%([sdifjoOc%])/g, (match, spec: string) => {
      if (spec === "%") return "%";
      if (i >= args.length) return match;
      const arg = args[i++];
      switch (spec) {
        case "d":
        case "i":
          return String(spec === "i" ? Number.parseInt(String(arg), 10) : Number(arg));
        case "f":
          return String(Number.parseFloat(String(arg)));
        case "c":
          return "";
        case "s":
          return typeof arg === "string" ? arg : inspect(arg, seen);
        default:
          return inspect(arg, seen);
      }
    });
    rest = args.slice(i);
  } else if (args.length > 0) {
    head = inspect(first, seen);
    rest = args.slice(1);
  }
  const line = [head, ...rest.map((a) => inspect(a, new WeakSet()))].join(" ");
  return line.length > MAX_MESSAGE_CHARS ? `${line.slice(0, MAX_MESSAGE_CHARS)}… [${line.length} chars]` : line;
}

function capture(level: ConsoleLevel, args: unknown[]): void {
  if (!client || capturing) return;
  capturing = true;
  try {
    const error = args.find((a): a is Error => a instanceof Error);
    const data: Record<string, unknown> = { level, message: formatArgs(args) };
    if (error) data.error = { name: error.name, message: error.message, stack: error.stack };
    client.track("console", data, { importance: IMPORTANCE[level] }).catch(() => {}); // onError warned
  } finally {
    capturing = false;
  }
}

/** Warns on the original console, so the warning is not captured itself. */
function warn(message: string): void {
  const write = originals.get("warn") ?? console.warn;
  write.call(console, `ducktail/console: ${message}`);
}

function wrap(levels: readonly ConsoleLevel[]): void {
  for (const level of levels) {
    if (originals.has(level)) continue;
    const original = console[level] as Writer;
    originals.set(level, original);
    console[level] = (...args: unknown[]) => {
      original.apply(console, args);
      capture(level, args);
    };
  }
}

/** Puts the original console methods back; events already queued are still sent (see `flush`). */
export function unwrapConsole(): void {
  for (const [level, original] of originals) console[level] = original;
  originals.clear();
}

/**
 * Sends what is queued; resolves once every captured line was acked or refused, or after
 * `timeoutMs` (default 10 s) with lines still unsent, which are retried later. Resolves with
 * `{ acked, failed, pending }` of the lines held when it was called (all 0 without capture).
 */
export async function flush(timeoutMs = 10_000): Promise<FlushReport> {
  return (await client?.flush(timeoutMs)) ?? { acked: 0, failed: 0, pending: 0 };
}

/**
 * (Re)configures capture: options given here win over the environment. Without an endpoint, or
 * with `enabled: false`, the console is unwrapped. The previous client is flushed and closed.
 * Throws a TypeError for an invalid `endpoint` given in code; an invalid DUCKTAIL_ENDPOINT is
 * warned about once and nothing is captured.
 */
export function configure(options: ConsoleOptions = {}): void {
  const fromCode = options.endpoint !== undefined || settings.endpoint !== undefined;
  if (options.endpoint !== undefined) endpoints(options.endpoint, "ducktail/console: endpoint");
  settings = { ...settings, ...options };
  const merged: ConsoleOptions = { ...optionsFromEnv(), ...definedOnly(settings) };
  const previous = client;
  client = null;
  if (previous) void previous.close();
  unwrapConsole();
  if (merged.enabled === false || !merged.endpoint) return;
  if (!fromCode && !validEnvEndpoint(merged.endpoint)) return;
  const clientOptions: ClientOptions = {
    url: merged.endpoint,
    key: merged.apiKey,
    source: merged.source ?? "console",
    batchInterval: merged.batchInterval,
    maxBatchSize: merged.maxBatchSize,
    storageMode: merged.storageMode,
    transport: merged.transport ?? "http",
    holdProcess: false,
    // This module warns through the original console itself, so nothing it prints is captured.
    warnings: false,
    onError: (err: DuckTailClientError) => {
      // A permanent failure (wrong key or URL) is told once, not again for every line it refuses.
      const failure = client?.failure;
      if (failure && err.eventId !== undefined && err.code === failure.code) return;
      warn(err.message);
    },
  };
  client = new DuckTailClient(clientOptions);
  wrap(merged.levels ?? CONSOLE_LEVELS);
}

/**
 * Starts capturing the console, the original package's way: `configure(options)` wraps
 * `console.log/info/debug/warn/error`. Returns whether capture is on; without an endpoint (in
 * `options` or DUCKTAIL_ENDPOINT) it warns and captures nothing.
 */
export function wrapConsole(options: ConsoleOptions = {}): boolean {
  configure(options);
  const merged = { ...optionsFromEnv(), ...definedOnly(settings) };
  if (!client && merged.enabled !== false && !merged.endpoint) {
    warn("wrapConsole(): no endpoint (pass { endpoint } or set DUCKTAIL_ENDPOINT); nothing is captured");
  }
  return client !== null;
}

/** Whether DUCKTAIL_ENDPOINT can be used; if not, warns once (a bad variable must not crash a program). */
function validEnvEndpoint(endpoint: string): boolean {
  try {
    endpoints(endpoint, "DUCKTAIL_ENDPOINT");
    return true;
  } catch (err) {
    if (badEnvEndpoint !== endpoint) warn(`${(err as Error).message}. Console capture is off.`);
    badEnvEndpoint = endpoint;
    return false;
  }
}

/** Node: the loop is empty, so the unref'd batch timer would never fire; send now, once per stall. */
let unackedAtLastExit = -1;
function beforeExit(): void {
  const unacked = client?.unacked ?? 0;
  if (!client || unacked === 0) return;
  if (unacked === unackedAtLastExit) {
    warn(`${unacked} console lines were not delivered before exit`);
    return;
  }
  unackedAtLastExit = unacked;
  // No timeout: its timer would hold the process; the POST in flight alone decides when it ends.
  void client.flush(Number.POSITIVE_INFINITY);
}

function definedOnly(options: ConsoleOptions): ConsoleOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as ConsoleOptions;
}

(globalThis as { process?: { on?: (event: string, listener: () => void) => void } }).process?.on?.(
  "beforeExit",
  beforeExit,
);
configure();
