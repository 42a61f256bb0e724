// The Explorer (#/explorer?sql=…&from=…&to=…): SQL over the tenant's events with DuckDB-wasm in
// the browser. The lake reader (sdk/lake/reader.ts) fills the table `events` with only what the
// query needs (its time range's files, the columns it names, by HTTP Range), plus what the
// shards still buffer; the answer shows as a table and a chart, with the bytes read against the
// objects' total size. The address holds the query, so it can be shared.
import type { QueriedEvent } from "../../lake/buffered";
import { type LakeRange, type LakeSource, type LoadStats, loadEvents } from "../../lake/reader";
import { type QueryResult, runQuery } from "../../lake/results";
import { fill, h, messageOf, num } from "../dom";
import { drawChart, timeSeconds } from "../explorer/chart";
import { exclusive, explorerEngine } from "../explorer/engine";
import type { DashboardContext, Page } from "../page";
import { hasReplay, recordedSessions } from "../recorded";

const DEFAULT_SQL = "SELECT type, count(*) AS events FROM events GROUP BY type ORDER BY events DESC";
/** Rows kept of an answer (the chart draws them), and shown in the table. */
const MAX_ROWS = 10_000;
const MAX_TABLE_ROWS = 1000;
/** Most buffered rows one query asks for (GET /events' NDJSON limit). */
const MAX_BUFFERED = 1_000_000;
const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A time field: empty (`fallback`), a duration back from now (30m, 24h, 7d), epoch ms or ISO-8601. */
export function timeField(raw: string, now: number, fallback: number, name: string): number {
  const text = raw.trim();
  if (text === "") return fallback;
  const ago = /^(\d+)\s*([mhd])$/.exec(text);
  if (ago) return now - Number(ago[1]) * (UNITS[ago[2] as string] as number);
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) throw new Error(`${name}: "${raw}" is not a time (like 24h, 7d, ISO-8601 or epoch ms)`);
  return ms;
}

function lakeSource(ctx: DashboardContext): LakeSource {
  const range = (r: LakeRange) => `from=${Math.floor(r.from)}&to=${Math.ceil(r.to)}`;
  return {
    base: ctx.base,
    key: ctx.key || undefined,
    files: async (r) => (await ctx.api(`/lake/files?${range(r)}`)).json(),
    async buffered(r) {
      const res = await ctx.api(`/events?${range(r)}&buffered=only&format=ndjson&limit=${MAX_BUFFERED}`);
      return (await res.text())
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as QueriedEvent);
    },
  };
}

const kib = (n: number) => (n < 1024 * 1024 ? `${num(n / 1024, 1)} KiB` : `${num(n / 1024 / 1024, 2)} MiB`);

function statsText(s: LoadStats, result: QueryResult, ms: number): string {
  const share = s.lakeBytes > 0 ? ` (${num((100 * s.bytesRead) / s.lakeBytes, 1)} %)` : "";
  return (
    `${result.truncated ? "first " : ""}${num(result.rows.length)} rows · read ${kib(s.bytesRead)} of ${kib(s.lakeBytes)}${share} in ` +
    `${num(s.files)} files, ${num(s.requests)} requests · ${num(s.lakeRows)} lake + ${num(s.bufferedRows)} buffered ` +
    `events · ${num(ms)} ms`
  );
}

/** The `#/replay/<session>?t=<ms>` link of a row with a session, at its time. */
function replayLink(session: string, row: Record<string, unknown>): HTMLAnchorElement {
  const seconds = timeSeconds(row.ts ?? row.received_at);
  const t = seconds === null ? "" : `?t=${Math.round(seconds * 1000)}`;
  return h("a", { href: `#/replay/${encodeURIComponent(session)}${t}` }, session);
}

