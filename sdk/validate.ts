import { STORAGE_MODES } from "../src/protocol/frames";
import type { ClientOptions, TrackOptions } from "./types";

/** A value named for a message: "an object", "a number (42)", "an empty string". */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return value === "" ? "an empty string" : `a string ("${value.slice(0, 40)}")`;
  if (typeof value === "number" || typeof value === "boolean") return `a ${typeof value} (${value})`;
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Throws at once (not a rejected promise) when `type` is not a non-empty string. `call` is the
 * call's shape, e.g. "track(type, data?, options?)"; `example` what a right call looks like.
 */
export function checkType(call: string, type: unknown, example: string): asserts type is string {
  if (typeof type === "string" && type !== "") return;
  const hint = isPlainObject(type) ? ` — did you mean ${example}?` : "";
  throw new TypeError(`${call}: type must be a non-empty string; got ${describe(type)}${hint}`);
}

/** Throws unless `value` is a plain object, or absent (undefined or null). */
export function checkObject(
  call: string,
  name: string,
  value: unknown,
): asserts value is Record<string, unknown> | undefined | null {
  if (value === undefined || value === null || isPlainObject(value)) return;
  throw new TypeError(`${call}: ${name} must be a plain object (or left out); got ${describe(value)}`);
}

/** `track(type, data?, options?)` of DuckTailClient. */
export function checkTrack(type: unknown, data: unknown, options: unknown): asserts options is TrackOptions {
  const call = "track(type, data?, options?)";
  checkType(call, type, "track('name', {...})");
  checkObject(call, "data", data);
  checkObject(call, "options", options);
}

const TRANSPORTS = ["auto", "websocket", "http"];

/** `new DuckTailClient(options)`: an object, with a known `storageMode` and `transport` (the URL is checked by `endpoints`). */
export function checkClientOptions(options: unknown): asserts options is ClientOptions {
  if (!isPlainObject(options)) {
    throw new TypeError(
      `new DuckTailClient(options): options must be an object like { url: "https://<worker>.workers.dev", key }; got ${describe(options)}`,
    );
  }
  const { storageMode, transport } = options;
  if (storageMode !== undefined && !(STORAGE_MODES as readonly unknown[]).includes(storageMode)) {
    throw new TypeError(
      `DuckTailClient: storageMode must be one of ${STORAGE_MODES.join(", ")}; got ${describe(storageMode)}`,
    );
  }
  if (transport !== undefined && !TRANSPORTS.includes(transport as string)) {
    throw new TypeError(
      `DuckTailClient: transport must be one of ${TRANSPORTS.join(", ")}; got ${describe(transport)}`,
    );
  }
}
