// Code written for the original DuckTail package runs unchanged against the bundled Worker under
// Miniflare: ws:// URLs ending in /ws for DuckTailClient and the CLI, DuckTailWSClient's call
// shape, and ducktail/console's wrapConsole(); a bad DUCKTAIL_ENDPOINT warns instead of crashing.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { DuckTailClient, DuckTailWSClient } from "../../sdk/index";
import { ROOT, runCli } from "../helpers/cli";
import { closedPort } from "../helpers/ports";
import { runScript } from "../helpers/script";
import { useWorker } from "../helpers/worker";

const KEYS = {
  wk: { tenant: "compat", scope: "write" },
  rk: { tenant: "compat", scope: "read" },
};
const consoleModule = pathToFileURL(join(ROOT, "dist/console.js")).href;

interface StoredEvent {
  id: string;
  type: string;
  source: string;
  importance: string;
  userId: string | null;
  anonymousId: string | null;
  sessionId: string | null;
  ts: number;
  data: Record<string, unknown>;
}

describe("the original package's call shapes", { timeout: 30_000 }, () => {
  const worker = useWorker({ DUCKTAIL_KEYS: JSON.stringify(KEYS) });
  const closers: { close(ms?: number): Promise<void> }[] = [];
  /** The Worker's socket URL as the original's examples wrote it: ws://host/ws. */
  const socketUrl = () => `${worker.url.replace(/^http/, "ws")}/ws`;

  afterAll(async () => {
    await Promise.all(closers.map((c) => c.close(0)));
  });

  async function stored(source: string): Promise<StoredEvent[]> {
    const res = await fetch(`${worker.url}/events?source=${source}&limit=100`, {
      headers: { authorization: "Bearer rk" },
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { events: StoredEvent[] }).events;
  }

  it("delivers and acks with DuckTailClient given the ws:// URL ending in /ws", async () => {
    for (const url of [socketUrl(), `${socketUrl()}/`, `${worker.url}/`]) {
      const client = new DuckTailClient({ url, key: "wk", source: "ws-url", batchInterval: 5 });
      closers.push(client);
      const id = `ws-url-${url.length}-${url.endsWith("/")}`;
      await expect(client.track("ws-url", { url }, { id })).resolves.toEqual({ id });
      expect(client.connectedVia).toBe("websocket");
    }
    expect((await stored("ws-url")).map((e) => e.data.url).sort()).toEqual(
      [socketUrl(), `${socketUrl()}/`, `${worker.url}/`].sort(),
    );
  });

  it("delivers DuckTailWSClient events written the original's way into the Worker", async () => {
    const client = new DuckTailWSClient({
      url: socketUrl(),
      apiKey: "wk",
      source: "original",
      storageMode: "confirmed",
      batchSize: 2,
      flushInterval: 50,
    });
    closers.push(client);
    await client.connect();
    expect(client.connectedVia).toBe("websocket");
    const at = Date.parse("2025-06-01T12:00:00.000Z");
    const acked = await Promise.all([
      client.track("signup", {
        data: { plan: "pro" },
        importance: "high",
        userId: "u-1",
        anonymousId: "a-1",
        sessionId: "s-1",
        timestamp: at,
        id: "orig-1",
      }),
      client.track("pageview", { data: { path: "/docs" }, source: "original-web", id: "orig-2" }),
      client.track("ping", { id: "orig-3" }),
    ]);
    expect(acked).toEqual([{ id: "orig-1" }, { id: "orig-2" }, { id: "orig-3" }]);
    expect(await client.flush()).toEqual({ acked: 0, failed: 0, pending: 0 });
    await client.close();

    const events = [...(await stored("original")), ...(await stored("original-web"))];
    const byId = Object.fromEntries(events.map((e) => [e.id, e]));
    expect(byId["orig-1"]).toMatchObject({
      type: "signup",
      source: "original",
      importance: "high",
      userId: "u-1",
      anonymousId: "a-1",
      sessionId: "s-1",
      ts: at,
      data: { plan: "pro" },
    });
    expect(byId["orig-2"]).toMatchObject({ type: "pageview", source: "original-web", data: { path: "/docs" } });
    expect(byId["orig-3"]).toMatchObject({ type: "ping", source: "original", importance: "normal" });
  });

  it("rejects DuckTailWSClient.connect() at once with a wrong key, and when nothing listens", async () => {
    const wrongKey = new DuckTailWSClient({ url: socketUrl(), apiKey: "nope", warnings: false });
    closers.push(wrongKey);
    await expect(wrongKey.connect()).rejects.toMatchObject({
      code: "unauthorized",
      status: 401,
      message: expect.stringContaining(`${socketUrl()} answered 401 unauthorized`),
    });
    const down = new DuckTailWSClient({ url: `ws://127.0.0.1:${await closedPort()}/ws`, warnings: false });
    closers.push(down);
    await expect(down.connect()).rejects.toMatchObject({
      code: "unreachable",
      message: expect.stringMatching(/ECONNREFUSED/),
    });
  });

  it("runs the CLI with --url ws://127.0.0.1:PORT/ws", async () => {
    const lines = `${JSON.stringify({ type: "cli-ws", id: "cli-ws-1" })}\n${JSON.stringify({ type: "cli-ws", id: "cli-ws-2" })}\n`;
    const send = await runCli(["send", "--url", socketUrl(), "--key", "wk", "--source", "cli-ws", "--json"], {}, lines);
    expect(send.code, send.stderr).toBe(0);
    expect(JSON.parse(send.stdout)).toMatchObject({ lines: 2, sent: 2, accepted: 2, rejected: [], invalid: [] });
    expect((await stored("cli-ws")).map((e) => e.id).sort()).toEqual(["cli-ws-1", "cli-ws-2"]);

    const stats = await runCli(["stats", "--aggregate", "--json"], {
      DUCKTAIL_URL: `${socketUrl()}/`,
      DUCKTAIL_KEY: "rk",
    });
    expect(stats.code, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout)).toHaveProperty("received");

    const bad = await runCli(["stats", "--url", "ftp://127.0.0.1/ws"], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      '--url "ftp://127.0.0.1/ws" has the protocol "ftp:"; use http(s)://host or ws(s)://host',
    );
  });

  describe("a Worker on a route under a path prefix (BASE_PATH)", () => {
    const prefixed = useWorker({ BASE_PATH: "/ducktail" });

    it("delivers through the prefix over the socket and over HTTP, in every URL form", async () => {
      const ws = `${prefixed.url.replace(/^http/, "ws")}/ducktail/ws`;
      const forms: [string, "websocket" | "http"][] = [
        [`${prefixed.url}/ducktail`, "websocket"],
        [`${ws}/`, "websocket"],
        [`${prefixed.url}/ducktail/`, "http"],
        [ws, "http"],
      ];
      for (const [i, [url, transport]] of forms.entries()) {
        const client = new DuckTailClient({ url, transport, batchInterval: 5 });
        closers.push(client);
        await expect(client.track("prefixed", { url }, { id: `prefixed-${i}` })).resolves.toEqual({
          id: `prefixed-${i}`,
        });
        expect(client.connectedVia).toBe(transport);
        expect(client.baseUrl).toBe(`${prefixed.url}/ducktail`);
      }
      const res = await fetch(`${prefixed.url}/ducktail/events?type=prefixed`);
      const { events } = (await res.json()) as { events: StoredEvent[] };
      expect(events.map((e) => e.id).sort()).toEqual(forms.map((_, i) => `prefixed-${i}`));
    });

    it("rejects at once under a wrong prefix, naming the URL and the fix", async () => {
      const client = new DuckTailClient({ url: `${prefixed.url}/ducktale`, warnings: false });
      closers.push(client);
      await expect(client.track("lost")).rejects.toMatchObject({
        code: "not_found",
        status: 404,
        message: expect.stringMatching(
          /\/ducktale\/ws answered 404 not_found: nothing serves \/ws here; url should be the Worker's base URL/,
        ),
      });
    });
  });

  describe("ducktail/console", () => {
    async function consoleLines(source: string): Promise<string[]> {
      const events = await stored(source);
      return events.filter((e) => e.type === "console").map((e) => String(e.data.message));
    }

    it("starts capture with wrapConsole(options), the original's name, and stops with unwrapConsole()", async () => {
      const run = await runScript(
        `import { wrapConsole, unwrapConsole, flush } from ${JSON.stringify(consoleModule)};
         const on = wrapConsole({ endpoint: ${JSON.stringify(socketUrl())}, apiKey: "wk", source: "wrapped" });
         console.log("captured %d", 1);
         console.warn("captured too");
         const report = await flush();
         unwrapConsole();
         console.log("not captured");
         process.stdout.write(JSON.stringify({ on, report }) + "\\n");`,
        {},
      );
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout.trim().split("\n").pop() as string)).toEqual({
        on: true,
        report: { acked: 2, failed: 0, pending: 0 },
      });
      expect((await consoleLines("wrapped")).sort()).toEqual(["captured 1", "captured too"]);
    });

    it("warns once and captures nothing when wrapConsole() has no endpoint", async () => {
      const run = await runScript(
        `import { wrapConsole } from ${JSON.stringify(consoleModule)};
         const on = wrapConsole({ source: "nowhere" });
         console.log("printed " + on);`,
        {},
      );
      expect(run.code).toBe(0);
      expect(run.stdout).toContain("printed false");
      expect(run.stderr.match(/ducktail\/console:/g)).toHaveLength(1);
      expect(run.stderr).toContain("wrapConsole(): no endpoint (pass { endpoint } or set DUCKTAIL_ENDPOINT)");
    });

    it("does not crash at import on an invalid DUCKTAIL_ENDPOINT: one warning, nothing captured", async () => {
      const run = await runScript(
        `import { configure } from ${JSON.stringify(consoleModule)};
         console.log("still running");
         configure({ source: "bad-env" }); // the same bad variable: no second warning
         console.error("and still");`,
        { DUCKTAIL_ENDPOINT: "localhost:8787", DUCKTAIL_API_KEY: "wk" },
      );
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain("still running");
      expect(run.stderr).toContain("and still");
      const warnings = run.stderr.split("\n").filter((l) => l.startsWith("ducktail/console:"));
      expect(warnings).toEqual([
        expect.stringMatching(
          /^ducktail\/console: DUCKTAIL_ENDPOINT "localhost:8787" has the protocol "localhost:"; use http\(s\):\/\/host .*Console capture is off\.$/,
        ),
      ]);
    });

    it("warns once, not per line, when the key is wrong", async () => {
      const run = await runScript(
        `import { flush } from ${JSON.stringify(consoleModule)};
         for (let i = 0; i < 5; i++) console.log("line " + i);
         const report = await flush();
         process.stdout.write(JSON.stringify(report) + "\\n");`,
        { DUCKTAIL_ENDPOINT: worker.url, DUCKTAIL_API_KEY: "nope", DUCKTAIL_SOURCE: "wrong-key" },
      );
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout.trim().split("\n").pop() as string)).toEqual({ acked: 0, failed: 5, pending: 0 });
      const warnings = run.stderr.split("\n").filter((l) => l.startsWith("ducktail/console:"));
      expect(warnings).toEqual([expect.stringContaining(`POST ${worker.url}/e answered 401 unauthorized`)]);
    });
  });
});
