/**
 * duck-record.js: session recording for duck.js, loaded by it only when its `record` option
 * picks the session (GET /duck-record.js; built by sdk/build.mjs into dist/dashboard). rrweb's
 * recorder takes the page; its events go in chunks over duck.js's socket (`recording` frames,
 * acked `recorded`), or POST /recording when no socket is open, and what is unacked when the page
 * is hidden goes with sendBeacon. See README, "Session recording".
 *
 * Privacy by default: every input's value masked, text under `data-duck-mask` masked,
 * `data-duck-block` elements recorded as empty boxes of their size; nothing when the browser
 * asks not to be tracked; at most `maxMinutes` and `maxBytes` per page.
 */
import { record } from "@rrweb/record";
import { recordOptions } from "./options";
import { Outbox } from "./outbox";

/** What duck.js hands the recorder (its `rec`, see sdk/browser/duck.ts). */
interface DuckHooks {
  send(text: string): boolean;
  url(path: string): string;
  ids(): [string, string | undefined];
  opts?: Record<string, unknown>;
  on?: (frame: { type?: string; id?: string; seq?: number; code?: string }) => void;
}

/** Error codes after which the server will never take this session's chunks. */
const FINAL_CODES = ["recording_full", "bad_frame", "forbidden", "unauthorized", "not_found", "unknown_type"];
/** Under the 64 KB a beacon may carry, counting 3 bytes per character. */
const BEACON_CHARS = 20_000;
const FRAME_ID = "rec:";

const w = window as Window & { duck?: { rec?: DuckHooks }; doNotTrack?: string };
const nav = navigator as Navigator & { globalPrivacyControl?: boolean };
const hooks = w.duck?.rec;
const options = recordOptions(hooks?.opts);

function doNotTrack(): boolean {
  return nav.globalPrivacyControl === true || nav.doNotTrack === "1" || w.doNotTrack === "1";
}

function start(duck: DuckHooks): void {
  const started = Date.now();
  let events: unknown[] = [];
  let eventBytes = 0;
  let [session] = duck.ids();
  let outbox = new Outbox(session, options.resendMs);
  let stopped = false;
  let posting = false;

  const stopRecording = record({
    emit(event) {
      if (stopped) return;
      events.push(event);
      eventBytes += JSON.stringify(event).length;
      if (eventBytes >= options.chunkBytes) cut();
    },
    maskAllInputs: true,
    maskTextSelector: "[data-duck-mask]",
    blockSelector: "[data-duck-block]",
    // Fewer mouse moves and scrolls: most of a session's bytes, little of what a replay needs.
    sampling: { mousemove: 100, scroll: 150, input: "last" },
    slimDOMOptions: { script: true, comment: true, headFavicon: true, headWhitespace: true },
  });

  const onError = (message: string) => record.addCustomEvent("error", { message });
  const errorListener = (e: ErrorEvent) => onError(e.message);
  const rejectionListener = (e: PromiseRejectionEvent) => onError(String((e.reason as Error)?.message ?? e.reason));
  w.addEventListener("error", errorListener);
  w.addEventListener("unhandledrejection", rejectionListener);

  function stop(): void {
    if (stopped) return;
    cut();
    send();
    stopped = true;
    stopRecording?.();
    w.removeEventListener("error", errorListener);
    w.removeEventListener("unhandledrejection", rejectionListener);
  }

  /** Closes the events so far into a chunk; a new duck.js session starts a new recording. */
  function cut(): void {
    if (events.length === 0) return;
    const [now, userId] = duck.ids();
    outbox.add(events, userId);
    events = [];
    eventBytes = 0;
    if (now !== session) {
      // The session timed out meanwhile: what follows is another session's, from a full snapshot.
      send();
      session = now;
      outbox = new Outbox(session, options.resendMs);
      record.takeFullSnapshot(true);
    }
  }

  /** Sends what is due: on the socket when it is open, else one POST at a time. */
  function send(): void {
    const due = outbox.due(Date.now());
    const unsent = due.filter((c) => !duck.send(`{"type":"recording","id":"${FRAME_ID}${c.seq}","chunk":${c.text}}`));
    if (unsent.length === 0 || posting) return;
    posting = true;
    const box = outbox;
    fetch(duck.url("/recording"), { method: "POST", body: `[${unsent.map((c) => c.text).join(",")}]` })
      .then(async (res) => {
        if (res.ok) {
          const answer = (await res.json()) as { recorded: { seq: number }[] };
          for (const r of answer.recorded) box.ack(r.seq);
        } else if (res.status < 500 && res.status !== 429) {
          stop(); // refused for good (too large, bad key): retrying would be refused again
        }
      })
      .catch(() => {
        // offline: the outbox sends them again after resendMs
      })
      .finally(() => {
        posting = false;
      });
  }

  duck.on = (frame) => {
    if (frame.type === "open") {
      // A new socket: frames sent on the old one may never have arrived.
      outbox.resendAll();
      return send();
    }
    if (!frame.id?.startsWith(FRAME_ID)) return;
    const seq = Number(frame.id.slice(FRAME_ID.length));
    if (frame.type === "recorded") outbox.ack(seq);
    else if (frame.type === "error" && FINAL_CODES.includes(frame.code ?? "")) stop();
  };

  /** Page hidden or left: everything unacked goes with sendBeacon, which outlives the page. */
  function hide(): void {
    cut();
    let batch: string[] = [];
    let size = 2;
    const beacon = () => {
      if (batch.length > 0) navigator.sendBeacon?.(duck.url("/recording"), `[${batch.join(",")}]`);
      batch = [];
      size = 2;
    };
    for (const c of outbox.unacked()) {
      if (c.text.length > BEACON_CHARS) continue; // too big for a beacon: sent again if the page comes back
      if (size + c.text.length > BEACON_CHARS) beacon();
      batch.push(c.text);
      size += c.text.length + 1;
    }
    beacon();
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") hide();
  });
  w.addEventListener("pagehide", hide);

  const timer = setInterval(() => {
    if (stopped) return clearInterval(timer);
    if (Date.now() - started > options.maxMinutes * 60_000 || outbox.bytes + eventBytes > options.maxBytes) stop();
    cut();
    send();
  }, options.chunkMs);
}

if (hooks && (options.ignoreDoNotTrack || !doNotTrack())) start(hooks);
