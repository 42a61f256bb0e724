// Errors: each fingerprint with its count, first and last seen, a sparkline, its sample (stack)
// and, when the sample's session was recorded, a link to its replay at the last sighting (or a
// note that it was not: recording is opt-in and sampled, and a server's errors name sessions too).
import { PALETTE, TimeChart } from "../chart";
import { fill, h, num, time } from "../dom";
import type { Page } from "../page";
import { Poller } from "../poll";
import { rangePicker } from "../ranges";
import { hasReplay, recordedSessions } from "../recorded";
import { type ErrorsRow, RANGE_MS, rangeOf, type Series, series } from "../views";

const REFRESH_MS = 15_000;
/** Fingerprints listed, the most frequent first. */
const TOP_ERRORS = 50;

export const page: Page = {
  title: "Errors",
  mount(root, ctx, params) {
    const range = rangeOf(params);
    const status = h("span", { class: "muted", role: "status" });
    const refresh = h("button", { type: "button" }, "Refresh");
    const body = h("tbody");
    root.append(
      h("div", { class: "toolbar" }, rangePicker("errors", range), h("span", { class: "grow" }), refresh, status),
      h(
        "div",
        { class: "panel table-wrap" },
        h(
          "table",
          { "data-table": "errors" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", {}, "Error"),
              h("th", { class: "n" }, "Count"),
              h("th", {}, "First seen"),
              h("th", {}, "Last seen"),
              h("th", { class: "spark-col" }, "Over time"),
            ),
          ),
          body,
        ),
      ),
    );
    let sparks: TimeChart[] = [];
    const clearSparks = () => {
      for (const s of sparks) s.destroy();
      sparks = [];
    };

    const render = (answer: Series<ErrorsRow>, recorded: Set<string> | null) => {
      clearSparks();
      if (answer.rows.length === 0) {
        fill(body, h("tr", {}, h("td", { colspan: 5, class: "muted" }, `No errors in the last ${range}.`)));
        return;
      }
      const times = answer.buckets.map((b) => b.start);
      fill(
        body,
        ...answer.rows.flatMap((row, i) => {
          const spark = h("div", { class: "spark", "aria-label": `${row.count} over ${range}` });
          const chart = new TimeChart(spark, { sparkline: true });
          sparks.push(chart);
          queueMicrotask(() =>
            chart.update(times, [
              { label: "count", color: PALETTE[2] as string, values: answer.buckets.map((b) => b.rows[i]?.count ?? 0) },
            ]),
          );
          return [
            h(
              "tr",
              { "data-fingerprint": row.fingerprint },
              h(
                "td",
                { class: "error-cell" },
                h("strong", {}, row.name || "Error"),
                " ",
                h("span", {}, row.message),
                details(row, recorded),
              ),
              h("td", { class: "n", "data-count": row.count }, num(row.count)),
              h("td", { class: "nowrap" }, time(row.firstSeen)),
              h("td", { class: "nowrap" }, time(row.lastSeen)),
              h("td", { class: "spark-col" }, spark),
            ),
          ];
        }),
      );
    };

    const poller = new Poller(
      REFRESH_MS,
      async (signal) => {
        const [answer, recorded] = await Promise.all([
          series<ErrorsRow>(ctx, "errors", range, TOP_ERRORS, signal),
          recordedSessions(ctx, Date.now() - RANGE_MS[range], undefined, signal),
        ]);
        if (signal.aborted) return;
        render(answer, recorded);
        fill(status, `${answer.rows.length} fingerprint(s) · updated ${time(Date.now()).slice(11)}`);
        root.dataset.loaded = String(Date.now());
      },
      (message) => {
        status.className = message ? "error" : "muted";
        if (message) fill(status, message);
      },
    );
    refresh.addEventListener("click", () => poller.refresh());
    poller.refresh();
    return () => {
      poller.stop();
      clearSparks();
    };
  },
};

/** The sample's stack (or its data) behind a disclosure, and the link to its session's replay. */
function details(row: ErrorsRow, recorded: Set<string> | null): HTMLElement {
  const stack = typeof row.sample.stack === "string" ? row.sample.stack : JSON.stringify(row.sample, null, 2);
  let replay: HTMLElement | null = null;
  if (row.sessionId && hasReplay(recorded, row.sessionId)) {
    replay = h(
      "a",
      { class: "replay", href: `#/replay/${encodeURIComponent(row.sessionId)}?t=${row.lastSeen}` },
      "Session replay",
    );
  } else if (row.sessionId) {
    replay = h("span", { class: "muted", "data-replay": "none" }, "Session not recorded");
  }
  return h("details", {}, h("summary", {}, "Sample"), h("pre", {}, stack), replay);
}
