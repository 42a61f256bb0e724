/**
 * duck.js: the browser snippet SDK, served minified by the Worker at GET /duck.js (see
 * sdk/README.md, "Browser snippet"). Pages queue calls before it loads:
 *
 *   window.duck = window.duck || [];
 *   duck.push(["init", "<write key>", { autoTrackScroll: false }]);
 *   duck.push(["track", "signup", { plan: "pro" }]);
 *
 * Once loaded, `duck.push([...])` runs a call at once and `duck.track/identify/page/flush` exist.
 * Events go over one WebSocket (`/ws`) in batches; where it cannot open (blocked, proxies), over
 * HTTP (`POST /e`); what is queued when the page is hidden goes with `navigator.sendBeacon`.
 * Pages written for the original DuckTail snippet (`init` without an endpoint, then `page`) work
 * unchanged: one pageview per page load, `sessionTimeout` in minutes.
 * No dependencies: it must stay under 4 KB gzipped (test/unit/duck-size.test.ts).
 */

/** Options of `init`, with their defaults. */
export interface DuckOptions {
  /**
   * The DuckTail Worker's base URL. Default: the folder duck.js was loaded from, so a Worker served
   * at `https://example.com/ducktail/duck.js` is sent events at `https://example.com/ducktail/…`.
   */
  endpoint?: string;
  /** Events per batch; a full batch is sent at once. Default 10. */
  batchSize?: number;
  /** Most ms an event waits before its batch is sent. Default 5000. */
  flushInterval?: number;
  /**
   * A `pageview` on load and on each client-side navigation (history API). While on, a location
   * (path and query) counts once: an explicit `page()` there is merged into its pageview. Default true.
   */
  autoTrackPageViews?: boolean;
  /** A `pageleave` (time on page, deepest scroll) when the page is hidden or left. Default true. */
  autoTrackPageLeave?: boolean;
  /** `scroll` events at 25, 50, 75 and 100 % of the page, once each per page. Default false. */
  autoTrackScroll?: boolean;
  /** `error` events (importance high) from uncaught errors and unhandled rejections. Default true. */
  autoTrackErrors?: boolean;
  /** One `performance` event per page: TTFB, FCP and LCP in ms. Default true. */
  autoTrackPerformance?: boolean;
  /** Send nothing when the browser asks not to be tracked (Do Not Track, Global Privacy Control). Default true. */
  respectDoNotTrack?: boolean;
  /** A new session id after this many MINUTES without an event (fractions allowed). Default 30. */
  sessionTimeout?: number;
  /**
   * Also keep the anonymous id in a first-party cookie `duck_aid` on this domain (e.g.
   * ".example.com"), so its subdomains share one visitor. Default: none (localStorage only).
   */
  cookieDomain?: string;
  /** Log each send (batch size, transport) and each ack or error to the console, prefixed "[duck]". Default false. */
  debug?: boolean;
  /** When the server acks (see the README's storage modes). Default "buffered". */
  storageMode?: "fire-and-forget" | "buffered" | "confirmed" | "durable";
  /** `source` of the events. Default "browser". */
  source?: string;
  /**
   * Session recording: true, or the share 0..1 of sessions to record (picked by session id, so a
   * session is recorded whole or not at all). Only then is GET /duck-record.js loaded (rrweb's
   * recorder); inputs and `data-duck-mask` text are masked, `data-duck-block` elements left out.
   * Default false.
   */
  record?: boolean | number;
  /** The recorder's options (sdk/recorder/options.ts: maxMinutes, maxBytes, chunkMs, …). Default {}. */
  recordOptions?: Record<string, unknown>;
}

type Data = Record<string, unknown>;
type Call = [string, ...unknown[]];
interface DuckEvent {
  id: string;
  type: string;
  source: string;
  timestamp: number;
  importance?: string;
  userId?: string;
  anonymousId: string;
  sessionId: string;
  data: Data;
}

const w = window as unknown as Window & { duck?: unknown; doNotTrack?: string };
const d = document;
const nav = navigator as Navigator & { globalPrivacyControl?: boolean; msDoNotTrack?: string };
const script = d.currentScript as HTMLScriptElement | null;
const MAX_QUEUE = 1000;
const MAX_SOCKET_FAILURES = 3;
const YEAR_SECONDS = 31_536_000;
/** Under the 64 KB a browser allows a beacon or keepalive body, counting 3 bytes per character. */
const BEACON_BYTES = 60_000;

