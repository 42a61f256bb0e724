import { describe, expect, it } from "vitest";
import { Rounds } from "../../src/rounds";

describe("rounds", () => {
  it("runs one round at a time: what comes while one runs shares the next, in order", async () => {
    const ran: number[][] = [];
    let release: () => void = () => {};
    const rounds = new Rounds<number[], number>(
      () => [],
      async (items) => {
        ran.push(items);
        await new Promise<void>((r) => {
          release = r;
        });
        return items.length;
      },
    );
    const first = rounds.next();
    first.items.push(1);
    await Promise.resolve();
    await Promise.resolve(); // the first round has started (alone)
    const second = rounds.next();
    second.items.push(2);
    const third = rounds.next(); // the same round as the second: it has not started
    third.items.push(3);
    expect(third).toBe(second);
    expect(ran).toEqual([[1]]);
    release();
    expect(await first.done).toBe(1);
    await new Promise((r) => setTimeout(r, 0));
    expect(ran).toEqual([[1], [2, 3]]);
    release();
    expect(await second.done).toBe(2);
  });

  it("starts the next round after a failed one, and the failure reaches only its own callers", async () => {
    let fail = true;
    const rounds = new Rounds<string[], string>(
      () => [],
      async (items) => {
        if (fail) throw new Error("boom");
        return items.join();
      },
    );
    const a = rounds.next();
    a.items.push("a");
    await expect(a.done).rejects.toThrow("boom");
    fail = false;
    const b = rounds.next();
    b.items.push("b");
    expect(await b.done).toBe("b");
  });
});
