import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { nodeDuckDB } from "../../sdk/cli/duckdb";
import { fixVarcharUdfs, jsonFunctions, parsePath } from "../../sdk/lake/json-functions";

const fn = (name: string) => {
  const f = jsonFunctions().find((x) => x.names.includes(name));
  if (!f) throw new Error(`no ${name}`);
  return f.fn;
};

const doc = JSON.stringify({
  path: "/docs",
  ms: 42,
  ok: true,
  none: null,
  utm: { source: "hn", "a.b": "dotted" },
  tags: ["x", "y", "z"],
  "a/b": 1,
});

describe("JSON paths as DuckDB reads them", () => {
  it("parses JSONPath, JSON pointers, bare keys and indexes", () => {
    expect(parsePath("$")).toEqual([]);
    expect(parsePath("$.utm.source")).toEqual(["utm", "source"]);
    expect(parsePath('$.utm."a.b"')).toEqual(["utm", "a.b"]);
    expect(parsePath("$.tags[1]")).toEqual(["tags", 1]);
    expect(parsePath("$.tags[#-1]")).toEqual(["tags", -1]);
    expect(parsePath("/utm/source")).toEqual(["utm", "source"]);
    expect(parsePath("/tags/0")).toEqual(["tags", 0]);
    expect(parsePath("/a~1b")).toEqual(["a/b"]);
    expect(parsePath("path")).toEqual(["path"]);
    expect(parsePath(2)).toEqual([2]);
  });

  it("refuses malformed paths and wildcards, saying where", () => {
    expect(() => parsePath("$.tags[")).toThrow(/unterminated \[/);
    expect(() => parsePath("$.tags[x]")).toThrow(/bad array index/);
    expect(() => parsePath("$.tags[*]")).toThrow(/wildcards/);
    expect(() => parsePath("$x")).toThrow(/expected "\." or "\["/);
  });
});

describe("the JSON functions", () => {
  it("->> answers strings as they are, other values as JSON text, and NULL for null or nothing", () => {
    const get = fn("->>");
    expect(get(doc, "path")).toBe("/docs");
    expect(get(doc, "$.ms")).toBe("42");
    expect(get(doc, "$.ok")).toBe("true");
    expect(get(doc, "$.none")).toBeNull();
    expect(get(doc, "$.missing")).toBeNull();
    expect(get(doc, "$.utm")).toBe('{"source":"hn","a.b":"dotted"}');
    expect(get(doc, '$.utm."a.b"')).toBe("dotted");
    expect(get(doc, "/utm/source")).toBe("hn");
    expect(get(doc, "$.tags[#-1]")).toBe("z");
    expect(get(JSON.stringify(["a", "b"]), 1)).toBe("b");
    expect(get(null, "path")).toBeNull();
    expect(get(doc, "$.path.deeper")).toBeNull();
  });

  it("-> answers JSON text, 'null' for JSON null; json_value only scalars; the rest as the extension", () => {
    expect(fn("->")(doc, "$.path")).toBe('"/docs"');
    expect(fn("->")(doc, "$.none")).toBe("null");
    expect(fn("->")(doc, "$.missing")).toBeNull();
    expect(fn("json_value")(doc, "$.ms")).toBe("42");
    expect(fn("json_value")(doc, "$.utm")).toBeNull();
    expect(fn("json_exists")(doc, "$.none")).toBe(true);
    expect(fn("json_exists")(doc, "$.missing")).toBe(false);
    expect(fn("json_valid")("{")).toBe(false);
    expect(fn("json_valid")(doc)).toBe(true);
    expect(fn("json_type")(doc, "$.utm")).toBe("OBJECT");
    expect(fn("json_type")(doc, "$.ms")).toBe("BIGINT");
    expect(fn("json_type")(doc, "$.none")).toBe("NULL");
    expect(fn("json_array_length")(doc, "$.tags")).toBe(3);
    expect(fn("json_array_length")(doc)).toBe(0);
  });

  it("fails on malformed JSON, naming it", () => {
    expect(() => fn("->>")('{"a":', "a")).toThrow(/malformed JSON: \{"a":/);
  });
});

describe("the fix for DuckDB-wasm's VARCHAR answers", () => {
  it("finds exactly the one line to fix in the blocking Node build and the browser worker", () => {
    const require = createRequire(import.meta.url);
    const dist = require.resolve("@duckdb/duckdb-wasm/dist/duckdb-node-blocking.cjs").replace(/[^/]+$/, "");
    for (const file of ["duckdb-node-blocking.cjs", "duckdb-browser-eh.worker.js"]) {
      const script = readFileSync(dist + file, "utf8");
      const fixed = fixVarcharUdfs(script);
      expect(fixed).not.toBeNull();
      expect((fixed as string).length).toBeGreaterThan(script.length);
    }
    expect(fixVarcharUdfs("no such line")).toBeNull();
  });
});

describe("JSON in the CLI's DuckDB", () => {
  it("runs ->>, ->, json_extract_string and friends over VARCHAR JSON, in SQL", async () => {
    const { query } = await nodeDuckDB();
    await query(
      `CREATE TABLE events AS SELECT * FROM (VALUES ('{"path":"/a","ms":120,"utm":{"source":"hn"}}'), ('{"path":"/a","ms":80}'), ('{"path":"/b"}'), ('{"other":1}')) t(data)`,
    );
    const byPath = await query(
      "SELECT data->>'path' AS path, count(*)::INTEGER AS n, sum((data->>'$.ms')::INTEGER)::INTEGER AS ms FROM events GROUP BY 1 ORDER BY 1 NULLS LAST",
    );
    expect(byPath.rows).toEqual([
      { path: "/a", n: 2, ms: 200 },
      { path: "/b", n: 1, ms: null },
      { path: null, n: 1, ms: null },
    ]);
    const nested = await query(
      "SELECT json_extract_string(data, '/utm/source') AS s, data->'$.utm' AS utm, json_exists(data, '$.ms') AS has FROM events LIMIT 2",
    );
    expect(nested.rows).toEqual([
      { s: "hn", utm: '{"source":"hn"}', has: true },
      { s: null, utm: null, has: true },
    ]);
    expect((await query("SELECT count(*)::INTEGER AS n FROM events WHERE data->>'path' = '/a'")).rows).toEqual([
      { n: 2 },
    ]);
    await expect(query(`SELECT '{"a":'->>'a' AS x`)).rejects.toThrow(/malformed JSON/);
    // -> is still a lambda's arrow where a function takes one.
    expect((await query("SELECT list_transform([1, 2], x -> x + 1) AS l")).rows).toEqual([{ l: "[2, 3]" }]);
  });
});
