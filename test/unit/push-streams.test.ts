import { describe, expect, it } from "vitest";
import type { ShardReport, ViewPush } from "../../src/protocol/calls";
import { PUSH_GRACE_MS, PushStreams } from "../../src/views/streams";

const push = (from: number, through: number, extra: Partial<ViewPush> = {}): ViewPush => ({
  replica: "r1",
  epoch: "e1",
  from,
  through,
  more: false,
  buckets: [],
  ...extra,
});

const shard = (id: string, viewSeq: number | undefined, at: number): ShardReport => ({
  n: Number(id.slice(1)),
  id,
  lastReport: {
    n: Number(id.slice(1)),
    requests: 1,
    events: 1,
    seconds: 10,
    bufferedBytes: 0,
    bufferedRows: 0,
    connections: 0,
    at,
    ...(viewSeq !== undefined && { viewSeq }),
  },
});

describe("PushStreams", () => {
  it("takes pushes in order and ignores one that arrives after a newer one", () => {
    const streams = new PushStreams();
    expect(streams.accept(push(0, 3), 1)).toBe("apply");
    expect(streams.accept(push(3, 5), 2)).toBe("apply");
    // A push the replica gave up on (timed out) that arrives after the one that replaced it.
    expect(streams.accept(push(3, 4), 3)).toBe("stale");
    expect(streams.get("r1")?.acked).toBe(5);
    // A replica that did not hear the ack sends a superset again: taken, as buckets replace.
    expect(streams.accept(push(3, 7), 4)).toBe("apply");
    expect(streams.get("r1")?.acked).toBe(7);
  });

  it("asks for everything again when a push builds on changes it never got, and names the replica missing until it has them", () => {
    const streams = new PushStreams();
    streams.accept(push(0, 3), 1);
    expect(streams.accept(push(5, 8), 2)).toBe("resync");
    expect(streams.missing([], 3).missing).toEqual([
      { replica: "r1", reason: "resyncing: pushes were lost, it is sending every minute again" },
    ]);
    expect(streams.accept(push(0, 8, { more: true }), 4)).toBe("apply");
    expect(streams.missing([], 5).missing).toHaveLength(1);
    expect(streams.accept(push(8, 9), 6)).toBe("apply");
    expect(streams.missing([], 7)).toEqual({ asked: 1, missing: [], overdue: [] });
  });

  it("starts a replica's stream only from a push of everything (an aggregator that lost its state resyncs)", () => {
    const streams = new PushStreams();
    expect(streams.accept(push(12, 14), 1)).toBe("resync");
    expect(streams.accept(push(0, 14), 2)).toBe("apply");
    // New storage on the replica (a new epoch) starts over from its first push of everything.
    expect(streams.accept(push(0, 2, { epoch: "e2" }), 3)).toBe("apply");
    expect(streams.get("r1")).toMatchObject({ epoch: "e2", acked: 2, resync: false });
  });

  it("names a replica missing while it has more to push", () => {
    const streams = new PushStreams();
    streams.accept(push(0, 40, { more: true }), 1);
    expect(streams.missing([], 2).missing).toEqual([
      { replica: "r1", reason: "catching up: it has more changes to push" },
    ]);
  });

  it("names a replica whose load report counted changes that have not arrived after the grace, and marks it overdue", () => {
    const streams = new PushStreams();
    streams.accept(push(0, 4), 1_000);
    const reported = [shard("r1", 6, 10_000), shard("r2", 3, 10_000), shard("r3", undefined, 10_000)];
    // Within the grace its push may still be on its way.
    expect(streams.missing(reported, 10_000 + PUSH_GRACE_MS).missing).toEqual([]);
    const later = streams.missing(reported, 10_000 + PUSH_GRACE_MS + 2_000);
    expect(later.missing).toEqual([
      { replica: "r1", reason: "its view changes through seq 6, counted 7 s ago, have not arrived (has 4)" },
      { replica: "r2", reason: "its view changes through seq 3, counted 7 s ago, have not arrived (has 0)" },
    ]);
    expect(later.overdue).toEqual(["r1", "r2"]);
    // Once they arrive, it is counted again.
    streams.accept(push(4, 6), 20_000);
    expect(streams.missing([reported[0]!], 20_001)).toEqual({ asked: 1, missing: [], overdue: [] });
  });

  it("asks the coordinator's shards and every replica that pushed", () => {
    const streams = new PushStreams();
    streams.accept(push(0, 1, { replica: "gone" }), 1);
    expect(streams.missing([shard("r1", undefined, 1), shard("r2", 0, 1)], 2).asked).toBe(3);
  });
});
