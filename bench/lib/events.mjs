// Deterministic, realistic events (~300 bytes of JSON each) shared by every benchmark:
// the Node load generator, the DuckDB baseline and the encode worker inside workerd all import
// this one file, so both Parquet writers see byte-for-byte the same rows.
// No Math.random: values are derived from the index with a small integer hash, so a run is
// reproducible and cardinalities look like real traffic (many users, fewer pages, few browsers).

const PATHS = ["/", "/pricing", "/docs", "/blog", "/signup", "/login", "/dashboard", "/settings", "/checkout"];
const REFERRERS = [
  "https://www.google.com/",
  "https://news.ycombinator.com/",
  "https://twitter.com/",
  "",
  "https://github.com/",
];
const BROWSERS = ["Chrome 126 / Windows", "Safari 17.5 / macOS", "Firefox 127 / Linux", "Mobile Safari / iOS 17"];
const COUNTRIES = ["US", "DE", "FR", "GB", "JP", "BR", "IN", "CA"];
const TYPES = ["pageview", "pageview", "pageview", "click", "signup", "error"];
const SOURCES = ["web-app", "web-app", "api", "worker:checkout"];
const IMPORTANCES = ["normal", "normal", "normal", "low", "high"];

/** Epoch ms of event 0; events are 7 ms apart (a busy site). */
export const BASE_TS = 1_764_000_000_000;

/** 32-bit integer hash (lowbias32): spreads consecutive indexes over the whole range. */
function hash(i) {
  let x = (i ^ 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

const hex8 = (n) => n.toString(16).padStart(8, "0");
const pick = (list, h) => list[h % list.length];

/** Event `i`'s id: UUID-shaped, unique per index, incompressible-looking (as SDKs generate). */
export function eventId(i) {
  const a = hex8(hash(i));
  const b = hex8(hash(i + 0x5bd1e995));
  const c = hex8(hash(i + 0x27d4eb2f));
  return `${a}-${b.slice(0, 4)}-4${b.slice(5)}-a${c.slice(1, 4)}-${c.slice(4)}${hex8(i)}`;
}

/** Event `i` as a client sends it (protocol v1 EventInput). */
export function eventInput(i) {
  const h = hash(i);
  const user = h % 5000;
  const importance = pick(IMPORTANCES, h >>> 7);
  return {
    id: eventId(i),
    timestamp: BASE_TS + i * 7,
    source: pick(SOURCES, h >>> 3),
    type: pick(TYPES, h >>> 5),
    // SDKs omit the default importance ("normal"); the replica fills it in.
    ...(importance !== "normal" && { importance }),
    ...(user % 3 !== 0 && { userId: `user-${user}` }),
    anonymousId: `anon-${hex8(hash(user))}`,
    sessionId: `sess-${hex8(hash(user * 31 + Math.floor(i / 5000) + 1))}`,
    data: {
      path: `${pick(PATHS, h >>> 9)}${h % 7 === 0 ? `?ref=${h % 100}` : ""}`,
      referrer: pick(REFERRERS, h >>> 11),
      browser: pick(BROWSERS, h >>> 13),
      country: pick(COUNTRIES, h >>> 15),
      ms: h % 2000,
    },
  };
}

/** Event `i` as a replica holds it in memory (StoredEvent: normalized, stamped by replica `replica`). */
export function storedEvent(i, tenant = "bench", replica = "bench-0") {
  const e = eventInput(i);
  return {
    id: e.id,
    ts: e.timestamp,
    source: e.source,
    type: e.type,
    importance: e.importance ?? "normal",
    userId: e.userId ?? null,
    anonymousId: e.anonymousId,
    sessionId: e.sessionId,
    data: JSON.stringify(e.data),
    tenant,
    receivedAt: e.timestamp + 40 + (hash(i) % 200),
    replica,
    seq: i,
  };
}

/** `n` stored events, from index 0. */
export function storedEvents(n) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = storedEvent(i);
  return out;
}
