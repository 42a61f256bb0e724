// End to end: the `ducktail` command (dist/cli.js, built from sdk/cli/) run as a child process
// against the bundled Worker under Miniflare. Each test has its own tenant, so counts are exact.
import { EventEmitter } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../sdk/cli/main";
import { DuckTailClient } from "../../sdk/index";
import { parseDdl, sqliteType } from "../../src/lake/catalog/spec";
import { ROOT, runCli, startCli, startPipeline } from "../helpers/cli";
import { query as duckdb } from "../helpers/duckdb";
import { eventually } from "../helpers/eventually";
import { downloadEvents } from "../helpers/lake";
// @ts-expect-error plain .mjs helper without types
import { buildWorker, startWorker } from "../helpers/miniflare.mjs";

const TENANTS = ["tail", "stop", "slow", "send", "views", "query", "lake"] as const;
type Tenant = (typeof TENANTS)[number];
// Per tenant: <t>-w (write), <t>-r (read), <t>-a (admin).
const KEYS = Object.fromEntries(
  TENANTS.flatMap((t) => [
    [`${t}-w`, { tenant: t, scope: "write" }],
    [`${t}-r`, { tenant: t, scope: "read" }],
    [`${t}-a`, { tenant: t, scope: "admin" }],
  ]),
);

interface StoredRow {
  id: string;
  type: string;
}

