// Session replay: `#/replay` lists recorded sessions (filters from, to, userId, hasErrors);
// `#/replay/<session>?t=<ms>` plays one with rrweb's player, from the moment `t` (an error's
// time) when given. The player and its styles load with this page only, never on first load.
import Player from "rrweb-player";
import { fill, h, messageOf, num, time } from "../dom";
import { withoutInlineHandlers } from "../inline-handlers";
import type { DashboardContext, Page } from "../page";

/** What GET /recording/sessions lists of a session (src/protocol/recording.ts's SessionSummary). */
interface SessionSummary {
  session: string;
  start: number;
  end: number;
  pages: string[];
  userId: string | null;
  errors: number;
  chunks: number;
  bytes: number;
}

interface RrwebEvent {
  type: number;
  timestamp: number;
  data?: { tag?: string; payload?: { message?: string } };
}

/** rrweb's custom event type, and the tag duck-record.js gives a page's uncaught errors. */
const CUSTOM_EVENT = 5;
const ERROR_TAG = "error";
const PLAYER_CSS = "dashboard/rrweb-player.css";

export const page: Page = {
  title: "Replays",
  mount(root, ctx, params) {
    const aborted = new AbortController();
    const session = params.get("path") ?? "";
    if (session === "") {
      list(root, ctx, params, aborted.signal);
      return () => aborted.abort();
    }
    let player: Player | null = null;
    play(root, ctx, session, params, aborted.signal).then(
      (p) => {
        player = p;
        if (aborted.signal.aborted) stop(p);
      },
      (err) => aborted.signal.aborted || fill(root, h("p", { class: "error" }, messageOf(err))),
    );
    return () => {
      aborted.abort();
      if (player) stop(player);
    };
  },
};

/** `#/replay`: the sessions, filtered by the hash's params, each linking to its replay. */
function list(root: HTMLElement, ctx: DashboardContext, params: URLSearchParams, signal: AbortSignal): void {
  const input = (name: string, type: string, value: string) =>
    h("label", {}, `${name} `, h("input", { name, type, value, "aria-label": name }));
  const local = (ms: string | null) => (ms ? toLocalInput(Number(ms)) : "");
  const hasErrors = h(
    "select",
    { name: "hasErrors", "aria-label": "errors" },
    h("option", { value: "" }, "any"),
    h("option", { value: "true" }, "with errors"),
    h("option", { value: "false" }, "without errors"),
  );
  hasErrors.value = params.get("hasErrors") ?? "";
  const form = h(
    "form",
    { class: "filters" },
    input("from", "datetime-local", local(params.get("from"))),
    input("to", "datetime-local", local(params.get("to"))),
    input("userId", "text", params.get("userId") ?? ""),
    h("label", {}, "errors ", hasErrors),
    h("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const q = new URLSearchParams();
    for (const name of ["from", "to"]) {
      const v = String(data.get(name) ?? "");
      if (v) q.set(name, String(new Date(v).getTime()));
    }
    for (const name of ["userId", "hasErrors"]) {
      const v = String(data.get(name) ?? "");
      if (v) q.set(name, v);
    }
    ctx.navigate(`#/replay${q.size > 0 ? `?${q}` : ""}`);
  });
  const body = h("div", {}, h("p", { class: "muted" }, "Loading sessions…"));
  fill(root, h("h2", {}, "Session replays"), form, body);
  const query = new URLSearchParams();
  for (const name of ["from", "to", "userId", "hasErrors"]) {
    const v = params.get(name);
    if (v) query.set(name, v);
  }
  ctx
    .api(`/recording/sessions${query.size > 0 ? `?${query}` : ""}`, { signal })
    .then((res) => res.json() as Promise<{ sessions: SessionSummary[] }>)
    .then(({ sessions }) =>
      fill(
        body,
        sessions.length === 0 ? h("p", { class: "muted" }, "No recorded sessions in this range.") : table(sessions),
      ),
    )
    .catch((err) => signal.aborted || fill(body, h("p", { class: "error" }, messageOf(err))));
}