let key = "";
let o: Required<DuckOptions> | null = null;
let queue: DuckEvent[] = [];
/** Batches sent on the socket and not yet acked, by frame id: sent again after a reconnect. */
let inFlight: Record<string, DuckEvent[]> = {};
let socket: WebSocket | null = null;
let socketFailures = 0;
let useHttp = false;
let timer: ReturnType<typeof setTimeout> | undefined;
let userId: string | undefined;
let pageStart = Date.now();
let maxScroll = 0;
let milestones: Record<number, 1> = {};
let lastPath = "";
/** The location (path and query) the last pageview counted, and that pageview. */
let viewed = "";
let view: DuckEvent | undefined;
/** The page a pageleave was sent for, until it is visible again. */
let leftPath = "";
const pending: Call[] = [];
const perf: Data = {};
/** What duck-record.js uses (sdk/recorder): the socket, the URLs, the ids; it sets `on` to hear frames. */
const rec: { on?: (frame: Answer) => void; [name: string]: unknown } = {
  send: (text: string) => {
    if (socket?.readyState !== 1) return false;
    socket.send(text);
    return true;
  },
  url: (path: string) => url(path),
  ids: () => [sessionId(Date.now()), userId, anonymousId],
};

function store(name: string, value?: string): string | null {
  try {
    if (value !== undefined) localStorage.setItem(`duck_${name}`, value);
    return localStorage.getItem(`duck_${name}`);
  } catch {
    return value ?? null; // storage blocked: ids last as long as the page
  }
}

/**
 * The `duck_aid` cookie when `cookieDomain` is set, after writing `value` to it (renewing its
 * year). Undefined where cookies are off or blocked: then localStorage alone keeps the id.
 */
function cookie(value?: string): string | undefined {
  const domain = (o as Required<DuckOptions>).cookieDomain;
  if (!domain) return;
  try {
    const secure = location.protocol === "https:" ? "; Secure" : "";
    // biome-ignore lint/suspicious/noDocumentCookie: the Cookie Store API is async and https-only; init needs the id now
    if (value) d.cookie = `duck_aid=${value}; domain=${domain}; path=/; max-age=${YEAR_SECONDS}; SameSite=Lax${secure}`;
    return /(?:^|;\s*)duck_aid=([^;]+)/.exec(d.cookie)?.[1];
  } catch {
    return; // a sandboxed frame throws on document.cookie
  }
}

/** With `debug` on: a console line prefixed "[duck]", a warning when `warn` is 1. */
function log(warn: 0 | 1, ...args: unknown[]): void {
  if (o?.debug) console[warn ? "warn" : "log"]("[duck]", ...args);
}

/** A WebSocket frame from the server, or an HTTP ingest answer with its `error` spread in. */
interface Answer {
  type?: string;
  id?: string;
  stored?: number;
  rejected?: unknown[];
  code?: string;
  message?: string;
}

/** Reports (debug only) an ack or an error. */
function report(r: Answer, via: string): void {
  if (r.code) log(1, "error via", via, r.code, r.message);
  else log(0, "ack via", via, "stored", r.stored);
  if (r.rejected?.length) log(1, "rejected via", via, JSON.stringify(r.rejected));
}

function uuid(): string {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] as number) & 15) | 64;
  b[8] = ((b[8] as number) & 63) | 128;
  const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

let anonymousId = "";
let session: { id: string; last: number } | null = null;

function sessionId(now: number): string {
  if (!session) {
    try {
      session = JSON.parse(store("sid") ?? "null");
    } catch {
      session = null;
    }
  }
  if (!session || now - session.last > (o as Required<DuckOptions>).sessionTimeout * 60_000) {
    session = { id: uuid(), last: now };
  }
  session.last = now;
  store("sid", JSON.stringify(session));
  return session.id;
}

function page(): Data {
  return { url: location.href, path: location.pathname, referrer: d.referrer, title: d.title };
}

function pend(call: Call): undefined {
  if (pending.length < MAX_QUEUE) pending.push(call);
  return;
}