/** `recorded`: the sessions with a recording (null: not known), whose `session_id` cells link to their replay. */
function resultTable(result: QueryResult, recorded: Set<string> | null): HTMLElement {
  const numeric = result.rows[0] ? result.columns.map((c) => typeof result.rows[0]?.[c] === "number") : [];
  const head = h("tr", {}, ...result.columns.map((c, i) => h("th", { class: numeric[i] ? "n" : undefined }, c)));
  const body = result.rows.slice(0, MAX_TABLE_ROWS).map((row) =>
    h(
      "tr",
      {},
      ...result.columns.map((c, i) => {
        const v = row[c];
        if (v === null || v === undefined) return h("td", { class: "muted" }, "∅");
        if (c === "session_id" && typeof v === "string" && hasReplay(recorded, v))
          return h("td", {}, replayLink(v, row));
        return h("td", { class: numeric[i] ? "n" : "mono" }, typeof v === "object" ? JSON.stringify(v) : String(v));
      }),
    ),
  );
  const total = result.truncated ? `more than ${num(result.rows.length)}` : num(result.rows.length);
  const more =
    result.rows.length > MAX_TABLE_ROWS
      ? h("p", { class: "muted" }, `first ${num(MAX_TABLE_ROWS)} of ${total} rows`)
      : null;
  return h(
    "div",
    { class: "table-wrap" },
    h("table", { "aria-label": "Query result" }, h("thead", {}, head), h("tbody", {}, ...body)),
    more,
  );
}

export const page: Page = {
  title: "Explorer",
  mount(root, ctx, params) {
    let stopped = false;
    let busy = false;
    let chart: { destroy(): void } | null = null;
    const sql = h("textarea", {
      id: "explorer-sql",
      "aria-label": "SQL",
      rows: 5,
      spellcheck: false,
      class: "mono",
      style: "width:100%;box-sizing:border-box;",
    });
    sql.value = params.get("sql") ?? DEFAULT_SQL;
    const from = h("input", { "aria-label": "From", placeholder: "24h, 7d, ISO or epoch ms", size: 18 });
    from.value = params.get("from") ?? "24h";
    const to = h("input", { "aria-label": "To", placeholder: "now", size: 18 });
    to.value = params.get("to") ?? "";
    const run = h("button", { type: "submit" }, "Run");
    const status = h("p", { class: "muted", "aria-live": "polite", "data-explorer": "stats" });
    const error = h("p", { class: "error", role: "alert" });
    const chartBox = h("div", { class: "chart", "aria-label": "Chart of the result" });
    const table = h("div", {});
    const form = h(
      "form",
      { "aria-label": "Query" },
      sql,
      h(
        "div",
        { class: "toolbar" },
        h("label", {}, "From ", from),
        h("label", {}, "To ", to),
        run,
        h("span", { class: "muted" }, "Ctrl+Enter runs · table: events"),
      ),
    );

    async function execute(): Promise<void> {
      if (busy) return;
      busy = true;
      run.disabled = true;
      fill(error);
      const started = performance.now();
      try {
        const now = Date.now();
        const rangeTo = timeField(to.value, now, now + 1, "To");
        const range = { from: timeField(from.value, now, rangeTo - 86_400_000, "From"), to: rangeTo };
        const shared = new URLSearchParams({ sql: sql.value, from: from.value, to: to.value });
        history.replaceState(null, "", `#/explorer?${shared}`);
        fill(status, "loading DuckDB…");
        const engine = await explorerEngine(`${ctx.base}/dashboard`);
        if (stopped) return;
        const { stats, result } = await exclusive(async () => {
          if (!stopped) fill(status, "reading the lake…");
          const source = lakeSource(ctx);
          const loaded = await loadEvents({ sql: sql.value, range, source, parquet: engine.parquet, db: engine.db });
          return { stats: loaded, result: await runQuery(engine.sql, sql.value, MAX_ROWS) };
        });
        // Only sessions with a recording link to a replay.
        const recorded = result.columns.includes("session_id")
          ? await recordedSessions(ctx, range.from, range.to)
          : null;
        if (stopped) return;
        fill(status, statsText(stats, result, Math.round(performance.now() - started)));
        fill(table, resultTable(result, recorded));
        chart?.destroy();
        fill(chartBox);
        chartBox.hidden = false; // shown while drawn, so the chart takes the panel's width
        chart = drawChart(chartBox, result);
        chartBox.hidden = chart === null;
      } catch (err) {
        if (stopped) return;
        fill(status);
        fill(error, messageOf(err));
      } finally {
        busy = false;
        run.disabled = false;
      }
    }

    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void execute();
    });
    sql.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    chartBox.hidden = true;
    root.append(h("section", { class: "panel" }, form, status, error, chartBox, table));
    if (params.has("sql")) void execute();
    else sql.focus();
    return () => {
      stopped = true;
      chart?.destroy();
    };
  },
};
