import { DuckTailError, ErrorCode } from "./errors";
import type { Rejection } from "./events";
import type { Limits } from "./limits";
import type { RecordedAnswer } from "./recording";
import type { TailFrame } from "./tail";

/** When the ack is sent; see docs/ARCHITECTURE.md, "Storage modes". */
export const STORAGE_MODES = ["fire-and-forget", "buffered", "confirmed", "durable"] as const;
export type StorageMode = (typeof STORAGE_MODES)[number];
export const DEFAULT_STORAGE_MODE: StorageMode = "buffered";

export function parseStorageMode(v: unknown): StorageMode {
  if (v === undefined || v === null || v === "") return DEFAULT_STORAGE_MODE;
  if (STORAGE_MODES.includes(v as StorageMode)) return v as StorageMode;
  throw new DuckTailError(ErrorCode.invalidStorageMode, `storageMode must be one of ${STORAGE_MODES.join(", ")}`);
}

/** Client → server frames of protocol v1. */
export type ClientFrame =
  | { type: "events"; id?: string; events: unknown[]; storageMode?: StorageMode }
  | { type: "stats"; id?: string }
  | { type: "flush"; id?: string }
  | { type: "ping"; id?: string }
  /** Live tail (read scope): `filter` as in src/gossip/filters.ts, `sample` 0..1 (default 1). */
  | { type: "subscribe"; id?: string; filter: unknown; sample?: unknown }
  | { type: "unsubscribe"; id?: string; subscription: string }
  /** The subscriber processed every tail frame up to `seq` (flow control: see TailQueue). */
  | { type: "tailAck"; id?: string; subscription: string; seq: number }
  /** A materialized view (read scope): `window` like "5m" | "1h" | "24h", `by` a row field, `limit` rows. */
  | { type: "mv"; id?: string; name: string; window?: string; by?: string; limit?: number; step?: string }
  /** A chunk of a session recording (write scope; see ./recording.ts), answered `recorded`. */
  | { type: "recording"; id?: string; chunk: unknown };

/** What ingest reports for a batch: the body of an `ack` frame and of an HTTP ingest answer. */
export interface IngestResult {
  received: number;
  stored: number;
  rejected: Rejection[];
  storageMode: StorageMode;
  /** Events dropped as already taken (ingest with dedup, e.g. Segment's messageId). */
  duplicates?: number;
}

/** Server → client frames of protocol v1 (the live tail's are in ./tail). */
export type ServerFrame =
  | TailFrame
  | ({ type: "ack"; id?: string } & IngestResult)
  | ({ type: "stats"; id?: string } & Record<string, unknown>)
  | { type: "flushed"; id?: string; files: string[] }
  | { type: "pong"; id?: string; ts: number }
  /** The shard is leaving the tenant's routing table: reconnect to /ws (the socket closes with 1012). */
  | { type: "reconnect"; reason: string }
  | { type: "subscribed"; id?: string; subscription: string; replicas: number }
  | { type: "unsubscribed"; id?: string; subscription: string }
  | ({ type: "mv"; id?: string } & Record<string, unknown>)
  | ({ type: "recorded"; id?: string } & RecordedAnswer)
  | { type: "error"; id?: string; code: ErrorCode; message: string };

/**
 * The `ack` frame's text, exactly `JSON.stringify({ type: "ack", id, ...r })`. The common ack
 * (nothing rejected) is written by hand: one goes out per frame, and building it through an
 * object spread and `JSON.stringify` cost as much as parsing a small frame.
 */
export function ackFrame(id: string | undefined, r: IngestResult): string {
  if (r.rejected.length > 0 || r.duplicates !== undefined) return JSON.stringify({ type: "ack", id, ...r });
  const idField = id === undefined ? "" : `"id":${JSON.stringify(id)},`;
  return `{"type":"ack",${idField}"received":${r.received},"stored":${r.stored},"rejected":[],"storageMode":"${r.storageMode}"}`;
}

/** A frame that failed to parse, with the `id` it carried if one could be read. */
export class FrameError extends DuckTailError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly frameId?: string,
  ) {
    super(code, message);
  }
}

const encoder = new TextEncoder();

/** Byte length of a string, computed exactly only when it could be over the limit. */
export function utf8Length(text: string, limit: number): number {
  if (text.length * 3 <= limit) return text.length;
  return encoder.encode(text).byteLength;
}

export function parseFrame(message: string | ArrayBuffer, limits: Limits): ClientFrame {
  const text = typeof message === "string" ? message : new TextDecoder().decode(message);
  if (utf8Length(text, limits.maxFrameBytes) > limits.maxFrameBytes) {
    throw new FrameError(ErrorCode.frameTooLarge, `frame is larger than ${limits.maxFrameBytes} bytes`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new FrameError(ErrorCode.badJson, "frame is not valid JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new FrameError(ErrorCode.badFrame, "frame must be a JSON object with a type");
  }
  const o = raw as Record<string, unknown>;
  const id = typeof o.id === "string" || typeof o.id === "number" ? String(o.id) : undefined;
  switch (o.type) {
    case "events": {
      if (!Array.isArray(o.events)) throw new FrameError(ErrorCode.badFrame, "events must be an array", id);
      if (o.events.length > limits.maxBatchEvents) {
        throw new FrameError(ErrorCode.batchTooLarge, `at most ${limits.maxBatchEvents} events per batch`, id);
      }
      // Absent → the socket's default mode (set at connect), so only parse what was sent.
      let storageMode: StorageMode | undefined;
      try {
        storageMode = o.storageMode === undefined ? undefined : parseStorageMode(o.storageMode);
      } catch (err) {
        throw new FrameError(ErrorCode.invalidStorageMode, (err as Error).message, id);
      }
      return { type: "events", id, events: o.events, storageMode };
    }
    case "stats":
    case "flush":
    case "ping":
      return { type: o.type, id };
    case "subscribe":
      return { type: "subscribe", id, filter: o.filter, sample: o.sample };
    case "recording":
      return { type: "recording", id, chunk: o.chunk };
    case "mv": {
      if (typeof o.name !== "string") throw new FrameError(ErrorCode.badFrame, "name must be a string", id);
      const window = typeof o.window === "string" ? o.window : undefined;
      const by = typeof o.by === "string" ? o.by : undefined;
      const limit = Number.isInteger(o.limit) ? (o.limit as number) : undefined;
      const step = typeof o.step === "string" ? o.step : undefined;
      return { type: "mv", id, name: o.name, window, by, limit, step };
    }
    case "unsubscribe":
    case "tailAck": {
      if (typeof o.subscription !== "string")
        throw new FrameError(ErrorCode.badFrame, "subscription must be a string", id);
      if (o.type === "unsubscribe") return { type: "unsubscribe", id, subscription: o.subscription };
      if (!Number.isInteger(o.seq)) throw new FrameError(ErrorCode.badFrame, "seq must be an integer", id);
      return { type: "tailAck", id, subscription: o.subscription, seq: o.seq as number };
    }
    default:
      throw new FrameError(ErrorCode.unknownType, `unknown frame type ${JSON.stringify(o.type ?? null)}`, id);
  }
}