function track(type: string, data?: Data, importance?: string): DuckEvent | undefined {
  if (!o) return pend(["track", type, data, { importance }]);
  const now = Date.now();
  const event: DuckEvent = {
    id: uuid(),
    type,
    source: o.source,
    timestamp: now,
    anonymousId,
    sessionId: sessionId(now),
    data: { ...page(), ...data },
  };
  if (importance) event.importance = importance;
  if (userId) event.userId = userId;
  // A page that cannot reach the server keeps the newest events, not an ever-growing queue.
  if (queue.length >= MAX_QUEUE) queue.shift();
  queue.push(event);
  if (queue.length >= o.batchSize) flush();
  else timer ??= setTimeout(flush, o.flushInterval);
  return event;
}

function identify(id: string, traits?: Data): void {
  if (!o) return void pend(["identify", id, traits]);
  userId = String(id);
  store("uid", userId);
  track("identify", traits);
}

/**
 * Every pageview, automatic or `page()`. With autoTrackPageViews a location counts once until the
 * next navigation: the original snippet's `page` call and the automatic pageview are one, in
 * whichever order they run; a later call's data joins the pageview if it is still queued.
 */
function pageview(data?: Data): void {
  if (!o) return void pend(["page", data]);
  const at = location.pathname + location.search;
  if (o.autoTrackPageViews && at === viewed) {
    if (data && view && queue.includes(view)) Object.assign(view.data, data);
    log(0, "pageview of", at, "already counted");
    return;
  }
  viewed = lastPath = at;
  pageStart = Date.now();
  maxScroll = 0;
  milestones = {};
  view = track("pageview", data);
}

function flush(): void {
  clearTimeout(timer);
  timer = undefined;
  if (!o || queue.length === 0) return;
  if (useHttp) {
    while (queue.length > 0) post(queue.splice(0, o.batchSize));
    return;
  }
  if (socket?.readyState !== 1) return void connect();
  while (queue.length > 0) {
    const batch = queue.splice(0, o.batchSize);
    const id = uuid();
    inFlight[id] = batch;
    log(0, "send", batch.length, "events via websocket");
    socket.send(JSON.stringify({ type: "events", id, events: batch }));
  }
}

function url(path: string): string {
  const mode = (o as Required<DuckOptions>).storageMode;
  return `${(o as Required<DuckOptions>).endpoint}${path}?key=${encodeURIComponent(key)}&storageMode=${mode}`;
}

/**
 * POSTs as text/plain: a "simple" request, so no CORS preflight; the Worker reads it as JSON.
 * `keepalive` (which outlives the page but caps the body at 64 KB) only for what goes on hide.
 */
function post(events: DuckEvent[], keepalive = false): void {
  log(0, "send", events.length, "events via http");
  fetch(url("/e"), { method: "POST", body: JSON.stringify(events), keepalive })
    .then((res) => {
      // The server answered: a refused event will not be accepted on a retry.
      if (res.status >= 500 || res.status === 429) throw res.status;
      if (o?.debug) {
        res.json().then(
          (r: Answer & { error?: Answer }) => report({ ...r, ...r.error }, "http"),
          () => log(1, "error via http", res.status),
        );
      }
    })
    .catch((e) => {
      log(1, "send failed via http, will retry:", e);
      queue = events.concat(queue).slice(-MAX_QUEUE);
      timer ??= setTimeout(flush, (o as Required<DuckOptions>).flushInterval);
    });
}

function connect(): void {
  if (socket || useHttp) return;
  let ws: WebSocket;
  try {
    ws = new WebSocket(url("/ws").replace(/^http/, "ws"));
  } catch {
    return void fallBack();
  }
  socket = ws;
  // A socket counts as working once the server answers on it: proxies and extensions may accept
  // the upgrade and then drop the connection. The ping makes an idle page's socket answer too.
  let answered = false;
  ws.onopen = () => {
    ws.send('{"type":"ping"}');
    flush();
    rec.on?.({ type: "open" });
  };
  ws.onmessage = (m) => {
    answered = true;
    socketFailures = 0;
    try {
      const frame = JSON.parse(m.data as string) as Answer;
      if (frame.type === "ack" || frame.type === "error") {
        if (frame.id) delete inFlight[frame.id];
        report(frame, "websocket");
      }
      if (frame.type === "reconnect") ws.close(1000);
      rec.on?.(frame);
    } catch {
      // not ours to handle
    }
  };
  ws.onclose = () => {
    socket = null;
    // Unacked batches go first again, under new frame ids (the server may store them twice).
    queue = Object.values(inFlight).flat().concat(queue);
    inFlight = {};
    if (!answered && ++socketFailures >= MAX_SOCKET_FAILURES) return fallBack();
    setTimeout(connect, Math.min(30_000, 500 * 2 ** socketFailures) * (0.5 + Math.random()));
  };
}

