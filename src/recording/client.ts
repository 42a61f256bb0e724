import { DuckTailError, ErrorCode } from "../protocol/errors";
import { parseChunk, type RecordedAnswer, type RecordingChunk } from "../protocol/recording";
import type { SessionRecording, SessionState } from "./SessionRecording";
import { type RecordingVars, recordingSettings } from "./settings";

/** The RECORDINGS binding: one SessionRecording per (tenant, session), by name. */
export type RecordingNamespace = DurableObjectNamespace<SessionRecording>;

/** A session's recording object as its callers use it: typed RPC. */
export interface SessionCalls {
  store(chunk: RecordingChunk, maxSessionBytes: number): Promise<RecordedAnswer>;
  state(): Promise<SessionState | null>;
  erase(): Promise<number>;
}

export function sessionRecording(ns: RecordingNamespace, tenant: string, session: string): SessionCalls {
  // Typed as the class, not through Rpc's mapped stub types: every answer is plain data.
  const stub = ns.get(ns.idFromName(`${tenant}/${session}`)) as unknown as SessionRecording;
  return {
    store: async (chunk, maxSessionBytes) => {
      const answer = await stub.store(tenant, chunk, maxSessionBytes);
      if ("refused" in answer) throw new DuckTailError(answer.refused.code, answer.refused.message);
      return answer;
    },
    state: () => stub.state(),
    erase: () => stub.erase(),
  };
}

/** Validates a chunk as a client sent it (bad → `code`) and stores it in its session's object. */
export function recordChunk(
  env: { RECORDINGS?: RecordingNamespace } & RecordingVars,
  tenant: string,
  raw: unknown,
  code: ErrorCode = ErrorCode.badFrame,
): Promise<RecordedAnswer> {
  const ns = env.RECORDINGS;
  if (!ns) throw new DuckTailError(ErrorCode.notFound, "session recording is not configured (no RECORDINGS binding)");
  const chunk = parseChunk(raw, code);
  return sessionRecording(ns, tenant, chunk.session).store(chunk, recordingSettings(env).maxSessionBytes);
}
