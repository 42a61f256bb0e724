// DuckDB's JSON extraction functions for a DuckDB-wasm that cannot load the `json` extension (it is
// downloaded on first use, and the CLI must work offline): `data->>'path'`, `data->'$.utm.source'`,
// `json_extract_string(data, '/a/0')`… as JavaScript scalar functions over the JSON text, with the
// extension's semantics for what they cover (see jsonFunctions). Wildcard paths and lists of paths
// (which answer lists) are not covered: they fail, saying so.

/** One step of a path: an object key, or an array index (negative: from the end). */
type Step = string | number;

/** A JSON path as DuckDB reads it: `$.a."b c"[0][#-1]`, a JSON pointer `/a/0`, a bare key, or an index. */
export function parsePath(path: string | number): Step[] {
  if (typeof path === "number") return [path];
  if (path.startsWith("$")) return jsonPath(path);
  if (path.startsWith("/")) {
    return path
      .slice(1)
      .split("/")
      .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"))
      .map((s) => (/^(0|[1-9]\d*)$/.test(s) ? Number(s) : s));
  }
  return [path];
}

function jsonPath(path: string): Step[] {
  const steps: Step[] = [];
  let i = 1;
  const fail = (why: string): never => {
    throw new Error(`JSON path ${JSON.stringify(path)}: ${why} at character ${i + 1}`);
  };
  while (i < path.length) {
    const c = path[i];
    if (c === ".") {
      i++;
      if (path[i] === '"') {
        const end = path.indexOf('"', i + 1);
        if (end < 0) fail("unterminated quoted key");
        steps.push(path.slice(i + 1, end));
        i = end + 1;
      } else {
        let end = i;
        while (end < path.length && path[end] !== "." && path[end] !== "[") end++;
        const key = path.slice(i, end);
        if (key === "") fail("empty key");
        if (key === "*") fail("wildcards answer lists, which these functions do not (the json extension does)");
        steps.push(key);
        i = end;
      }
    } else if (c === "[") {
      const end = path.indexOf("]", i);
      if (end < 0) fail("unterminated [");
      const inside = path.slice(i + 1, end).trim();
      if (inside === "*") fail("wildcards answer lists, which these functions do not (the json extension does)");
      const fromEnd = /^#-(\d+)$/.exec(inside);
      if (fromEnd) steps.push(-Number(fromEnd[1]));
      else if (/^\d+$/.test(inside)) steps.push(Number(inside));
      else fail(`bad array index "${inside}"`);
      i = end + 1;
    } else {
      fail(`expected "." or "[" but found ${JSON.stringify(c)}`);
    }
  }
  return steps;
}

/** The value at `steps`, or undefined when the path selects nothing. */
function select(value: unknown, steps: Step[]): unknown {
  let at = value;
  for (const step of steps) {
    if (typeof step === "number") {
      if (!Array.isArray(at)) return undefined;
      at = at[step < 0 ? at.length + step : step];
    } else {
      if (at === null || typeof at !== "object" || Array.isArray(at) || !Object.hasOwn(at, step)) return undefined;
      at = (at as Record<string, unknown>)[step];
    }
  }
  return at;
}

/**
 * JSON text to its value. The last document parsed is kept: `data->>'a', data->>'b'` on one row
 * parses its `data` once. Malformed text fails the query, as in the json extension.
 */
function parser(): (text: string) => unknown {
  let lastText: string | null = null;
  let lastValue: unknown;
  return (text) => {
    if (text !== lastText) {
      try {
        lastValue = JSON.parse(text);
      } catch {
        throw new Error(`malformed JSON: ${text.length > 80 ? `${text.slice(0, 80)}…` : text}`);
      }
      lastText = text;
    }
    return lastValue;
  };
}

/** What a function returns. */
export type JsonReturn = "varchar" | "boolean" | "integer";

export interface JsonFunction {
  /** Its names: the function and its alias or operator. */
  names: string[];
  returns: JsonReturn;
  /** Its arguments (a "boolean" function has a fixed count: see registerJsonFunctions). */
  arity: number;
  fn: (json: string | null, path?: string | number | null) => string | boolean | number | null;
}