function fallBack(): void {
  log(1, "websocket unavailable, sending over http");
  useHttp = true;
  socket = null;
  flush();
}

/** The page is going away or hidden: whatever is queued goes with sendBeacon, which outlives the page. */
function hide(): void {
  if (!o) return;
  if (o.autoTrackPageLeave && lastPath) {
    track("pageleave", { duration: Date.now() - pageStart, maxScroll }, "low");
    leftPath = lastPath;
    lastPath = "";
  }
  if (o.autoTrackPerformance && perf.reported !== 1) {
    perf.reported = 1;
    const { reported: _, ...metrics } = perf;
    if (Object.keys(metrics).length > 0) track("performance", metrics, "low");
  }
  clearTimeout(timer);
  timer = undefined;
  const events = Object.values(inFlight).flat().concat(queue.splice(0));
  inFlight = {};
  // Beacons and keepalive requests carry at most 64 KB each: one per chunk under that.
  let chunk: DuckEvent[] = [];
  let size = 2;
  const send = () => {
    if (chunk.length > 0) log(0, "send", chunk.length, "events via beacon");
    if (chunk.length > 0 && !nav.sendBeacon?.(url("/e"), JSON.stringify(chunk))) post(chunk, true);
    chunk = [];
    size = 2;
  };
  for (const e of events) {
    const n = JSON.stringify(e).length * 3 + 1;
    if (size + n > BEACON_BYTES) send();
    chunk.push(e);
    size += n;
  }
  send();
}

function onScroll(): void {
  const el = d.documentElement;
  const room = el.scrollHeight - el.clientHeight;
  const depth = room <= 0 ? 100 : Math.min(100, Math.round(((w.scrollY || el.scrollTop) / room) * 100));
  maxScroll = Math.max(maxScroll, depth);
  if (!o?.autoTrackScroll) return;
  for (const m of [25, 50, 75, 100]) {
    if (depth >= m && !milestones[m]) {
      milestones[m] = 1;
      track("scroll", { depth: m });
    }
  }
}

function observe(type: string, take: (entry: PerformanceEntry) => void): void {
  try {
    new PerformanceObserver((list) => list.getEntries().forEach(take)).observe({ type, buffered: true });
  } catch {
    // entry type not supported here
  }
}

function trackPerformance(): void {
  const navEntry = performance.getEntriesByType?.("navigation")[0] as PerformanceNavigationTiming | undefined;
  if (navEntry) perf.ttfb = Math.round(navEntry.responseStart);
  observe("paint", (e) => {
    if (e.name === "first-contentful-paint") perf.fcp = Math.round(e.startTime);
  });
  observe("largest-contentful-paint", (e) => {
    perf.lcp = Math.round(e.startTime);
  });
}

function doNotTrack(): boolean {
  return (
    nav.globalPrivacyControl === true ||
    [nav.doNotTrack, w.doNotTrack, nav.msDoNotTrack].some((v) => v === "1" || v === "yes")
  );
}

