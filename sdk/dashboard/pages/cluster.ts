// Cluster: the tenant's tier, its shards with their rates, connections and buffer fill, the sinks'
// health over every shard, and the dead letters (GET /stats and, with an admin key, /deadletter).
import { fill, h, num, time } from "../dom";
import type { Page } from "../page";
import { Poller } from "../poll";
import { eventsPerSecond, type ShardStats, shardRate, type TenantStats } from "../stats";

const REFRESH_MS = 5_000;

interface DeadLetter {
  key: string;
  sink: string;
  replica: string;
  seq: number;
  rows: number;
  attempts: number;
  error: string;
  size: number;
  uploaded: string;
}

interface SinkHealth {
  delivered: number;
  failures: number;
  deadLettered: number;
  lastError: string | null;
}

export const page: Page = {
  title: "Cluster",
  mount(root, ctx) {
    const status = h("span", { class: "muted", role: "status" });
    const card = (metric: string, label: string) => {
      const value = h("div", { class: "value", "data-metric": metric }, "–");
      return { el: h("div", { class: "card" }, h("div", { class: "label" }, label), value), value };
    };
    const cards = {
      tier: card("tier", "Tier"),
      shards: card("shards", "Shards routed"),
      rate: card("events-per-second", "Events/s"),
      connections: card("connections", "Connections"),
      buffer: card("buffer", "Buffered"),
    };
    const shards = h("tbody");
    const sinks = h("tbody");
    const letters = h("div", { class: "table-wrap" });
    const table = (name: string, heads: [string, boolean][], body: HTMLElement) =>
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { "data-table": name },
          h("thead", {}, h("tr", {}, ...heads.map(([t, n]) => h("th", { class: n ? "n" : undefined }, t)))),
          body,
        ),
      );
    root.append(
      h("div", { class: "toolbar" }, h("span", { class: "grow" }), status),
      h("div", { class: "cards" }, ...Object.values(cards).map((c) => c.el)),
      h(
        "div",
        { class: "panel" },
        h("h2", {}, "Shards"),
        table(
          "shards",
          [
            ["Shard", false],
            ["State", false],
            ["Health", false],
            ["Events/s", true],
            ["Connections", true],
            ["Subscribers", true],
            ["Buffered rows", true],
            ["Buffer fill", false],
            ["Last report", false],
          ],
          shards,
        ),
      ),
      h(
        "div",
        { class: "grid" },
        h(
          "div",
          { class: "panel" },
          h("h2", {}, "Sinks"),
          table(
            "sinks",
            [
              ["Sink", false],
              ["Health", false],
              ["Delivered", true],
              ["Failures", true],
              ["Dead letters", true],
              ["Last error", false],
            ],
            sinks,
          ),
        ),
        h("div", { class: "panel" }, h("h2", {}, "Dead letters"), letters),
      ),
    );

    const poller = new Poller(
      REFRESH_MS,
      async (signal) => {
        const [stats, dead] = await Promise.all([
          ctx.api("/stats", { signal }).then((r) => r.json() as Promise<TenantStats>),
          deadLetters(ctx.api, signal),
        ]);
        if (signal.aborted) return;
        const now = Date.now();
        const answered = stats.shards.filter((s) => s.stats);
        const buffered = answered.reduce((n, s) => n + (s.stats?.bufferedBytes ?? 0), 0);
        const capacity = answered.reduce((n, s) => n + (s.stats?.maxBufferBytes ?? 0), 0);
        setCard(cards.tier.value, stats.tier, stats.pinned === null ? "auto" : "pinned");
        setCard(cards.shards.value, stats.routed, `of ${stats.shards.length}`);
        setCard(cards.rate.value, eventsPerSecond(stats, now), "", 1);
        setCard(
          cards.connections.value,
          stats.shards.reduce((n, s) => n + s.connections, 0),
        );
        cards.buffer.value.dataset.value = String(buffered);
        fill(
          cards.buffer.value,
          bytesText(buffered),
          capacity > 0
            ? h("span", { class: "muted note" }, ` ${pct(buffered, capacity)} of ${bytesText(capacity)}`)
            : null,
        );
        fill(shards, ...stats.shards.map((s) => shardRow(s, now)));
        fill(sinks, ...sinkRows(answered));
        renderLetters(letters, dead);
        const missing = stats.shards.length - answered.length;
        fill(status, `updated ${time(now).slice(11)}`, missing > 0 ? ` · ${missing} shard(s) did not answer` : "");
        root.dataset.loaded = String(now);
      },
      (message) => {
        status.className = message ? "error" : "muted";
        if (message) fill(status, message);
      },
    );
    poller.refresh();
    return () => poller.stop();
  },
};

