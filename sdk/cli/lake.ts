import { existsSync, rmSync } from "node:fs";
import type { CatalogExport } from "../../src/protocol/lake";
import { parseCommand, resolveConfig, UsageError } from "./args";
import { CONNECTION_HELP, type Command, printHelp } from "./command";
import { get } from "./http";

export const lake: Command = {
  name: "lake",
  summary: "the tenant's lake as a DuckLake catalog: ducktail lake export lake.sqlite (read key)",
  help: `Usage: ducktail lake export <file> [--data-path <url>] [--force]

Writes the tenant's DuckLake catalog (spec 1.0: every snapshot, data file, delete file, column
statistics and partition value) to <file>, a SQLite database made with Node's node:sqlite
(Node ≥ 22.5), from GET /lake/catalog. DuckDB (1.5.2 or later, with its ducklake and sqlite
extensions) then reads the lake as a table, at any snapshot the catalog still holds:

  ATTACH 'ducklake:sqlite:lake.sqlite' AS lake (DATA_PATH 's3://<bucket>/');
  SELECT type, count(*) FROM lake.events GROUP BY 1;
  SELECT count(*) FROM lake.events AT (VERSION => 3);

The file paths in it are relative to the bucket's root (data_path): DuckDB must reach the bucket
there (an R2 S3 secret, or a local copy).

Options:
  --data-path <url>  the bucket's root as DuckDB reaches it, ending in / (default: the catalog's,
                     the Worker's LAKE_DATA_PATH); ATTACH's DATA_PATH must name the same
  --force            replace <file> if it exists

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values, positionals } = parseCommand(
      "lake",
      argv,
      { "data-path": { type: "string" }, force: { type: "boolean" } },
      2,
    );
    if (values.help) return printHelp(io, lake.help);
    const [action, file] = positionals;
    if (action !== "export") throw new UsageError(`say export${action ? `, not "${action}"` : ""}`, "lake");
    if (!file) throw new UsageError("lake export needs a file to write, e.g. lake.sqlite", "lake");
    if (existsSync(file) && !values.force) throw new UsageError(`${file} exists; --force replaces it`, "lake");
    const config = resolveConfig(values, io.env);
    const res = await get(config, "/lake/catalog", { dataPath: values["data-path"] });
    const catalog = (await res.json()) as CatalogExport;
    const rows = await writeCatalog(file, catalog);
    const snapshots = catalog.tables.ducklake_snapshot?.rows.length ?? 0;
    const files = catalog.tables.ducklake_data_file?.rows.length ?? 0;
    io.stderr.write(
      `wrote ${file}: DuckLake ${catalog.version}, ${snapshots} snapshots, ${files} data files, ${rows} rows in all\n` +
        `  ATTACH 'ducklake:sqlite:${file}' AS lake (DATA_PATH '${catalog.dataPath}');\n`,
    );
    return 0;
  },
};

/**
 * Writes an exported catalog as a new SQLite database: the spec's tables as `statements` create
 * them, then every row, in one transaction. Returns the rows written.
 */
export async function writeCatalog(file: string, catalog: CatalogExport): Promise<number> {
  const sqlite = await importSqlite().catch(() => {
    throw new UsageError(`lake export needs Node ≥ 22.5 (node:sqlite); this is Node ${process.versions.node}`, "lake");
  });
  rmSync(file, { force: true });
  const db = new sqlite.DatabaseSync(file);
  let written = 0;
  try {
    db.exec("BEGIN");
    for (const statement of catalog.statements) db.exec(statement);
    for (const [table, { columns, rows }] of Object.entries(catalog.tables)) {
      if (rows.length === 0) continue;
      const insert = db.prepare(
        `INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
      );
      for (const row of rows) insert.run(...row);
      written += rows.length;
    }
    db.exec("COMMIT");
  } finally {
    db.close();
  }
  return written;
}

/**
 * `node:sqlite` without the ExperimentalWarning Node prints when it loads (a line on stderr of an
 * export that went right); any other warning meanwhile is printed as ever.
 */
async function importSqlite(): Promise<typeof import("node:sqlite")> {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (String(warning).includes("SQLite is an experimental feature")) return;
    (emit as (...args: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return await import("node:sqlite");
  } finally {
    process.emitWarning = emit;
  }
}
