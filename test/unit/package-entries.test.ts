// Every entry of package.json's "exports" is real: the built ones import in plain Node under the
// package's own name, the Worker-side ones (TypeScript for a Worker's bundler) bundle and export
// what the README promises, and the README lists each of them.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  exports: Record<string, { types: string; default: string }>;
};

/** What each entry must export (names the original DuckTail package had among them). */
const EXPECTED: Record<string, string[]> = {
  ".": [
    "BufferCoordinator",
    "BufferReplica",
    "LakeCatalog",
    "SessionRecording",
    "createEvent",
    "normalizeEvent",
    "DuckTailError",
    "validateBatch",
  ],
  "./client": ["DuckTailClient", "DuckTailWSClient", "DuckTailClientError"],
  "./console": ["wrapConsole", "unwrapConsole", "configure", "flush"],
  "./protocol": ["ErrorCode", "validateBatch", "DEFAULT_LIMITS"],
  "./sinks": ["R2ParquetSink", "R2NdjsonSink", "WebhookSink"],
  "./schema": ["createEvent", "normalizeEvent", "IMPORTANCE"],
  "./do": ["BufferCoordinator", "BufferReplica", "LakeCatalog", "SessionRecording"],
};

const isBuilt = (entry: string) => (pkg.exports[entry]?.default ?? "").startsWith("./dist/");

/** The names a Worker-side entry exports (it needs workerd to run), bundled as a Worker's bundler would. */
async function exportsOf(entry: string): Promise<string[]> {
  const out = await esbuild.build({
    entryPoints: [join(root, pkg.exports[entry]?.default ?? "")],
    bundle: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:*", "node:*", "*.wasm", "ws"],
    // wrangler's default module rules import .sql (the lake catalog's DDL) as text.
    loader: { ".sql": "text" },
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  return Object.values(out.metafile.outputs)[0]?.exports ?? [];
}

describe("package entries", () => {
  it("are the ones the README lists, each with what it exports", () => {
    expect(Object.keys(pkg.exports).sort()).toEqual(Object.keys(EXPECTED).sort());
    const readme = readFileSync(join(root, "README.md"), "utf8");
    for (const entry of Object.keys(pkg.exports)) {
      const name = entry === "." ? "ducktail" : `ducktail/${entry.slice(2)}`;
      expect(readme, name).toContain(`| \`${name}\` |`);
    }
  });

  it.each(Object.keys(EXPECTED).filter((e) => !isBuilt(e)))(
    "%s (for a Worker's bundler) exports its names",
    async (entry) => {
      const names = await exportsOf(entry);
      for (const name of EXPECTED[entry] ?? []) expect(names, `${entry} exports ${name}`).toContain(name);
    },
  );

  it("imports the built entries in plain Node by the package's name, with their names", () => {
    const built = Object.keys(EXPECTED).filter(isBuilt);
    const script = `
      const names = {};
      for (const entry of ${JSON.stringify(built)}) names[entry] = Object.keys(await import("ducktail" + entry.slice(1)));
      const schema = await import("ducktail/schema");
      const n = schema.normalizeEvent(schema.createEvent("signup", { plan: "pro" }));
      console.log(JSON.stringify({ names, event: { type: n.type, data: n.data, importance: n.importance } }));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, DUCKTAIL_ENDPOINT: "" },
    });
    const { names, event } = JSON.parse(out.trim().split("\n").pop() as string);
    for (const entry of built) expect(names[entry], entry).toEqual(expect.arrayContaining(EXPECTED[entry] ?? []));
    expect(event).toEqual({ type: "signup", data: '{"plan":"pro"}', importance: "normal" });
  });
});

describe("createEvent and normalizeEvent", () => {
  it("creates an event with an id and a time, and normalizes it the way the server stores it", async () => {
    const { createEvent, normalizeEvent } = await import("../../src/protocol/schema");
    const e = createEvent(
      "signup",
      { plan: "pro" },
      { userId: "u1", importance: "high", timestamp: 1_700_000_000_000 },
    );
    expect(e).toMatchObject({ type: "signup", data: { plan: "pro" }, userId: "u1", importance: "high" });
    expect(e.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(normalizeEvent(e)).toEqual({
      id: e.id,
      ts: 1_700_000_000_000,
      source: "unknown",
      type: "signup",
      importance: "high",
      userId: "u1",
      anonymousId: null,
      sessionId: null,
      data: '{"plan":"pro"}',
    });
  });

  it("throws a TypeError for an object where the type goes, and the server's code for an invalid event", async () => {
    const { createEvent, normalizeEvent } = await import("../../src/protocol/schema");
    expect(() => createEvent({ type: "x" } as never)).toThrow(TypeError);
    expect(() => createEvent("x", "text" as never)).toThrow(/data must be a plain object/);
    expect(() => normalizeEvent({ type: "x", importance: "urgent" })).toThrow(
      expect.objectContaining({ code: "invalid_field" }),
    );
    expect(() => normalizeEvent({ type: "x", timestamp: "yesterday" })).toThrow(
      expect.objectContaining({ code: "invalid_timestamp" }),
    );
  });
});
