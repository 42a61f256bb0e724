// `ducktail/console` in a real Node process (the built dist/console.js) against the bundled Worker
// under Miniflare: what the script logs arrives as events with the level's importance, and the
// script still exits by itself, also when the Worker cannot be reached.
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { closedPort } from "../helpers/ports";
import { runScript } from "../helpers/script";
import { useWorker } from "../helpers/worker";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const consoleModule = pathToFileURL(join(root, "dist/console.js")).href;
const KEYS = { wk: { tenant: "ops", scope: "write" }, rk: { tenant: "ops", scope: "read" } };

interface ConsoleEvent {
  type: string;
  source: string;
  importance: string;
  data: { level: string; message: string; error?: { message: string } };
}

describe("ducktail/console", () => {
  const worker = useWorker({ DUCKTAIL_KEYS: JSON.stringify(KEYS) });

  async function consoleEvents(source: string): Promise<ConsoleEvent[]> {
    const res = await fetch(`${worker.url}/events?key=rk&type=console&source=${source}&limit=100`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { events: ConsoleEvent[] }).events;
  }

  it("sends console.log, warn and error as events with their importance, prints them, and exits", async () => {
    const run = await runScript(
      `import ${JSON.stringify(consoleModule)};
       console.log("hello %s, %d items", "world", 3, { a: 1 });
       console.warn("disk at 91%");
       console.error("payment failed", new Error("card declined"));
       console.debug("cache miss");`,
      { DUCKTAIL_ENDPOINT: worker.url, DUCKTAIL_API_KEY: "wk", DUCKTAIL_SOURCE: "billing" },
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("hello world, 3 items");
    expect(run.stderr).toContain("payment failed");
    expect(run.stderr).not.toContain("ducktail/console:");

    const events = await consoleEvents("billing");
    const byLevel = Object.fromEntries(events.map((e) => [e.data.level, e]));
    expect(Object.keys(byLevel).sort()).toEqual(["debug", "error", "log", "warn"]);
    expect(byLevel.log).toMatchObject({ importance: "normal", data: { message: 'hello world, 3 items {"a":1}' } });
    expect(byLevel.warn).toMatchObject({ importance: "high", data: { message: "disk at 91%" } });
    expect(byLevel.debug).toMatchObject({ importance: "low" });
    expect(byLevel.error).toMatchObject({ importance: "critical", data: { error: { message: "card declined" } } });
    expect(byLevel.error?.data.message).toMatch(/^payment failed Error: card declined\n\s+at /);
  });

  it("captures nothing after unwrapConsole, nor when DUCKTAIL_ENABLED is false", async () => {
    const unwrapped = await runScript(
      `import { unwrapConsole, flush } from ${JSON.stringify(consoleModule)};
       console.log("kept");
       await flush();
       unwrapConsole();
       console.log("not captured");`,
      { DUCKTAIL_ENDPOINT: worker.url, DUCKTAIL_API_KEY: "wk", DUCKTAIL_SOURCE: "unwrap" },
    );
    expect(unwrapped.code).toBe(0);
    expect(unwrapped.stdout).toContain("not captured");
    expect((await consoleEvents("unwrap")).map((e) => e.data.message)).toEqual(["kept"]);

    const disabled = await runScript(`import ${JSON.stringify(consoleModule)}; console.error("quiet");`, {
      DUCKTAIL_ENDPOINT: worker.url,
      DUCKTAIL_API_KEY: "wk",
      DUCKTAIL_SOURCE: "disabled",
      DUCKTAIL_ENABLED: "false",
    });
    expect(disabled.code).toBe(0);
    expect(await consoleEvents("disabled")).toEqual([]);
  });

  it("configure() sets the endpoint in code and batches by DUCKTAIL_MAX_BATCH_SIZE", async () => {
    const run = await runScript(
      `import { configure, flush } from ${JSON.stringify(consoleModule)};
       configure({ endpoint: ${JSON.stringify(worker.url)}, apiKey: "wk", source: "configured" });
       for (let i = 0; i < 25; i++) console.info("line " + i);
       await flush();
       process.stdout.write("flushed\\n");`,
      { DUCKTAIL_MAX_BATCH_SIZE: "10" },
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("flushed");
    const messages = (await consoleEvents("configured")).map((e) => e.data.message);
    expect(messages.sort()).toEqual(Array.from({ length: 25 }, (_, i) => `line ${i}`).sort());
  });

  it("sends what is held at exit at once, even while a retry after a failed POST is waiting", async () => {
    // A Worker that fails the first POST (as during a deploy), then takes everything.
    const lines: string[] = [];
    let posts = 0;
    const flaky = createHttpServer((req, res) => {
      let body = "";
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        if (posts++ === 0) return res.writeHead(503).end();
        const events = (JSON.parse(body) as { events: { data: { message: string } }[] }).events;
        lines.push(...events.map((e) => e.data.message));
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ received: events.length, stored: events.length, rejected: [], storageMode: "buffered" }),
        );
      });
    });
    await new Promise<void>((done) => flaky.listen(0, "127.0.0.1", done));
    const run = await runScript(
      `import { flush } from ${JSON.stringify(consoleModule)};
       console.log("first");
       await flush(20); // its POST fails: a retry waits out its backoff
       console.log("second");`,
      { DUCKTAIL_ENDPOINT: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}` },
    );
    await new Promise((done) => flaky.close(done));
    expect(run.code).toBe(0);
    expect(run.stderr).not.toContain("not delivered");
    expect(lines.sort()).toEqual(["first", "second"]);
  });

  it("exits with a warning of what was lost when the Worker cannot be reached", async () => {
    const closed = await closedPort();
    const run = await runScript(`import ${JSON.stringify(consoleModule)}; console.log("into the void");`, {
      DUCKTAIL_ENDPOINT: `http://127.0.0.1:${closed}`,
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("into the void");
    expect(run.stderr).toContain("ducktail/console: 1 console lines were not delivered before exit");

    const flushed = await runScript(
      `import { flush } from ${JSON.stringify(consoleModule)};
       console.log("waiting");
       await flush(500);
       process.stdout.write("flush gave up\\n");`,
      { DUCKTAIL_ENDPOINT: `http://127.0.0.1:${closed}` },
    );
    expect(flushed.code).toBe(0);
    expect(flushed.stdout).toContain("flush gave up");
  });
});