function table(sessions: SessionSummary[]): HTMLElement {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "sessions" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["started", "length", "first page", "pages", "user", "errors", "size"].map((c) => h("th", {}, c)),
        ),
      ),
      h(
        "tbody",
        {},
        ...sessions.map((s) =>
          h(
            "tr",
            {},
            h("td", {}, h("a", { href: `#/replay/${encodeURIComponent(s.session)}` }, time(s.start))),
            h("td", {}, duration(s.end - s.start)),
            h("td", {}, s.pages[0] ? pathOf(s.pages[0]) : ""),
            h("td", {}, num(s.pages.length)),
            h("td", {}, s.userId ?? ""),
            h("td", { class: s.errors > 0 ? "error" : "" }, num(s.errors)),
            h("td", {}, `${num(s.bytes / 1024, 1)} KB`),
          ),
        ),
      ),
    ),
  );
}

/** `#/replay/<session>`: the player, at `t` (epoch ms) when given, with a list of the session's errors to jump to. */
async function play(
  root: HTMLElement,
  ctx: DashboardContext,
  session: string,
  params: URLSearchParams,
  signal: AbortSignal,
): Promise<Player> {
  fill(root, h("p", { class: "muted" }, `Loading session ${session}…`));
  loadPlayerCss();
  const res = await ctx.api(`/recording/${encodeURIComponent(session)}`, { signal });
  const body = (await res.json()) as { summary: SessionSummary; events: RrwebEvent[] };
  const { summary } = body;
  const events = withoutInlineHandlers(body.events);
  if (events.length < 2) throw new Error(`session ${session} has too little recorded to replay`);
  const first = (events[0] as RrwebEvent).timestamp;
  const target = h("div", { class: "replay-player" });
  const errors = events.filter((e) => e.type === CUSTOM_EVENT && e.data?.tag === ERROR_TAG);
  const errorList = h("ol", { class: "replay-errors" });
  fill(
    root,
    h("h2", {}, "Replay ", h("code", {}, session)),
    h(
      "p",
      { class: "muted" },
      `${time(summary.start)} · ${duration(summary.end - summary.start)} · ${summary.userId ? `user ${summary.userId} · ` : ""}${num(summary.errors)} errors · ${summary.pages.map(pathOf).join(", ")}`,
    ),
    h("p", {}, h("a", { href: "#/replay" }, "← all sessions")),
    target,
    errors.length > 0 ? h("h3", {}, "Errors") : null,
    errorList,
  );
  const width = Math.max(320, Math.min(1024, root.clientWidth - 16));
  const player = new Player({
    target,
    props: { events: events as never, width, height: Math.round(width * 0.6), autoPlay: false, showController: true },
  });
  for (const e of errors) {
    const jump = h(
      "button",
      { type: "button" },
      `${duration(e.timestamp - first)} ${e.data?.payload?.message ?? "error"}`,
    );
    jump.addEventListener("click", () => player.goto(Math.max(0, e.timestamp - first - 2000), false));
    errorList.append(h("li", {}, jump));
  }
  const t = Number(params.get("t"));
  const total = (events[events.length - 1] as RrwebEvent).timestamp - first;
  // From a few seconds before the moment asked for (an error's time), so what led to it shows;
  // past the end, the last state (every event applied: rrweb applies those before the offset).
  const at = Number.isFinite(t) && t > first ? Math.min(Math.max(0, t - first - 2000), total + 1) : 0;
  player.goto(at, false);
  return player;
}

/** Stops the player's replayer (its timers and iframe); the page's root is emptied by the shell. */
function stop(player: Player): void {
  player.pause();
  player.getReplayer().destroy();
}

function loadPlayerCss(): void {
  if (document.querySelector(`link[href="${PLAYER_CSS}"]`)) return;
  document.head.append(h("link", { rel: "stylesheet", href: PLAYER_CSS }));
}

/** A page's path, for display (its URL when it is not one). */
function pathOf(page: string): string {
  try {
    return new URL(page).pathname;
  } catch {
    return page;
  }
}

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** Epoch ms as a datetime-local input's value (local time). */
function toLocalInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}
