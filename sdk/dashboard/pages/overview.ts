// Overview: events/s now, pageviews and unique visitors, errors and latency over time, top paths.
import { compact, PALETTE, TimeChart } from "../chart";
import { fill, h, num, time } from "../dom";
import type { Page } from "../page";
import { Poller } from "../poll";
import { rangePicker } from "../ranges";
import { eventsPerSecond, type TenantStats } from "../stats";
import { type ErrorsRow, type LatencyRow, type PageviewsRow, rangeOf, series } from "../views";

/** How often the page refreshes while auto-refresh is on. */
const REFRESH_MS = 15_000;
/** Routes offered in the latency chart's picker (the busiest). */
const TOP_ROUTES = 8;
const TOP_PATHS = 10;

export const page: Page = {
  title: "Overview",
  mount(root, ctx, params) {
    const range = rangeOf(params);
    const status = h("span", { class: "muted", role: "status" });
    const auto = h("input", { type: "checkbox", id: "auto-refresh", checked: true });
    const refresh = h("button", { type: "button" }, "Refresh");
    const card = (metric: string, label: string) => {
      const value = h("div", { class: "value", "data-metric": metric }, "–");
      return { el: h("div", { class: "card" }, h("div", { class: "label" }, label), value), value };
    };
    const cards = {
      rate: card("events-per-second", "Events/s now"),
      views: card("pageviews", `Pageviews (${range})`),
      uniques: card("visitors", `Unique visitors (${range})`),
      errors: card("errors", `Errors (${range})`),
      p95: card("p95", `p95 latency, all routes (${range})`),
    };
    const routePicker = h("select", { "aria-label": "Route" });
    const charts = {
      traffic: h("div", { class: "chart", "data-chart": "traffic" }),
      errors: h("div", { class: "chart", "data-chart": "errors" }),
      latency: h("div", { class: "chart", "data-chart": "latency" }),
    };
    const paths = h("tbody");
    root.append(
      h(
        "div",
        { class: "toolbar" },
        rangePicker("overview", range),
        h("span", { class: "grow" }),
        h("label", { for: "auto-refresh" }, auto, " auto-refresh"),
        refresh,
        status,
      ),
      h("div", { class: "cards" }, ...Object.values(cards).map((c) => c.el)),
      h(
        "div",
        { class: "grid" },
        h("div", { class: "panel" }, h("h2", {}, "Pageviews and unique visitors"), charts.traffic),
        h("div", { class: "panel" }, h("h2", {}, "Errors"), charts.errors),
        h(
          "div",
          { class: "panel" },
          h("div", { class: "toolbar" }, h("h2", { class: "grow" }, "Latency p50 / p95 / p99"), routePicker),
          charts.latency,
        ),
        h(
          "div",
          { class: "panel" },
          h("h2", {}, "Top paths"),
          h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { "data-table": "paths" },
              h(
                "thead",
                {},
                h("tr", {}, h("th", {}, "Path"), h("th", { class: "n" }, "Views"), h("th", { class: "n" }, "Visitors")),
              ),
              paths,
            ),
          ),
        ),
      ),
    );
    const traffic = new TimeChart(charts.traffic);
    const errorsChart = new TimeChart(charts.errors);
    const latencyChart = new TimeChart(charts.latency, { unit: " ms", points: true });
    let latency: Awaited<ReturnType<typeof series<LatencyRow>>> | null = null;

    const drawLatency = () => {
      if (!latency) return;
      const chosen = routePicker.value;
      const i = latency.rows.findIndex((r) => r.route === chosen);
      const pick = (b: (typeof latency & object)["buckets"][number]) => (i === -1 ? b.total : b.rows[i]) ?? null;
      const times = latency.buckets.map((b) => b.start);
      latencyChart.update(
        times,
        (["p50", "p95", "p99"] as const).map((q, k) => ({
          label: q,
          color: PALETTE[k] as string,
          values: latency!.buckets.map((b) => pick(b)?.[q] ?? null),
        })),
      );
    };
    routePicker.addEventListener("change", drawLatency);

    const poller = new Poller(
      REFRESH_MS,
      async (signal) => {
        const [stats, pv, errs, lat] = await Promise.all([
          ctx.api("/stats", { signal }).then((r) => r.json() as Promise<TenantStats>),
          series<PageviewsRow>(ctx, "pageviews", range, TOP_PATHS, signal),
          series<ErrorsRow>(ctx, "errors", range, 0, signal),
          series<LatencyRow>(ctx, "latency", range, TOP_ROUTES, signal),
        ]);
        if (signal.aborted) return;
        const now = Date.now();
        setMetric(cards.rate.value, eventsPerSecond(stats, now), 1);
        setMetric(cards.views.value, pv.total?.views ?? 0);
        setMetric(cards.uniques.value, pv.total?.uniques ?? 0);
        setMetric(cards.errors.value, errs.total?.count ?? 0);
        if (lat.total) setMetric(cards.p95.value, lat.total.p95, 1, " ms");
        else fill(cards.p95.value, "–");

        const times = pv.buckets.map((b) => b.start);
        traffic.update(times, [
          { label: "pageviews", color: PALETTE[0] as string, values: pv.buckets.map((b) => b.total?.views ?? 0) },
          { label: "visitors", color: PALETTE[1] as string, values: pv.buckets.map((b) => b.total?.uniques ?? 0) },
        ]);
        errorsChart.update(
          errs.buckets.map((b) => b.start),
          [{ label: "errors", color: PALETTE[2] as string, values: errs.buckets.map((b) => b.total?.count ?? 0) }],
        );
        latency = lat;
        const chosen = routePicker.value;
        fill(
          routePicker,
          h("option", { value: "" }, "All routes"),
          ...lat.rows.map((r) =>
            h("option", { value: r.route, selected: r.route === chosen }, `${r.route} (${compact(r.count)})`),
          ),
        );
        drawLatency();
        fill(
          paths,
          ...(pv.rows.length === 0
            ? [h("tr", {}, h("td", { colspan: 3, class: "muted" }, "No pageviews in this range."))]
            : pv.rows.map((r) =>
                h(
                  "tr",
                  {},
                  h("td", { class: "mono" }, r.path),
                  h("td", { class: "n" }, num(r.views)),
                  h("td", { class: "n" }, num(r.uniques)),
                ),
              )),
        );
        const missing = pv.replicas.missing.length;
        fill(status, `updated ${time(now).slice(11)}`, missing > 0 ? ` · ${missing} shard(s) behind` : "");
        root.dataset.loaded = String(now);
      },
      (message) => {
        status.className = message ? "error" : "muted";
        if (message) fill(status, message);
      },
    );
    auto.addEventListener("change", () => poller.setAuto(auto.checked));
    refresh.addEventListener("click", () => poller.refresh());
    poller.refresh();
    return () => {
      poller.stop();
      traffic.destroy();
      errorsChart.destroy();
      latencyChart.destroy();
    };
  },
};

function setMetric(el: HTMLElement, value: number, digits = 0, unit = ""): void {
  el.dataset.value = String(value);
  fill(el, `${num(value, digits)}${unit}`);
}
