import { describe, expect, it } from "vitest";
import { GroupCommit } from "../../src/replica/group-commit";

describe("GroupCommit", () => {
  it("runs the writes queued before its timer fires as one group, in order", async () => {
    const commit = new GroupCommit(0);
    const order: number[] = [];
    const write = (n: number) => () => {
      order.push(n);
      return n * 10;
    };
    const results = await Promise.all([1, 2, 3].map((n) => commit.run(write(n))));
    expect(results).toEqual([10, 20, 30]);
    expect(order).toEqual([1, 2, 3]);
    expect([commit.groups, commit.writes]).toEqual([1, 3]);
    await commit.run(() => 4);
    expect([commit.groups, commit.writes]).toEqual([2, 4]);
  });

  it("rejects only the write that threw; the rest of its group succeeds", async () => {
    const commit = new GroupCommit(0);
    const outcomes = await Promise.allSettled([
      commit.run(() => "a"),
      commit.run(() => {
        throw new Error("disk full");
      }),
      commit.run(() => "c"),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[1] as PromiseRejectedResult).reason.message).toBe("disk full");
  });

  it("does not run a write before its timer fires", async () => {
    const commit = new GroupCommit(20);
    let ran = false;
    const done = commit.run(() => {
      ran = true;
    });
    await new Promise((r) => setTimeout(r, 5));
    expect(ran).toBe(false);
    await done;
    expect(ran).toBe(true);
  });
});