/** The dead letters, or why they are not shown: they need an admin key (GET /health names the key's scope). */
async function deadLetters(
  api: (path: string, init?: RequestInit) => Promise<Response>,
  signal: AbortSignal,
): Promise<DeadLetter[] | string> {
  const { scope } = (await (await api("/health", { signal })).json()) as { scope?: string };
  if (scope !== undefined && scope !== "admin") return "Dead letters need an admin key.";
  return ((await (await api("/deadletter", { signal })).json()) as { deadLetters: DeadLetter[] }).deadLetters;
}

function setCard(el: HTMLElement, value: number, note = "", digits = 0): void {
  el.dataset.value = String(value);
  fill(el, num(value, digits), note ? h("span", { class: "muted note" }, ` ${note}`) : null);
}

function bytesText(n: number): string {
  if (n >= 1024 * 1024) return `${num(n / 1024 / 1024, 1)} MiB`;
  if (n >= 1024) return `${num(n / 1024, 1)} KiB`;
  return `${num(n)} B`;
}

function pct(part: number, whole: number): string {
  return `${((100 * part) / whole).toFixed(part > 0 && part < whole / 100 ? 2 : 0)} %`;
}

function shardRow(s: ShardStats, now: number): HTMLElement {
  const rate = shardRate(s, now);
  const bytes = s.stats?.bufferedBytes ?? 0;
  const max = s.stats?.maxBufferBytes ?? 0;
  const fillShare = max > 0 ? Math.min(1, bytes / max) : 0;
  const report = s.lastReport ? `${Math.round((now - s.lastReport.at) / 1000)} s ago` : "none yet";
  return h(
    "tr",
    { "data-shard": s.n },
    h("td", { class: "mono" }, s.name),
    h("td", {}, s.state),
    h("td", { class: s.health === "unhealthy" ? "error" : undefined }, s.health),
    h("td", { class: "n" }, rate === null ? "–" : num(rate, 1)),
    h("td", { class: "n" }, num(s.connections)),
    h("td", { class: "n" }, s.stats ? num(s.stats.subscribers ?? 0) : "–"),
    h("td", { class: "n" }, s.stats ? num(s.stats.bufferedRows ?? 0) : "–"),
    h(
      "td",
      {},
      max > 0
        ? h(
            "div",
            { class: "gauge", title: `${num(bytes)} of ${num(max)} bytes` },
            h("div", { class: "gauge-fill", style: `width:${(fillShare * 100).toFixed(1)}%` }),
            h("span", {}, pct(bytes, max)),
          )
        : "–",
    ),
    h("td", { class: "nowrap" }, report),
  );
}

/** Each sink summed over the shards that answered: healthy unless one holds a last error. */
function sinkRows(shards: ShardStats[]): HTMLElement[] {
  const sinks = new Map<string, SinkHealth>();
  for (const s of shards) {
    for (const [name, h] of Object.entries(s.stats?.sinks ?? {})) {
      const sum = sinks.get(name) ?? { delivered: 0, failures: 0, deadLettered: 0, lastError: null };
      sum.delivered += h.delivered;
      sum.failures += h.failures;
      sum.deadLettered += h.deadLettered;
      sum.lastError ??= h.lastError;
      sinks.set(name, sum);
    }
  }
  if (sinks.size === 0) return [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No sink has reported yet."))];
  return [...sinks].map(([name, s]) =>
    h(
      "tr",
      { "data-sink": name },
      h("td", { class: "mono" }, name),
      h("td", { class: s.lastError ? "error" : "ok" }, s.lastError ? "failing" : "ok"),
      h("td", { class: "n" }, num(s.delivered)),
      h("td", { class: "n" }, num(s.failures)),
      h("td", { class: "n" }, num(s.deadLettered)),
      h("td", { class: "error-cell" }, s.lastError ?? ""),
    ),
  );
}

function renderLetters(el: HTMLElement, dead: DeadLetter[] | string): void {
  if (typeof dead === "string") {
    fill(el, h("p", { class: "muted" }, dead));
    return;
  }
  if (dead.length === 0) {
    fill(el, h("p", { class: "muted", "data-dead-letters": 0 }, "None."));
    return;
  }
  fill(
    el,
    h(
      "table",
      { "data-table": "dead-letters", "data-dead-letters": dead.length },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, "Sink"),
          h("th", {}, "Replica"),
          h("th", { class: "n" }, "Rows"),
          h("th", { class: "n" }, "Attempts"),
          h("th", {}, "Uploaded"),
          h("th", {}, "Error"),
        ),
      ),
      h(
        "tbody",
        {},
        ...dead.map((d) =>
          h(
            "tr",
            {},
            h("td", { class: "mono" }, d.sink),
            h("td", { class: "mono" }, `${d.replica} #${d.seq}`),
            h("td", { class: "n" }, num(d.rows)),
            h("td", { class: "n" }, num(d.attempts)),
            h("td", { class: "nowrap" }, time(Date.parse(d.uploaded))),
            h("td", { class: "error-cell" }, d.error),
          ),
        ),
      ),
    ),
  );
}
