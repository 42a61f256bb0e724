import { DurableObject } from "cloudflare:workers";
import { ErrorCode } from "../protocol/errors";
import { numericVar } from "../protocol/limits";
import type { RecordedAnswer, RecordingChunk, SessionSummary } from "../protocol/recording";
import { DEFAULT_STORAGE_TIMEOUT_MS, timedBucket } from "../sinks/timeout";
import { dayOf } from "./keys";
import { deleteSession, gzip, putChunk, putIndex } from "./objects";
import type { RecordingVars } from "./settings";
import { addChunk, summarizeChunk } from "./summary";

export interface RecordingEnv extends RecordingVars {
  EVENTS: R2Bucket;
  STORAGE_TIMEOUT_MS?: string;
}

/** Where a session's objects are and what its index says; null before its first chunk. */
export interface SessionState {
  tenant: string;
  day: string;
  summary: SessionSummary;
}

/** A stored chunk's answer, or why it was refused (errors cross RPC as data: their class would not). */
export type StoreAnswer = RecordedAnswer | { refused: { code: ErrorCode; message: string } };

function refused(code: ErrorCode, message: string): StoreAnswer {
  return { refused: { code, message } };
}

const STATE = "state";
const seqKey = (seq: number) => `seq:${seq}`;

/**
 * One session's recording (`idFromName(tenant + "/" + session)`): takes its chunks, each stored
 * once by seq (a chunk re-sent after a lost ack is answered `duplicate`), writes them gzipped to
 * R2 and keeps the session's index (./summary.ts) in its storage and beside the chunks.
 * Chunks are stored one at a time, so the index is never written from two at once.
 */
export class SessionRecording extends DurableObject<RecordingEnv> {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly bucket: R2Bucket;

  constructor(ctx: DurableObjectState, env: RecordingEnv) {
    super(ctx, env);
    this.bucket = timedBucket(env.EVENTS, numericVar(env.STORAGE_TIMEOUT_MS, DEFAULT_STORAGE_TIMEOUT_MS));
  }

  /**
   * Stores a chunk (validated by the caller) unless its seq is stored already; refuses it when
   * the session would pass `maxSessionBytes` (the caller's RECORDING_MAX_SESSION_BYTES).
   */
  store(tenant: string, chunk: RecordingChunk, maxSessionBytes: number): Promise<StoreAnswer> {
    const run = this.queue.then(() => this.storeNow(tenant, chunk, maxSessionBytes));
    this.queue = run.catch(() => {});
    return run;
  }

  /** The session's tenant, day and index; null when nothing is stored. */
  async state(): Promise<SessionState | null> {
    return (await this.ctx.storage.get<SessionState>(STATE)) ?? null;
  }

  /** Deletes the session: its objects in R2 and what this object keeps. Answers the objects deleted. */
  erase(): Promise<number> {
    const run = this.queue.then(async () => {
      const state = await this.state();
      const deleted = state ? await deleteSession(this.bucket, state.tenant, state.day, state.summary.session) : 0;
      await this.ctx.storage.deleteAll();
      return deleted;
    });
    this.queue = run.catch(() => {});
    return run;
  }

  private async storeNow(tenant: string, chunk: RecordingChunk, maxSessionBytes: number): Promise<StoreAnswer> {
    const answer = { session: chunk.session, seq: chunk.seq };
    if (await this.ctx.storage.get(seqKey(chunk.seq))) return { ...answer, duplicate: true };
    const state = await this.state();
    if (state && state.tenant !== tenant) return refused(ErrorCode.internal, "session of another tenant");
    const day = state?.day ?? dayOf(Date.now());
    const body = await gzip(JSON.stringify(chunk.events));
    const summary = addChunk(
      state?.summary ?? null,
      chunk.session,
      summarizeChunk(chunk.events),
      body.byteLength,
      chunk,
    );
    if (summary.bytes > maxSessionBytes) {
      // The recorder stops on this error; what was stored stays a replayable session.
      return refused(
        ErrorCode.recordingFull,
        `the session's recording would pass ${maxSessionBytes} bytes (RECORDING_MAX_SESSION_BYTES)`,
      );
    }
    await putChunk(this.bucket, tenant, day, chunk, body);
    await putIndex(this.bucket, tenant, day, summary);
    // Stored last: a chunk whose index write failed is written again when it is re-sent.
    await this.ctx.storage.put({ [seqKey(chunk.seq)]: 1, [STATE]: { tenant, day, summary } satisfies SessionState });
    return { ...answer, duplicate: false };
  }
}
