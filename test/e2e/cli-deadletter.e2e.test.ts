// `ducktail deadletter list|replay` as a user runs it (the built command), against a stand-in
// server that answers as the Worker's dead-letter routes do: what it asks, what it prints, and
// the exit code when a replay fails. The routes themselves are tested in test/workers/dead-letters.test.ts.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli";

const LETTER = {
  key: "deadletter/tenant=t/sink=hook/t-0-7.ndjson.gz",
  sink: "hook",
  replica: "t-0",
  seq: 7,
  rows: 12,
  attempts: 8,
  error: "hook refused: 422",
  size: 300,
  uploaded: "2026-12-03T10:00:00.000Z",
};

describe("ducktail deadletter", () => {
  let server: Server;
  let url: string;
  const asked: { method: string; path: string; auth: string | undefined; body: string }[] = [];
  let replayFails = false;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => {
        asked.push({ method: req.method ?? "", path: req.url ?? "", auth: req.headers.authorization, body });
        res.setHeader("content-type", "application/json");
        if (req.url?.startsWith("/deadletter/replay")) {
          res.statusCode = replayFails ? 502 : 200;
          const outcome = replayFails
            ? { replayed: [], failed: [{ key: LETTER.key, sink: "hook", rows: 0, error: "hook refused: 422" }] }
            : { replayed: [{ key: LETTER.key, sink: "hook", rows: 12, files: ["hook:t/t-0/7"] }], failed: [] };
          res.end(JSON.stringify(outcome));
        } else if (req.url?.startsWith("/deadletter")) res.end(JSON.stringify({ deadLetters: [LETTER] }));
        else {
          res.statusCode = 404;
          res.end(JSON.stringify({ error: { code: "not_found", message: "no route" } }));
        }
      });
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  it("lists dead letters as JSON when piped, with the key and the sink filter", async () => {
    const res = await runCli(["deadletter", "list", "--sink", "hook"], { DUCKTAIL_URL: url, DUCKTAIL_KEY: "admin-k" });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual([LETTER]);
    expect(asked.at(-1)).toMatchObject({ method: "GET", path: "/deadletter?sink=hook", auth: "Bearer admin-k" });
  });

  it("replays the keys given, and says what it did", async () => {
    replayFails = false;
    const res = await runCli(["deadletter", "replay", LETTER.key], { DUCKTAIL_URL: url });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({
      replayed: [{ key: LETTER.key, files: ["hook:t/t-0/7"] }],
      failed: [],
    });
    expect(asked.at(-1)).toMatchObject({ method: "POST", path: "/deadletter/replay" });
    expect(JSON.parse(asked.at(-1)?.body ?? "")).toEqual({ keys: [LETTER.key] });
  });

  it("exits 1 with the reasons when a replay fails, and 2 for a wrong action", async () => {
    replayFails = true;
    const res = await runCli(["deadletter", "replay", "--sink", "hook"], { DUCKTAIL_URL: url });
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout).failed).toEqual([expect.objectContaining({ error: "hook refused: 422" })]);
    expect(JSON.parse(asked.at(-1)?.body ?? "")).toEqual({ sink: "hook" });
    const wrong = await runCli(["deadletter", "purge"], { DUCKTAIL_URL: url });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/say list or replay, not "purge"/);
  });
});
