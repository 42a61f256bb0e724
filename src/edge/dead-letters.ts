import type { ReplayOutcome } from "../protocol/calls";
import { DuckTailError, ErrorCode } from "../protocol/errors";
import { type DeadLetter, shardNumber } from "../protocol/routes";
import { parseDeadLetterKey } from "../sinks/dead-letter";
import { timedBucket } from "../sinks/timeout";

/**
 * The dead-letter API (admin): GET /deadletter lists a tenant's dead-lettered batches, POST
 * /deadletter/replay sends them to their sinks again. Replays run in the replica that wrote each
 * one, since only it has the sinks its `sinks()` hook builds.
 */

/** Listing calls bounded like the replicas' storage calls. */
const LIST_TIMEOUT_MS = 10_000;
/** Most dead letters one list or replay covers: a replay of more is run again for the rest. */
const MAX_LETTERS = 1000;

/** The tenant's dead letters, optionally of one sink, oldest flush first per replica. */
export async function listDeadLetters(bucket: R2Bucket, tenant: string, sink?: string): Promise<DeadLetter[]> {
  const storage = timedBucket(bucket, LIST_TIMEOUT_MS);
  const prefix = `deadletter/tenant=${tenant}/${sink ? `sink=${sink}/` : ""}`;
  const letters: DeadLetter[] = [];
  let cursor: string | undefined;
  do {
    const page = await storage.list({ prefix, cursor, include: ["customMetadata"] });
    for (const o of page.objects) {
      const name = parseDeadLetterKey(o.key);
      if (!name || name.tenant !== tenant) continue;
      const meta = o.customMetadata ?? {};
      letters.push({
        key: o.key,
        sink: name.sink,
        replica: name.replica,
        seq: name.seq,
        rows: Number(meta.rows ?? 0),
        attempts: Number(meta.attempts ?? 0),
        error: meta.error ?? "",
        size: o.size,
        uploaded: o.uploaded.toISOString(),
      });
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor && letters.length < MAX_LETTERS);
  return letters
    .sort((a, b) => (a.replica < b.replica ? -1 : a.replica > b.replica ? 1 : a.seq - b.seq))
    .slice(0, MAX_LETTERS);
}

/** `{keys?, sink?}` of a replay request: the keys given (each the tenant's), or every dead letter (of the sink). */
export async function replayTargets(bucket: R2Bucket, tenant: string, body: unknown): Promise<string[]> {
  const b = (body ?? {}) as { keys?: unknown; sink?: unknown };
  if (typeof b !== "object" || Array.isArray(b))
    throw new DuckTailError(ErrorCode.badRequest, "body must be {keys?, sink?}");
  if (b.sink !== undefined && typeof b.sink !== "string")
    throw new DuckTailError(ErrorCode.badRequest, "sink must be a name");
  if (b.keys === undefined)
    return (await listDeadLetters(bucket, tenant, b.sink as string | undefined)).map((l) => l.key);
  if (!Array.isArray(b.keys) || b.keys.length > MAX_LETTERS || b.keys.some((k) => typeof k !== "string")) {
    throw new DuckTailError(ErrorCode.badRequest, `keys must be a list of at most ${MAX_LETTERS} dead-letter keys`);
  }
  for (const key of b.keys as string[]) {
    if (parseDeadLetterKey(key)?.tenant !== tenant) {
      throw new DuckTailError(ErrorCode.badRequest, `${key} is not one of this tenant's dead letters`);
    }
  }
  return b.keys as string[];
}

/**
 * Replays `keys`, grouped by the replica that wrote them (`<tenant>-<shard>`); `send` posts a
 * group to its shard. A shard that fails answers for each of its keys.
 */
export async function replay(
  keys: readonly string[],
  send: (shard: number, keys: string[]) => Promise<ReplayOutcome[]>,
): Promise<{ replayed: ReplayOutcome[]; failed: ReplayOutcome[] }> {
  const byShard = new Map<number, string[]>();
  for (const key of keys) {
    const shard = shardNumber(parseDeadLetterKey(key)?.replica ?? "") ?? Number.NaN;
    const group = byShard.get(shard) ?? [];
    group.push(key);
    byShard.set(shard, group);
  }
  const outcomes = (
    await Promise.all(
      [...byShard].map(([shard, group]) =>
        send(shard, group).catch((err: unknown) =>
          group.map((key) => ({ key, sink: parseDeadLetterKey(key)?.sink ?? null, rows: 0, error: String(err) })),
        ),
      ),
    )
  ).flat();
  return { replayed: outcomes.filter((o) => !o.error), failed: outcomes.filter((o) => o.error) };
}