/** The functions (each a fresh parser cache, so two connections do not share one). */
export function jsonFunctions(): JsonFunction[] {
  const parse = parser();
  const at = (json: string, path: string | number | undefined) =>
    path === undefined ? parse(json) : select(parse(json), parsePath(path));
  /** A function of the value at the path (undefined: nothing there); SQL NULL in, NULL out. */
  const ofValue =
    (answer: (v: unknown) => string | boolean | number | null): JsonFunction["fn"] =>
    (json, path) =>
      json === null || path === null ? null : answer(at(json, path));
  const text = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
  return [
    {
      // ->> : a string as is, anything else as its JSON text; JSON null and nothing are NULL.
      names: ["json_extract_string", "json_extract_path_text", "->>"],
      returns: "varchar",
      arity: 2,
      fn: ofValue((v) => (v === undefined || v === null ? null : text(v))),
    },
    {
      // -> : the JSON text of what the path selects ('null' for JSON null); NULL when nothing.
      names: ["json_extract", "json_extract_path", "->"],
      returns: "varchar",
      arity: 2,
      fn: ofValue((v) => (v === undefined ? null : JSON.stringify(v))),
    },
    {
      names: ["json_value"],
      returns: "varchar",
      arity: 2,
      fn: ofValue((v) => (v === undefined || (v !== null && typeof v === "object") ? null : JSON.stringify(v))),
    },
    {
      names: ["json_exists"],
      returns: "boolean",
      arity: 2,
      fn: ofValue((v) => v !== undefined),
    },
    {
      names: ["json_valid"],
      returns: "boolean",
      arity: 1,
      fn: (json) => {
        if (json === null) return null;
        try {
          JSON.parse(json);
          return true;
        } catch {
          return false;
        }
      },
    },
    {
      // DuckDB's type names: OBJECT, ARRAY, VARCHAR, BIGINT, DOUBLE, BOOLEAN, NULL.
      names: ["json_type"],
      returns: "varchar",
      arity: 2,
      fn: ofValue((v) => {
        if (v === undefined) return null;
        if (v === null) return "NULL";
        if (Array.isArray(v)) return "ARRAY";
        if (typeof v === "object") return "OBJECT";
        if (typeof v === "string") return "VARCHAR";
        if (typeof v === "boolean") return "BOOLEAN";
        return Number.isInteger(v) ? "BIGINT" : "DOUBLE";
      }),
    },
    {
      names: ["json_array_length"],
      returns: "integer",
      arity: 2,
      fn: ofValue((v) => (Array.isArray(v) ? v.length : v === undefined ? null : 0)),
    },
  ];
}

/** What registering the functions needs of a DuckDB-wasm connection (the blocking builds have it). */
export interface UdfConnection {
  createScalarFunction(name: string, returns: unknown, fn: (...args: never[]) => unknown): void;
  query(sql: string): unknown;
}

/** Arrow's types the functions answer in (the `apache-arrow` DuckDB-wasm itself uses). */
export interface ArrowTypes {
  Utf8: new () => unknown;
  Int32: new () => unknown;
}

/**
 * Registers the functions on a connection, and turns off the download of known extensions on it
 * (none can be downloaded offline). DuckDB-wasm's scalar functions cannot answer BOOLEAN, so a
 * boolean one is registered as `<name>__int` (1, 0 or NULL) behind a macro of its name.
 */
export function registerJsonFunctions(conn: UdfConnection, arrow: ArrowTypes): void {
  // Defining a name the json extension owns would make DuckDB fetch the extension first.
  conn.query("SET autoinstall_known_extensions = false");
  conn.query("SET autoload_known_extensions = false");
  for (const f of jsonFunctions()) {
    const returns = f.returns === "varchar" ? new arrow.Utf8() : new arrow.Int32();
    if (f.returns !== "boolean") {
      for (const name of f.names) conn.createScalarFunction(name, returns, f.fn as never);
      continue;
    }
    const asInt = (json: string | null, path?: string | number | null) => {
      const answer = f.fn(json, path);
      return answer === null ? null : answer ? 1 : 0;
    };
    const args = ["json", "path"].slice(0, f.arity).join(", ");
    for (const name of f.names) {
      conn.createScalarFunction(`${name}__int`, returns, asInt as never);
      conn.query(`CREATE OR REPLACE MACRO ${name}(${args}) AS ${name}__int(${args}) = 1`);
    }
  }
}

/**
 * DuckDB-wasm's worker script with every connection it opens passed to `__ducktailConnected` (see
 * sdk/dashboard/explorer/worker-json.ts): null when its CONNECT handler is not the one expected.
 */
export function hookWorkerConnect(script: string): string | null {
  return replaceOnce(
    script,
    /case"CONNECT":\{let (\w+)=this\._bindings\.connect\(\);/g,
    (line, conn) => `${line}globalThis.__ducktailConnected?.(${conn});`,
  );
}

/**
 * DuckDB-wasm 1.32's scalar functions answer VARCHAR with each string's offset in the buffer it
 * allocates where DuckDB reads an address, so every string comes back as NUL bytes. This fixes its
 * script's one line that does it: null when the script does not have that line (another version),
 * and then the functions are not registered.
 */
export function fixVarcharUdfs(script: string): string | null {
  return replaceOnce(
    script,
    /(let (\w+)=\w+\._malloc\((\w+)\),\w+=\w+\.HEAPU8\.subarray\(\2,\2\+\3\),(\w+)=0;for\(let (\w+)=0;\5<\w+\.rows;\+\+\5\)\{(\w+)\[\5\]=)\4;/g,
    (_, head, base, _len, offset) => `${head}${base}+${offset};`,
  );
}

/** `script` with the one match of `pattern` (global) replaced; null unless it matches exactly once. */
function replaceOnce(
  script: string,
  pattern: RegExp,
  replace: (match: string, ...groups: string[]) => string,
): string | null {
  if ([...script.matchAll(pattern)].length !== 1) return null;
  return script.replace(pattern, replace);
}
