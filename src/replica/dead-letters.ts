import { EventBatch } from "../columns/batch";
import type { ReplayOutcome } from "../protocol/calls";
import { parseDeadLetterKey, readDeadLetter } from "../sinks/dead-letter";
import type { FlushContext, Sink } from "../sinks/sink";
import { timedBucket, withTimeout } from "../sinks/timeout";

export type { ReplayOutcome } from "../protocol/calls";

/**
 * Sends dead-lettered batches of this replica to their sink again, each under its original flush
 * seq (so the sink's idempotency key and object keys are the ones the first tries had), and deletes
 * a dead letter once its sink took it. One at a time, every storage call bounded by `timeoutMs`.
 */
export async function replayDeadLetters(
  bucket: R2Bucket,
  sinks: readonly Sink[],
  replica: { tenant: string; name: string },
  keys: readonly string[],
  timeoutMs: number,
): Promise<ReplayOutcome[]> {
  const storage = timedBucket(bucket, timeoutMs);
  const outcomes: ReplayOutcome[] = [];
  for (const key of keys) {
    const name = parseDeadLetterKey(key);
    if (!name || name.tenant !== replica.tenant || name.replica !== replica.name) {
      outcomes.push({ key, sink: null, rows: 0, error: `not a dead letter of ${replica.name}` });
      continue;
    }
    const sink = sinks.find((s) => s.name === name.sink);
    if (!sink) {
      outcomes.push({ key, sink: name.sink, rows: 0, error: `${replica.name} has no sink named "${name.sink}"` });
      continue;
    }
    try {
      const letter = await readDeadLetter(storage, key);
      if (!letter) throw new Error("no such object (replayed or deleted already?)");
      let files: string[] = [];
      if (letter.rows.length > 0) {
        const context: FlushContext = {
          tenant: name.tenant,
          replica: name.replica,
          seq: name.seq,
          from: letter.from,
          to: letter.to,
          // Tries were made before: the sink must not duplicate what one of them may have written.
          attempt: letter.attempts,
          timeoutMs,
        };
        const batch = EventBatch.from(letter.rows);
        files = await withTimeout(sink.write(batch, context), 3 * timeoutMs, `${sink.name} write`);
      }
      await storage.delete(key);
      outcomes.push({ key, sink: sink.name, rows: letter.rows.length, files });
    } catch (err) {
      outcomes.push({ key, sink: sink.name, rows: 0, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return outcomes;
}
