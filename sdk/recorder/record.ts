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
import { overLimits, recordOptions, sampled } from "./options";
import { Outbox } from "./outbox";

/** What duck.js hands the recorder (its `rec`, see sdk/browser/duck.ts). */
interface DuckHooks {
  send(text: string): boolean;
  url(path: string): string;
  /** The session id, the identified userId and the anonymous id (an older duck.js gives no anonymous id). */
  ids(): [string, string | undefined, string?];
  opts?: Record<string, unknown>;
  /** duck.js's `record` as a share of sessions (1 for true). */
  rate?: number;
  on?: (frame: ServerFrame) => void;
  /** Set once this script ran: whether the page is recorded (false: Do Not Track or Global Privacy Control). */
  recording?: boolean;
}

interface ServerFrame {
  type?: string;
  id?: string;
  session?: string;
  seq?: number;
  code?: string;
}

/** Error codes after which the server will never take this session's chunks. */
const FINAL_CODES = ["recording_full", "bad_frame", "forbidden", "unauthorized", "not_found", "unknown_type"];
/** Under the 64 KB a beacon may carry, counting 3 bytes per character. */
const BEACON_CHARS = 20_000;
/** Chunks that could pass the server's 1 MiB frame limit (3 bytes per character) go by POST, which says so. */
const SOCKET_CHARS = 340_000;
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
  /** The events since the last chunk, each as its JSON. */
  let events: string[] = [];
  let eventChars = 0;
  /** One outbox per session this page recorded (a session can time out while the page is open). */
  const boxes = new Map<string, Outbox>();
  let box = new Outbox(duck.ids()[0], options.resendMs);
  boxes.set(box.session, box);
  let bytes = 0;
  /** No more recording (a limit was reached); what is unacked is still sent. */
  let stopped = false;
  /** The server will take nothing more: drop what is left. */
  let refused = false;
  let posting = false;

  const stopRecording = record({
    emit(event) {
      if (stopped) return;
      const text = JSON.stringify(event);
      events.push(text);
      eventChars += text.length;
      if (eventChars >= options.chunkBytes) cut();
    },
    maskAllInputs: true,
    maskTextSelector: "[data-duck-mask]",
    blockSelector: "[data-duck-block]",
    // Fewer mouse moves and scrolls: most of a session's bytes, little of what a replay needs.
    sampling: { mousemove: 100, scroll: 150, input: "last" },
    slimDOMOptions: { script: true, comment: true, headFavicon: true, headWhitespace: true },
  });

  const onError = (message: string) => stopped || record.addCustomEvent("error", { message });
  const errorListener = (e: ErrorEvent) => onError(e.message);
  const rejectionListener = (e: PromiseRejectionEvent) => onError(String((e.reason as Error)?.message ?? e.reason));
  w.addEventListener("error", errorListener);
  w.addEventListener("unhandledrejection", rejectionListener);

  function stop(): void {
    if (stopped) return;
    cut();
    stopped = true;
    stopRecording?.();
    w.removeEventListener("error", errorListener);
    w.removeEventListener("unhandledrejection", rejectionListener);
  }

  function refuse(): void {
    stop();
    refused = true;
    boxes.clear();
  }

  /** Closes the events so far into a chunk; a new duck.js session starts a new recording. */
  function cut(): void {
    if (events.length === 0) return;
    const [session, userId, anonymousId] = duck.ids();
    box.add(events, { userId, anonymousId });
    bytes += eventChars;
    events = [];
    eventChars = 0;
    if (session !== box.session) {
      // The session timed out meanwhile: what follows is another session's, from a full snapshot,
      // if that session is picked too.
      if (!sampled(session, duck.rate ?? 1)) {
        stop();
        return;
      }
      box = new Outbox(session, options.resendMs);
      boxes.set(session, box);
      record.takeFullSnapshot(true);
    }
  }

  /** Sends what is due: on the socket when it is open, else one POST at a time. */
  function send(): void {
    const unsent: string[] = [];
    for (const b of boxes.values()) {
      for (const c of b.due(Date.now())) {
        const frame = `{"type":"recording","id":"${FRAME_ID}${c.seq}","chunk":${c.text}}`;
        if (c.text.length > SOCKET_CHARS || !duck.send(frame)) unsent.push(c.text);
      }
    }
    if (unsent.length === 0 || posting) return;
    posting = true;
    fetch(duck.url("/recording"), { method: "POST", body: `[${unsent.join(",")}]` })
      .then(async (res) => {
        if (res.ok) {
          const answer = (await res.json()) as { recorded: ServerFrame[] };
          for (const r of answer.recorded) acked(r);
        } else if (res.status < 500 && res.status !== 429) {
          refuse(); // too large, a bad key: sending again would be refused again
        }
      })
      .catch(() => {
        // offline: the outboxes send them again after resendMs
      })
      .finally(() => {
        posting = false;
      });
  }

  function acked(r: ServerFrame): void {
    const b = boxes.get(r.session ?? "");
    b?.ack(r.seq ?? -1);
    // A finished session's outbox goes once it is empty.
    if (b && b !== box && b.size === 0) boxes.delete(b.session);
  }

  duck.on = (frame) => {
    if (frame.type === "open") {
      // A new socket: frames sent on the old one may never have arrived.
      for (const b of boxes.values()) b.resendAll();
      return send();
    }
    if (!frame.id?.startsWith(FRAME_ID)) return;
    if (frame.type === "recorded") acked(frame);
    else if (frame.type === "error" && FINAL_CODES.includes(frame.code ?? "")) refuse();
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
    for (const b of boxes.values()) {
      for (const c of b.unacked()) {
        if (c.text.length > BEACON_CHARS) continue; // too big for a beacon: sent again if the page comes back
        if (size + c.text.length > BEACON_CHARS) beacon();
        batch.push(c.text);
        size += c.text.length + 1;
      }
    }
    beacon();
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") hide();
  });
  w.addEventListener("pagehide", hide);

  const timer = setInterval(() => {
    if (!stopped && overLimits(options, Date.now() - started, bytes + eventChars)) stop();
    cut();
    send();
    if (refused || (stopped && [...boxes.values()].every((b) => b.size === 0))) clearInterval(timer);
  }, options.chunkMs);
}

if (hooks) {
  hooks.recording = options.ignoreDoNotTrack || !doNotTrack();
  if (hooks.recording) start(hooks);
}
