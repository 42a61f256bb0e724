import { describe, expect, it } from "vitest";
import type { ConnectionReport } from "../../src/protocol/calls";
import { ConnectionCount } from "../../src/replica/connections";

/** Sockets as the counter sees them: an object per socket, some marked admin. */
const socket = (client: string, admin = false) => ({ client, admin }) as unknown as WebSocket;
const info = (ws: WebSocket) => ws as unknown as { client: string; admin: boolean };

function counter(existing: WebSocket[] = [], limit = 3) {
  const reports: ConnectionReport[] = [];
  let release: (() => void) | null = null;
  const count = new ConnectionCount(
    {
      uid: "r0",
      sockets: () => existing,
      uncounted: (ws) => info(ws).admin,
      client: (ws) => info(ws).client,
      // Each report waits until the test lets it through, as a slow coordinator would.
      send: (report) => {
        reports.push(report);
        return new Promise<void>((resolve) => {
          release = resolve;
        });
      },
    },
    limit,
  );
  const settle = async () => {
    for (let i = 0; i < 10; i++) {
      release?.();
      release = null;
      await new Promise((r) => setTimeout(r, 0));
    }
  };
  return { count, reports, settle };
}

describe("a replica's connection count", () => {
  it("reports sockets that come together in a few rounds, each with the count at the time it goes", async () => {
    const { count, reports, settle } = counter();
    const opened = [count.opened(socket("a"), "a")];
    await new Promise((r) => setTimeout(r, 0)); // its round is out
    opened.push(count.opened(socket("b"), "b"), count.opened(socket("c"), "c"));
    await settle();
    await Promise.all(opened);
    // The first round goes at once; the two that came while it was out share the next.
    expect(reports).toEqual([
      { replica: "r0", connections: 1, clients: ["a"] },
      { replica: "r0", connections: 3, clients: ["b", "c"] },
    ]);
    expect(count.hasRoom()).toBe(false);
  });

  it("maps only clients placed at the edge, forgets those that left, and counts no admin socket", async () => {
    const { count, reports, settle } = counter();
    const edge = socket("edge");
    const placed = socket("by-identify");
    const admin = socket("admin-1", true);
    void count.opened(edge, "edge");
    void count.opened(placed);
    void count.opened(admin);
    await settle();
    void count.closed(edge);
    void count.closed(edge); // a close and an error for one socket: counted once
    await settle();
    expect(reports.map((r) => [r.connections, r.clients, r.gone ?? []])).toEqual([
      [2, ["edge"], []],
      [1, [], ["edge"]],
    ]);
    expect(count.count).toBe(1);
  });

  it("after a wake-up, counts the sockets it still holds before taking more", async () => {
    const held = [socket("a"), socket("b"), socket("admin-x", true)];
    const { count } = counter(held, 3);
    expect(count.count).toBe(2);
    expect(count.hasRoom()).toBe(true);
    void count.opened(socket("c"), "c");
    expect(count.hasRoom()).toBe(false);
  });
});
