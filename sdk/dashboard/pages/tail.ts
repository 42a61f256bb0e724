// Live tail: the tenant's events as they arrive, through the /ws subscribe protocol of the SDK's
// own client (sdk/client.ts: reconnects, acks, `dropped`), filtered by a filter builder, in a
// virtualized list that draws at most once a frame.
import type { TailEvent, TailFilter } from "../../../src/protocol/tail";
import { DuckTailClient } from "../../client";
import type { TailSubscription } from "../../subscription";
import { fill, h, messageOf, num, time } from "../dom";
import type { Page } from "../page";
import { filterForm } from "../tail/filter-form";
import { filterFromParams } from "../tail/filter-text";
import { RateMeter } from "../tail/rate";
import { VirtualList } from "../tail/virtual-list";

/** Height of one row of the list, px (fixed, so the list can place rows without measuring them). */
const ROW_HEIGHT = 22;
/** How often the counters (rate, dropped, held) are redrawn. */
const COUNTERS_MS = 250;

export const page: Page = {
  title: "Live tail",
  mount(root, ctx, params) {
    const status = h("span", { class: "muted", role: "status" });
    let initial: TailFilter = {};
    let filterError: string | null = null;
    try {
      initial = filterFromParams(params);
    } catch (err) {
      filterError = messageOf(err);
    }
    const form = filterForm(initial);
    const apply = h("button", { type: "submit" }, "Apply");
    const pause = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
    const clear = h("button", { type: "button" }, "Clear");
    const counters = {
      rate: h("span", { "data-metric": "rate" }, "0"),
      shown: h("span", { "data-metric": "received" }, "0"),
      dropped: h("span", { "data-metric": "dropped" }, "0"),
    };
    const viewport = h("div", { class: "vlist", tabindex: 0, "aria-label": "Events, newest first" });
    const detail = h("pre", { class: "tail-detail", "aria-live": "polite" });
    const formEl = h("form", { class: "toolbar tail-filter", "aria-label": "Filter" }, form.el, apply);
    root.append(
      formEl,
      h(
        "div",
        { class: "toolbar" },
        pause,
        clear,
        h("span", { class: "grow" }),
        h("span", {}, counters.rate, " events/s (5 s)"),
        h("span", {}, counters.shown, " received"),
        h("span", {}, counters.dropped, " dropped"),
        status,
      ),
      viewport,
      detail,
    );

    const list = new VirtualList<TailEvent>(viewport, ROW_HEIGHT, renderRow);
    viewport.addEventListener("click", (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>(".vlist-row");
      const event = row ? list.at(Number(row.dataset.index)) : undefined;
      if (event) fill(detail, JSON.stringify(event, null, 2));
    });
    formEl.addEventListener("submit", (e) => {
      e.preventDefault();
      try {
        const filter = form.read();
        const q = Object.keys(filter).length === 0 ? "" : `?filter=${encodeURIComponent(JSON.stringify(filter))}`;
        ctx.navigate(`#/tail${q}`); // the page mounts again with the new filter
      } catch (err) {
        setStatus(messageOf(err), true);
      }
    });
    clear.addEventListener("click", () => {
      list.clear();
      fill(detail);
    });

    function setStatus(text: string, error = false): void {
      status.className = error ? "error" : "muted";
      fill(status, text);
    }

    if (filterError !== null) {
      setStatus(filterError, true);
      return () => list.destroy();
    }

    // The SDK's client over the page's key: the socket, its reconnects and the tail's acks.
    const client = new DuckTailClient({
      url: ctx.base,
      ...(ctx.key !== "" && { key: ctx.key }),
      transport: "websocket",
      warnings: false,
      onError: (err) => {
        if (err.code !== "tail_dropped") setStatus(err.message, true);
      },
    });
    const sub: TailSubscription = client.subscribe(initial);
    const rate = new RateMeter();
    let received = 0;
    let paused = false;
    let resume: (() => void) | null = null;
    let pending: TailEvent[] = [];
    let stopped = false;

    pause.addEventListener("click", () => {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      fill(pause, paused ? "Resume" : "Pause");
      if (!paused) resume?.();
    });

    sub.ready.then(
      () => setStatus(`subscribed ${describe(initial)}`),
      (err) => setStatus(messageOf(err), true),
    );
    // Pulls events one by one; while paused it stops pulling, so the server holds the tail at its
    // window of unacknowledged frames and counts what it drops (`dropped`) instead of flooding us.
    void (async () => {
      try {
        for await (const event of sub) {
          if (paused) {
            await new Promise<void>((r) => {
              resume = r;
            });
            resume = null;
          }
          if (stopped) break;
          pending.push(event);
        }
      } catch (err) {
        if (!stopped) setStatus(messageOf(err), true);
      }
    })();

    // Events are handed to the list once a frame, however fast they come.
    let frame: number | null = null;
    function flush(): void {
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      received += batch.length;
      rate.note(batch.length, Date.now());
      list.push(batch);
    }
    const tick = () => {
      flush();
      frame = requestAnimationFrame(tick);
    };
    frame = requestAnimationFrame(tick);
    const counterTimer = setInterval(() => {
      flush(); // a hidden tab runs no frames
      const now = Date.now();
      fill(counters.rate, num(rate.rate(now), 1));
      fill(counters.shown, num(received));
      counters.shown.dataset.value = String(received);
      fill(counters.dropped, num(sub.dropped));
      counters.dropped.dataset.value = String(sub.dropped);
    }, COUNTERS_MS);

    return () => {
      stopped = true;
      resume?.();
      if (frame !== null) cancelAnimationFrame(frame);
      clearInterval(counterTimer);
      list.destroy();
      void sub.return();
      void client.close(1_000);
    };
  },
};

const IMPORTANCE_CLASS: Record<string, string> = { high: "warn", critical: "error" };

/** One event as a row: time, importance, source, type, user and its data (cut to fit one line). */
function renderRow(e: TailEvent, row: HTMLElement): void {
  if (row.dataset.id === e.id) return;
  row.dataset.id = e.id;
  row.className = `vlist-row ${IMPORTANCE_CLASS[e.importance] ?? ""}`;
  const data = JSON.stringify(e.data);
  row.textContent = `${time(e.receivedAt).slice(11)}  ${e.importance.padEnd(8)} ${e.source}  ${e.type}${
    e.userId ? `  user=${e.userId}` : ""
  }  ${data.length > 300 ? `${data.slice(0, 300)}…` : data}`;
}

function describe(filter: TailFilter): string {
  return Object.keys(filter).length === 0 ? "to every event" : JSON.stringify(filter);
}