describe("ducktail CLI end to end", { timeout: 60_000 }, () => {
  let bundle: string;
  let persist: string;
  let scratch: string;
  let mf: Miniflare;
  let url: string;
  const clients: DuckTailClient[] = [];

  beforeAll(async () => {
    // The command under test is the bundle users get, dist/cli.js, rebuilt by the globalSetup.
    bundle = buildWorker();
    persist = mkdtempSync(join(tmpdir(), "ducktail-cli-"));
    scratch = mkdtempSync(join(tmpdir(), "ducktail-cli-files-"));
    ({ mf, url } = await startWorker(bundle, { persistDir: persist, vars: { DUCKTAIL_KEYS: JSON.stringify(KEYS) } }));
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(0)));
    await mf?.dispose();
    for (const dir of [bundle, persist, scratch]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const env = (tenant: Tenant, scope: "w" | "r" | "a") => ({ DUCKTAIL_URL: url, DUCKTAIL_KEY: `${tenant}-${scope}` });

  function client(tenant: Tenant): DuckTailClient {
    const c = new DuckTailClient({ url, key: `${tenant}-w`, batchInterval: 5, storageMode: "confirmed" });
    clients.push(c);
    return c;
  }

  async function admin(tenant: Tenant, path: string, method = "GET"): Promise<Record<string, unknown>> {
    const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${tenant}-a` } });
    expect(res.status, `${path} answered`).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  }

  /** Every event the tenant stored (lake and buffers), as GET /events answers. */
  async function stored(tenant: Tenant): Promise<StoredRow[]> {
    return (await admin(tenant, "/events?limit=10000")).events as StoredRow[];
  }

  function file(name: string, text: string): string {
    const path = join(scratch, name);
    writeFileSync(path, text);
    return path;
  }

  describe("tail", () => {
    it("writes NDJSON of exactly the matching events into a shell pipe", async () => {
      const consumer = join(ROOT, "test/helpers/ndjson-consumer.mjs");
      const node = JSON.stringify(process.execPath);
      const pipeline = startPipeline(
        `${node} dist/cli.js tail --type 'signup*' | ${node} ${JSON.stringify(consumer)} signup-last`,
        env("tail", "r"),
      );
      await pipeline.waitFor((o) => o.stderr.includes("subscribed"), "the tail to subscribe");

      const c = client("tail");
      await Promise.all([
        c.track("signup", { plan: "pro" }, { id: "signup-1" }),
        c.track("pageview", { path: "/" }, { id: "pageview-1" }),
        c.track("signup_completed", {}, { id: "signup-2", importance: "high" }),
        c.track("presignup", {}, { id: "presignup-1" }),
        c.track("error", { message: "x" }, { id: "error-1" }),
      ]);
      // Sent after every non-matching event was stored, so they would have reached the pipe first.
      await c.track("signup", {}, { id: "signup-last" });
      await pipeline.waitFor((o) => o.stdout.includes("signup-last"), "the last matching event");

      const lines = pipeline.stdout.trim().split("\n");
      const events = lines.map((l) => JSON.parse(l) as { id: string; type: string; data: unknown });
      expect(events.map((e) => e.id)).toEqual(["signup-1", "signup-2", "signup-last"]);
      expect(events[0]).toMatchObject({ type: "signup", data: { plan: "pro" }, source: "unknown" });

      // The reader is gone: the tail's next write fails with EPIPE and it ends quietly (exit 0).
      await c.track("signup", {}, { id: "signup-after" });
      const end = await pipeline.exited;
      expect(end.code, end.stderr).toBe(0);
    });

    it("exits 0 on SIGINT and closes its socket, so the server drops the subscription", async () => {
      const subscriptions = async () => {
        const stats = (await admin("stop", "/buffer/stats")) as { shards: { stats: { subscriptions?: number } }[] };
        return stats.shards.reduce((n, s) => n + (s.stats.subscriptions ?? 0), 0);
      };
      const tail = startCli(["tail", "--min-importance", "high", "--where", "data.status>=500"], env("stop", "r"));
      await tail.waitFor((o) => o.stderr.includes("subscribed"), "the tail to subscribe");
      expect(await subscriptions()).toBe(1);

      const c = client("stop");
      await c.track("request", { status: 503 }, { id: "hit", importance: "critical" });
      await c.track("request", { status: 200 }, { id: "miss-status", importance: "critical" });
      await c.track("request", { status: 500 }, { id: "miss-importance", importance: "normal" });
      await c.track("request", { status: 500 }, { id: "hit-2", importance: "high" });
      await tail.waitFor((o) => o.stdout.includes("hit-2"), "the second match");

      tail.child.kill("SIGINT");
      const end = await tail.exited;
      expect(end.code, end.stderr).toBe(0);
      expect(end.signal).toBeNull();
      expect(
        end.stdout
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l).id),
      ).toEqual(["hit", "hit-2"]);
      // The server saw the socket close and removed the subscription with it.
      const deadline = Date.now() + 10_000;
      while ((await subscriptions()) !== 0) {
        if (Date.now() > deadline) throw new Error("the subscription outlived the tail");
        await new Promise((r) => setTimeout(r, 50));
      }
    });
  });

  it("tail stops pulling while stdout is full, so the server holds its window and then drops", async () => {
    /** A stdout whose reader has stopped: every write says "full" until drain(). */
    class FullStdout extends EventEmitter {
      lines: string[] = [];
      full = true;
      write(text: string): boolean {
        this.lines.push(text);
        return !this.full;
      }
      drain(): void {
        this.full = false;
        this.emit("drain");
      }
    }
    const stdout = new FullStdout();
    const stderr = new FullStdout();
    stderr.full = false;
    const io = { stdin: process.stdin, stdout, stderr, env: env("slow", "r") } as unknown as Parameters<typeof main>[1];
    const done = main(["tail", "--type", "bulk"], io);
    const until = async (check: () => boolean | Promise<boolean>, what: string) => {
      const deadline = Date.now() + 20_000;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr: ${stderr.lines.join("")}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until(() => stderr.lines.join("").includes("subscribed"), "the tail to subscribe");

    // 30 frames of 100 events: the server sends its window of 16 unacked frames, queues up to
    // 1000 events and drops the rest, because the tail acks nothing while it cannot write.
    const c = client("slow");
    for (let b = 0; b < 30; b++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => c.track("bulk", { n: b * 100 + i })));
    }
    const dropped = async () => {
      const stats = (await admin("slow", "/buffer/stats")) as { shards: { stats: { tailDropped?: number } }[] };
      return stats.shards.reduce((n, s) => n + (s.stats.tailDropped ?? 0), 0);
    };
    // Tail events reach the subscriber's queue in batches (a short timer, or gossip from another
    // shard) after the batch that carried them was acked: wait for the drops to add up to what
    // overflowed, then check they stop there.
    await until(async () => (await dropped()) >= 3000 - 1600 - 1000, "the server to drop for the stalled tail");
    expect(await dropped()).toBe(3000 - 1600 - 1000);
    expect(stdout.lines, "nothing pulled while stdout was full").toHaveLength(1);

    stdout.drain();
    await until(() => stdout.lines.length === 1600 + 1000, "the held events once stdout drained");
    expect(stderr.lines.join("")).toContain("dropped 400 events");
    stdout.emit("error", Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    expect(await done).toBe(0);
  });

  it("tail with a write key fails at once with the server's 403", async () => {
    const res = await runCli(["tail"], env("tail", "w"));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/403 forbidden/);
  });

  describe("send", () => {
    const lines = (prefix: string) =>
      [
        JSON.stringify({ id: `${prefix}-1`, type: "signup", data: { plan: "pro" } }),
        "{not json",
        JSON.stringify({ id: `${prefix}-2`, type: "pageview", source: "web", data: { path: "/a" } }),
        JSON.stringify({ id: `${prefix}-rejected`, data: { type: "missing" } }),
        "",
        JSON.stringify({ id: `${prefix}-3`, type: "purchase", importance: "high", userId: "u1" }),
      ].join("\n");

    function expectSummary(out: string) {
      const summary = JSON.parse(out) as {
        lines: number;
        sent: number;
        accepted: number;
        rejected: { line: number; code: string; message: string }[];
        invalid: { line: number; message: string }[];
      };
      expect(summary).toMatchObject({ lines: 6, sent: 4, accepted: 3 });
      expect(summary.invalid).toEqual([{ line: 2, message: expect.stringContaining("bad JSON") }]);
      expect(summary.rejected).toEqual([{ line: 4, code: "invalid_field", message: expect.stringContaining("type") }]);
    }

    it("sends a file's good lines, reports the bad and the rejected ones by line, and exits 1", async () => {
      const path = file("events.ndjson", lines("file"));
      const res = await runCli(["send", path, "--storage-mode", "confirmed"], env("send", "w"));
      expect(res.code, res.stderr).toBe(1);
      expectSummary(res.stdout);
      const ids = (await stored("send")).map((e) => e.id).filter((id) => id.startsWith("file-"));
      expect(ids.sort()).toEqual(["file-1", "file-2", "file-3"]);
    });

    it("sends stdin the same way", async () => {
      const res = await runCli(["send", "--storage-mode", "confirmed"], env("send", "w"), lines("stdin"));
      expect(res.code, res.stderr).toBe(1);
      expectSummary(res.stdout);
      const rows = (await stored("send")).filter((e) => e.id.startsWith("stdin-"));
      expect(rows.map((e) => e.id).sort()).toEqual(["stdin-1", "stdin-2", "stdin-3"]);
      expect(rows.find((e) => e.id === "stdin-3")).toMatchObject({
        type: "purchase",
        importance: "high",
        userId: "u1",
      });
    });

    it("exits 0 when every line was accepted, in batches", async () => {
      const input = Array.from({ length: 250 }, (_, i) => JSON.stringify({ id: `bulk-${i}`, type: "bulk" })).join("\n");
      const res = await runCli(["send", "--batch-size", "100"], env("send", "w"), `${input}\n`);
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({ sent: 250, accepted: 250, rejected: [], invalid: [] });
      expect((await stored("send")).filter((e) => e.id.startsWith("bulk-"))).toHaveLength(250);
    });
  });

  describe("mv and stats", () => {
    beforeAll(async () => {
      const c = client("views");
      await Promise.all([...[1, 2, 3].map((i) => c.page("/pricing", { i })), c.page("/docs"), c.track("signup", {})]);
      // Views follow ingest within about a second (replicas push to the tenant's view aggregator).
      await eventually(async () => {
        const rows = (await admin("views", "/buffer/mv/pageviews")).rows as { views: number }[];
        return rows.reduce((n, r) => n + r.views, 0) === 4;
      });
    });

    it("mv prints the merged view as JSON when piped, passing --window and --limit", async () => {
      const res = await runCli(["mv", "pageviews", "--window", "1h", "--limit", "1"], env("views", "r"));
      expect(res.code, res.stderr).toBe(0);
      const view = JSON.parse(res.stdout);
      expect(view).toMatchObject({ view: "pageviews", rows: [{ path: "/pricing", views: 3 }] });
      expect(view.to - view.from).toBe(3_600_000);

      const all = JSON.parse((await runCli(["mv", "pageviews"], env("views", "r"))).stdout);
      expect(all.rows.map((r: { path: string; views: number }) => [r.path, r.views])).toEqual([
        ["/pricing", 3],
        ["/docs", 1],
      ]);
    });

    it("mv --step prints the view over time, and a step that is not whole minutes fails with why", async () => {
      const res = await runCli(["mv", "pageviews", "--window", "1h", "--step", "5m"], env("views", "r"));
      expect(res.code, res.stderr).toBe(0);
      const view = JSON.parse(res.stdout);
      expect(view).toMatchObject({ step: 300_000, total: { path: "*", views: 4 } });
      expect([12, 13]).toContain(view.buckets.length); // 13 unless the window starts on a 5-minute boundary
      const bad = await runCli(["mv", "pageviews", "--step", "30s"], env("views", "r"));
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/400 bad_request: step must be a whole number of minutes/);
    });

    it("mv of an unknown view fails with the server's reason", async () => {
      const res = await runCli(["mv", "nope"], env("views", "r"));
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/404 not_found: no view "nope"/);
    });

    it("stats prints the shards, and --aggregate the totals", async () => {
      const res = await runCli(["stats"], env("views", "r"));
      expect(res.code, res.stderr).toBe(0);
      const stats = JSON.parse(res.stdout);
      expect(stats.tenant).toBe("views");
      expect(stats.shards.length).toBeGreaterThan(0);

      const agg = JSON.parse((await runCli(["stats", "--aggregate"], env("views", "r"))).stdout);
      expect(agg).toMatchObject({ tenant: "views", stored: 5, rejected: 0 });
    });

    it("refuses a write key with the server's 403", async () => {
      const res = await runCli(["stats", "--url", url, "--key", "views-w"], {});
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/403 forbidden/);
    });
  });

  describe("query", () => {
    it("runs SQL over the lake and the live buffers together", async () => {
      const c = client("query");
      await Promise.all([c.track("pageview", { path: "/" }), c.track("pageview", { path: "/b" })]);
      const flushed = (await admin("query", "/flush", "POST")) as { files: unknown[] };
      expect(flushed.files.length, "pageviews written to the lake").toBeGreaterThan(0);
      await Promise.all([
        ...[1, 2, 3].map((i) => c.track("signup", { i })),
        c.track("error", { message: "boom" }, { importance: "critical" }),
      ]);

      const res = await runCli(
        ["query", "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY type"],
        env("query", "r"),
      );
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout)).toEqual([
        { type: "error", n: 1 },
        { type: "pageview", n: 2 },
        { type: "signup", n: 3 },
      ]);
    });

    it("has the context columns in its events table, as the lake has them", async () => {
      const res = await runCli(
        [
          "query",
          "SELECT column_name, column_type FROM (DESCRIBE events) WHERE column_name IN ('country', 'device_type', 'is_bot') ORDER BY 1",
        ],
        env("query", "r"),
      );
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout)).toEqual([
        { column_name: "country", column_type: "VARCHAR" },
        { column_name: "device_type", column_type: "VARCHAR" },
        { column_name: "is_bot", column_type: "BOOLEAN" },
      ]);
    });

    it("passes --type to GET /events, prints NDJSON with --ndjson, and gives data as JSON text", async () => {
      const res = await runCli(
        [
          "query",
          "SELECT data, ts < received_at + INTERVAL 1 MINUTE AS recent FROM events ORDER BY data",
          "--type",
          "pageview",
          "--ndjson",
        ],
        env("query", "r"),
      );
      expect(res.code, res.stderr).toBe(0);
      expect(
        res.stdout
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l)),
      ).toEqual([
        { data: '{"path":"/"}', recent: true },
        { data: '{"path":"/b"}', recent: true },
      ]);
    });

    it("reports a SQL error and exits 1", async () => {
      const res = await runCli(["query", "SELECT nope FROM events"], env("query", "r"));
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/nope/);
      // A json extension function the CLI does not give (it gives ->> and the other extraction
      // functions) fails at once instead of waiting to download the extension.
      const json = await runCli(["query", "SELECT json_structure(data) FROM events"], env("query", "r"));
      expect(json.code).toBe(1);
      expect(json.stderr).toMatch(/json extension/);
    });
  });

  describe("lake", () => {
    let first = 0;
    let second = 0;
    const dirs: string[] = [];
    afterAll(() => {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    it("query --snapshot reads the lake as of that snapshot, without what came after or is buffered", async () => {
      const c = client("lake");
      await Promise.all([c.track("one", { n: 1 }), c.track("one", { n: 2 })]);
      await admin("lake", "/flush", "POST");
      first = ((await admin("lake", "/snapshots?limit=1")).snapshots as { id: number }[])[0]?.id as number;
      await Promise.all([c.track("two", { n: 3 }), c.track("two", { n: 4 }), c.track("two", { n: 5 })]);
      await admin("lake", "/flush", "POST");
      second = ((await admin("lake", "/snapshots?limit=1")).snapshots as { id: number }[])[0]?.id as number;
      await c.track("three", { n: 6 }); // buffered only
      expect(second).toBeGreaterThan(first);

      const sql = "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY type";
      const then = await runCli(["query", sql, "--snapshot", String(first)], env("lake", "r"));
      expect(then.code, then.stderr).toBe(0);
      expect(JSON.parse(then.stdout)).toEqual([{ type: "one", n: 2 }]);
      const now = await runCli(["query", sql], env("lake", "r"));
      expect(JSON.parse(now.stdout)).toEqual([
        { type: "one", n: 2 },
        { type: "three", n: 1 },
        { type: "two", n: 3 },
      ]);
      const gone = await runCli(["query", sql, "--snapshot", "99999"], env("lake", "r"));
      expect(gone.code).toBe(1);
      expect(gone.stderr).toMatch(/404 not_found: no snapshot 99999/);
    });

    it("lake export writes the spec's tables, and DuckDB reading each snapshot's listed files gets that snapshot's rows", async () => {
      // The lake's objects, copied to a folder that stands for the bucket's root.
      const root = (await downloadEvents(mf)).dir;
      dirs.push(root);
      const file = join(scratch, "lake.sqlite");
      const res = await runCli(["lake", "export", file, "--data-path", `${root}/`], env("lake", "r"));
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toContain(`ATTACH 'ducklake:sqlite:${file}' AS lake (DATA_PATH '${root}/')`);
      expect(res.stderr).not.toContain("ExperimentalWarning");
      expect((await runCli(["lake", "export", file], env("lake", "r"))).code).toBe(2); // exists: --force

      const db = new DatabaseSync(file, { readOnly: true });
      try {
        const spec = parseDdl(readFileSync(join(ROOT, "src/lake/catalog/ducklake-1.0.sql"), "utf8"));
        expect(spec).toHaveLength(28);
        for (const t of spec) {
          const columns = db.prepare(`SELECT name, type FROM pragma_table_info(?)`).all(t.name);
          expect(columns).toEqual(t.columns.map((c) => ({ name: c.name, type: sqliteType(c.type) })));
        }
        for (const snapshot of [first, second]) {
          const files = db
            .prepare(
              `SELECT m.value || s.path || t.path || d.path AS path FROM ducklake_data_file d
               JOIN ducklake_table t USING (table_id) JOIN ducklake_schema s USING (schema_id)
               JOIN ducklake_metadata m ON m.key = 'data_path'
               WHERE t.table_name = 'events' AND ?1 >= d.begin_snapshot AND (?1 < d.end_snapshot OR d.end_snapshot IS NULL)`,
            )
            .all(snapshot)
            .map((r) => `'${r.path}'`);
          const rows = await duckdb(`SELECT id FROM read_parquet([${files.join(", ")}]) ORDER BY id`);
          const answer = (await admin("lake", `/events?limit=1000&snapshot=${snapshot}`)).events as StoredRow[];
          expect(rows.map((r) => r.id)).toEqual(answer.map((e) => e.id).sort());
          expect(rows).toHaveLength(snapshot === first ? 2 : 5);
        }
      } finally {
        db.close();
      }
    });
  });

  describe("usage", () => {
    it.each(["tail", "send", "mv", "stats", "query", "rollups", "lake"])(
      "%s --help prints its usage and exits 0",
      async (command) => {
        const res = await runCli([command, "--help"]);
        expect(res.code).toBe(0);
        expect(res.stdout).toMatch(new RegExp(`^Usage: ducktail ${command}`));
        expect(res.stdout).toContain("--url");
      },
    );

    it("--help lists every command", async () => {
      const res = await runCli(["--help"]);
      expect(res.code).toBe(0);
      for (const c of ["tail", "send", "mv", "stats", "query", "rollups", "lake"])
        expect(res.stdout).toMatch(new RegExp(`^  ${c} `, "m"));
    });

    it("an unknown flag or command exits 2 with a clear error", async () => {
      const flag = await runCli(["tail", "--tpye", "x"]);
      expect(flag.code).toBe(2);
      expect(flag.stderr).toMatch(/Unknown option '--tpye'/);
      expect(flag.stderr).toContain("ducktail tail --help");
      const command = await runCli(["tial"]);
      expect(command.code).toBe(2);
      expect(command.stderr).toMatch(/unknown command "tial"/);
      const where = await runCli(["tail", "--where", "data.status"]);
      expect(where.code).toBe(2);
      expect(where.stderr).toMatch(/--where "data.status" must be/);
    });
  });
});
