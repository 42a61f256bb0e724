// End to end: `ducktail query` reads the lake by Range (GET /lake/files, GET /lake/object) and
// adds what the shards still buffer, against the bundled Worker under Miniflare.
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli";
import { useWorker } from "../helpers/worker";

const KEYS = {
  "lq-r": { tenant: "lq", scope: "read" },
  "lq-a": { tenant: "lq", scope: "admin" },
};
const FLUSHED = 3000;
const BUFFERED = 5;

/** `read <n> KiB of <m> KiB` of --stats, in KiB. */
function readOf(stderr: string): [number, number] {
  const m = /read ([\d.]+) KiB of ([\d.]+) KiB/.exec(stderr);
  if (!m) throw new Error(`no stats line in: ${stderr}`);
  return [Number(m[1]), Number(m[2])];
}

describe("ducktail query over the lake and the buffers", { timeout: 60_000 }, () => {
  const worker = useWorker({ DUCKTAIL_KEYS: JSON.stringify(KEYS) });
  const admin = (path: string, body?: unknown) =>
    fetch(`${worker.url}${path}`, {
      method: "POST",
      headers: { authorization: "Bearer lq-a" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const env = () => ({ DUCKTAIL_URL: worker.url, DUCKTAIL_KEY: "lq-r" });

  it("counts every event once, reading fewer bytes than the objects hold", async () => {
    for (let sent = 0; sent < FLUSHED; sent += 1000) {
      const batch = Array.from({ length: 1000 }, (_, i) => ({
        type: (sent + i) % 4 === 0 ? "signup" : "pageview",
        data: { i: sent + i, path: `/p/${(sent + i) % 50}`, ua: `agent-${(sent + i) % 97}` },
      }));
      expect((await admin("/e", batch)).status).toBe(200);
    }
    expect((await admin("/flush")).status).toBe(200);
    const late = Array.from({ length: BUFFERED }, () => ({ type: "signup" }));
    expect((await admin("/e", late)).status).toBe(200);

    const sql = "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY type";
    const res = await runCli(["query", sql, "--stats", "--json"], env());
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual([
      { type: "pageview", n: (FLUSHED * 3) / 4 },
      { type: "signup", n: FLUSHED / 4 + BUFFERED },
    ]);
    expect(res.stderr).toMatch(new RegExp(`${FLUSHED} rows from the lake, ${BUFFERED} buffered`));
    const [read, total] = readOf(res.stderr);
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThan(total / 2);

    // Every column: more bytes, the same rows; --limit keeps the newest.
    const all = await runCli(["query", "SELECT count(*) AS n FROM (SELECT * FROM events)", "--stats", "--json"], env());
    expect(JSON.parse(all.stdout)).toEqual([{ n: FLUSHED + BUFFERED }]);
    expect(readOf(all.stderr)[0]).toBeGreaterThan(read);
    const newest = await runCli(["query", "SELECT count(*) AS n FROM events", "--limit", "10", "--json"], env());
    expect(JSON.parse(newest.stdout)).toEqual([{ n: 10 }]);

    // The json extension's functions on `data`, though DuckDB-wasm cannot load the extension here.
    const json = await runCli(
      [
        "query",
        "SELECT data->>'path' AS path, count(*) AS n, max((data->>'$.i')::INTEGER) AS last FROM events WHERE type = 'pageview' GROUP BY 1 ORDER BY 1 LIMIT 2",
        "--json",
      ],
      env(),
    );
    expect(json.code, json.stderr).toBe(0);
    const pageviews = (k: number) =>
      Array.from({ length: FLUSHED }, (_, i) => i).filter((i) => i % 4 !== 0 && i % 50 === k);
    expect(JSON.parse(json.stdout)).toEqual(
      [0, 1].map((k) => ({ path: `/p/${k}`, n: pageviews(k).length, last: Math.max(...pageviews(k)) })),
    );
  });
});
