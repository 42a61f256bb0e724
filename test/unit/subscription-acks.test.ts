import { afterEach, describe, expect, it, vi } from "vitest";
import { TailSubscription } from "../../sdk/subscription";

const frame = (seq: number, ids: string[]) => ({
  type: "tail" as const,
  subscription: "sub-1",
  seq,
  events: ids.map((id) => ({ id }) as never),
});

/** A subscription whose acks are recorded. */
function subscription() {
  const acks: number[] = [];
  const sub = new TailSubscription("req", {}, undefined, {
    ack: (_id, seq) => {
      acks.push(seq);
      return true;
    },
    unsubscribe: async () => {},
  });
  sub.subscribed("sub-1");
  return { sub, acks };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("tail acknowledgements", () => {
  it("acks cumulatively: one tailAck per eight consumed frames, naming the last", async () => {
    const { sub, acks } = subscription();
    for (let i = 1; i <= 16; i++) sub.push(frame(i * 10, [`e${i}`]));
    for (let i = 0; i < 16; i++) await sub.next();
    void sub.next(); // asking for more consumes the 16th frame: its ack is due
    expect(acks).toEqual([80, 160]);
    expect(sub.acked).toBe(160);
    sub.end();
  });

  it("acks a frame left over after a short delay, and never a frame not yet consumed", async () => {
    vi.useFakeTimers();
    const { sub, acks } = subscription();
    sub.push(frame(7, ["a", "b"]));
    sub.push(frame(9, ["c"]));
    await sub.next(); // a
    await sub.next(); // b
    const pending = sub.next(); // c: frame 7 is consumed now
    await pending;
    expect(acks).toEqual([]);
    vi.advanceTimersByTime(1_100);
    expect(acks).toEqual([7]);
    void sub.next(); // frame 9 consumed; waits for more
    vi.advanceTimersByTime(1_100);
    expect(acks).toEqual([7, 9]);
    sub.end();
  });
});
