import type { MissingReplica, ShardReport, ViewPush } from "../protocol/calls";

/**
 * How long a replica's view changes may take to arrive after a load report counted them before
 * the replica is named missing: a save is pushed at once, so a few seconds cover a slow push.
 */
export const PUSH_GRACE_MS = 5_000;

/** What the view aggregator knows of one replica's pushes. */
export interface PushStream {
  /** The replica's Durable Object id. */
  replica: string;
  epoch: string;
  /** Every change of the replica up to this seq has arrived. */
  acked: number;
  /** Its last push left changes for the next one. */
  more: boolean;
  /** Everything was asked for again (pushes were lost) and has not all arrived yet. */
  resync: boolean;
  lastPushAt: number;
}

/** What to do with a push: take its buckets, ignore it (an older push that came late), or ask for everything again. */
export type PushVerdict = "apply" | "stale" | "resync";

/**
 * The seqs of every replica's pushes, and from them which replicas an answer may lack. A replica
 * numbers its view changes (per epoch, its view storage) and pushes every change after the seq the
 * aggregator acked. A push that builds on more than the aggregator has (`from` beyond `acked`:
 * pushes were lost, or the aggregator lost its state) gets a resync: the replica pushes all its
 * minutes again, and is named missing until it has. Pure: persisting streams is the caller's job.
 */
export class PushStreams {
  private readonly streams = new Map<string, PushStream>();

  constructor(restored: Iterable<PushStream> = []) {
    for (const s of restored) this.streams.set(s.replica, s);
  }

  get(replica: string): PushStream | undefined {
    return this.streams.get(replica);
  }

  /** Judges a push and records it; the caller takes the buckets only on "apply". */
  accept(push: ViewPush, now: number): PushVerdict {
    let stream = this.streams.get(push.replica);
    if (!stream || stream.epoch !== push.epoch) {
      // A replica not heard of (or with new storage): only a push of everything it has starts its stream.
      stream = {
        replica: push.replica,
        epoch: push.epoch,
        acked: 0,
        more: false,
        resync: push.from !== 0,
        lastPushAt: now,
      };
      this.streams.set(push.replica, stream);
      if (stream.resync) return "resync";
    }
    stream.lastPushAt = now;
    if (push.from > stream.acked) {
      stream.resync = true;
      return "resync";
    }
    if (push.through <= stream.acked) return "stale";
    stream.acked = push.through;
    stream.more = push.more;
    if (!push.more) stream.resync = false;
    return "apply";
  }

  /**
   * The tenant's replicas (the coordinator's shards and every replica that pushed) and those whose
   * latest changes an answer may lack: a resync or a backlog not through yet, or changes a load
   * report counted that have not arrived {@link PUSH_GRACE_MS} after it (`overdue` too: the
   * aggregator asks those to push, in case it lost its state while they had nothing new to push).
   */
  missing(
    shards: readonly ShardReport[],
    now: number,
  ): { asked: number; missing: MissingReplica[]; overdue: string[] } {
    const reports = new Map(shards.map((s) => [s.id, s.lastReport] as const));
    const replicas = new Set([...reports.keys(), ...this.streams.keys()]);
    const missing: MissingReplica[] = [];
    const overdue: string[] = [];
    for (const replica of replicas) {
      const stream = this.streams.get(replica);
      const report = reports.get(replica) ?? null;
      const acked = stream?.acked ?? 0;
      if (stream?.resync) {
        missing.push({ replica, reason: "resyncing: pushes were lost, it is sending every minute again" });
      } else if (stream?.more) {
        missing.push({ replica, reason: "catching up: it has more changes to push" });
      } else if (report?.viewSeq !== undefined && report.viewSeq > acked && now - report.at > PUSH_GRACE_MS) {
        const ago = Math.round((now - report.at) / 1000);
        const reason = `its view changes through seq ${report.viewSeq}, counted ${ago} s ago, have not arrived (has ${acked})`;
        missing.push({ replica, reason });
        overdue.push(replica);
      }
    }
    return { asked: replicas.size, missing, overdue };
  }
}