function init(writeKey: string, options: DuckOptions = {}): void {
  if (o) return;
  const opts: Required<DuckOptions> = {
    // The folder of duck.js's URL, without its query: a Worker behind a path prefix keeps it.
    endpoint: script?.src ? new URL(".", script.src).href : location.origin,
    batchSize: 10,
    flushInterval: 5000,
    autoTrackPageViews: true,
    autoTrackPageLeave: true,
    autoTrackScroll: false,
    autoTrackErrors: true,
    autoTrackPerformance: true,
    respectDoNotTrack: true,
    sessionTimeout: 30,
    cookieDomain: "",
    debug: false,
    storageMode: "buffered",
    source: "browser",
    record: false,
    recordOptions: {},
  };
  // An option given as undefined keeps its default.
  for (const [name, value] of Object.entries(options)) {
    if (value !== undefined) (opts as unknown as Record<string, unknown>)[name] = value;
  }
  if (opts.respectDoNotTrack && doNotTrack()) return;
  opts.endpoint = opts.endpoint.replace(/\/+$/, "");
  o = opts;
  key = writeKey;
  // The cookie first: another subdomain may have set it. Both are written, so either alone keeps it.
  anonymousId = cookie() || store("aid") || uuid();
  store("aid", anonymousId);
  cookie(anonymousId);
  userId = store("uid") ?? undefined;
  if (opts.autoTrackErrors) {
    w.addEventListener("error", (e) => {
      const err = e.error as Error | undefined;
      track(
        "error",
        {
          name: err?.name,
          message: e.message,
          stack: err?.stack,
          filename: e.filename,
          lineno: e.lineno,
          colno: e.colno,
        },
        "high",
      );
    });
    w.addEventListener("unhandledrejection", (e) => {
      const reason = e.reason as Error | undefined;
      track(
        "error",
        {
          name: reason?.name,
          message: String(reason?.message ?? reason),
          stack: reason?.stack,
          unhandledRejection: true,
        },
        "high",
      );
    });
  }
  if (opts.autoTrackPerformance) trackPerformance();
  w.addEventListener("scroll", onScroll, { passive: true });
  d.addEventListener("visibilitychange", () => {
    if (d.visibilityState === "hidden") hide();
    // Back on the page (another tab, bfcache): its next hide is a pageleave again.
    else if (!lastPath && leftPath) {
      lastPath = leftPath;
      pageStart = Date.now();
    }
  });
  w.addEventListener("pagehide", hide);
  if (opts.autoTrackPageViews) {
    // Client-side navigation: a pageview whenever the path or query changes (pageview() checks).
    for (const name of ["pushState", "replaceState"] as const) {
      const original = history[name];
      history[name] = function (this: History, ...args: Parameters<History["pushState"]>) {
        original.apply(this, args);
        pageview();
      };
    }
    w.addEventListener("popstate", () => pageview());
    // After the calls the page queued before duck.js loaded, so a queued identify applies to it.
    queueMicrotask(() => pageview());
  }
  connect();
  // Picked by session id (as sdk/recorder/options.ts's `sampled`), so a session is recorded whole or not at all.
  const rate = Number(opts.record);
  if (rate > 0 && Number.parseInt(sessionId(Date.now()).slice(0, 8), 16) / 2 ** 32 < rate) {
    rec.opts = opts.recordOptions;
    rec.rate = rate;
    const s = d.createElement("script");
    s.src = `${opts.endpoint}/duck-record.js`;
    d.head.appendChild(s);
  }
  for (const call of pending.splice(0)) run(call);
}

function run(call: unknown): void {
  if (!Array.isArray(call)) return;
  const [name, ...args] = call as Call;
  const fn = (api as unknown as Record<string, (...a: unknown[]) => void>)[name];
  if (name !== "push" && typeof fn === "function") fn(...args);
}

const api = {
  init,
  /** An event of `type` with `data` (the page's url, path, referrer and title are added). */
  track: (type: string, data?: Data, options?: { importance?: string }) => {
    track(type, data, options?.importance);
  },
  identify,
  /** A pageview now, e.g. after a navigation the history API did not see (merged: see pageview()). */
  page: (data?: Data) => pageview(data),
  flush,
  rec,
  push: (...calls: unknown[]) => {
    calls.forEach(run);
    return 0;
  },
};

const queued = Array.isArray(w.duck) ? (w.duck as unknown[]) : [];
w.duck = api;
// `init` first, wherever the page queued it; `page` last, so an `identify` queued after the
// snippet applies to the pageview, as it does to the automatic one.
const rank = (call: unknown) => {
  const name = Array.isArray(call) && call[0];
  return name === "init" ? 0 : name === "page" ? 2 : 1;
};
queued.sort((a, b) => rank(a) - rank(b));
queued.forEach(run);
