// `ducktail rollups` as a user runs it (the built command), against a stand-in server that
// answers as GET /rollups does: what it asks, what it prints, and its exit codes. The route itself
// is tested in test/workers/rollups.test.ts.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rollupTableText } from "../../sdk/cli/rollups";
import type { RollupAnswer } from "../../src/protocol/lake";
import { runCli } from "../helpers/cli";

const ANSWER: RollupAnswer = {
  grain: "day",
  from: "2026-05-01T00:00:00.000Z",
  to: "2026-05-03T00:00:00.000Z",
  snapshot: 42,
  rows: [
    {
      grain: "day",
      period: "2026-05-01T00:00:00.000Z",
      source: "web",
      type: "pageview",
      importance: "normal",
      path: null,
      events: 1200,
      uniques: 310,
    },
    {
      grain: "day",
      period: "2026-05-01T00:00:00.000Z",
      source: null,
      type: null,
      importance: null,
      path: "/home",
      events: 900,
      uniques: 250,
    },
  ],
};

describe("ducktail rollups", () => {
  let server: Server;
  let url: string;
  const asked: { path: string; auth: string | undefined }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      asked.push({ path: req.url ?? "", auth: req.headers.authorization });
      res.setHeader("content-type", "application/json");
      const grain = new URL(req.url ?? "", "http://x").searchParams.get("grain");
      if (req.url?.startsWith("/rollups") && grain === "day") res.end(JSON.stringify(ANSWER));
      else {
        res.statusCode = 400;
        res.end(JSON.stringify({ error: { code: "bad_request", message: "from must be before to" } }));
      }
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  it("asks GET /rollups with the grain and range and prints the answer as JSON when piped", async () => {
    const res = await runCli(["rollups", "--grain", "day", "--from", "2026-05-01", "--to", "2026-05-03"], {
      DUCKTAIL_URL: url,
      DUCKTAIL_KEY: "read-k",
    });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual(ANSWER);
    expect(asked.at(-1)).toEqual({ path: "/rollups?grain=day&from=2026-05-01&to=2026-05-03", auth: "Bearer read-k" });
  });

  it("prints the groups and the pages as tables for a person", () => {
    const text = rollupTableText(ANSWER, false);
    expect(text).toMatch(/period\s+source\s+type\s+importance\s+events\s+uniques/);
    expect(text).toMatch(/2026-05-01\s+web\s+pageview\s+normal\s+1200\s+310/);
    expect(text).toMatch(/2026-05-01\s+\/home\s+900\s+250/);
    expect(rollupTableText(ANSWER, true)).not.toMatch(/normal/);
    expect(rollupTableText({ ...ANSWER, rows: [] }, false)).toBe(
      "no day rollups from 2026-05-01T00:00:00.000Z to 2026-05-03T00:00:00.000Z",
    );
  });

  it("exits 2 without a valid --grain, and 1 with the server's reason when it refuses", async () => {
    const missing = await runCli(["rollups"], { DUCKTAIL_URL: url });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--grain must be one of hour, day, month/);
    const refused = await runCli(["rollups", "--grain", "hour", "--from", "2026-05-03"], { DUCKTAIL_URL: url });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/GET \/rollups answered 400 bad_request: from must be before to/);
  });
});
