// The live-tail load generator: publishers that send events at a fixed rate on a steady timer,
// and many cheap subscribers (DuckTail's protocol, or a plain partyserver room's) that count and
// time what reaches them. Up to 1,000 `ws` clients share this process and the two cores with
// workerd, so a subscriber never JSON-parses a hot frame: it finds each event's `benchN` (the
// event's serial) and `benchT` (its send time, `performance.now()` of this process) with
// Buffer.indexOf, and a DuckTail tail frame's `seq` the same way, for the ack.
import WebSocket from "ws";
import { eventInput } from "./events.mjs";

const POOL = 512;
const N_KEY = Buffer.from('"benchN":');
const T_KEY = Buffer.from('"benchT":');
const SEQ_KEY = Buffer.from(',"seq":');
const TAIL_PREFIX = Buffer.from('{"type":"tail"');
const ACK_PREFIX = '{"type":"ack"';
const OPEN_TIMEOUT_MS = 15_000;
const CLOSE_TIMEOUT_MS = 5_000;

// No permessage-deflate (we measure delivery, not zlib) and an all-zero mask key, which lets ws
// skip XOR-masking what we send (legal, and fine on loopback), as in ws-load.mjs.
const WS_OPTIONS = { perMessageDeflate: false, generateMask: (mask) => mask.fill(0) };

/**
 * Event `n`'s JSON split around its `data` head: `{"id":"<tag>-` + n + mid + k, benchN, benchT +
 * rest. The body is bench/lib/events.mjs's (~300 bytes), `data` gets `k` (what filters match),
 * `benchN` and `benchT` in front of its own fields.
 */
const parts = Array.from({ length: POOL }, (_, i) => {
  const { id: _id, data, ...rest } = eventInput(i);
  return { mid: `",${JSON.stringify(rest).slice(1, -1)},"data":{"k":`, rest: `,${JSON.stringify(data).slice(1)}}` };
});

/** An `events` frame (buffered, DuckTail's default) holding events `ns`, stamped with send time `t`. */
export function eventsFrame(tag, ns, k, t) {
  const stamp = t.toFixed(3);
  const events = ns.map((n) => {
    const p = parts[n % POOL];
    return `{"id":"${tag}-${n}${p.mid}${k(n)},"benchN":${n},"benchT":${stamp}${p.rest}`;
  });
  return `{"type":"events","id":"${tag}-f${ns[0]}","storageMode":"buffered","events":[${events.join(",")}]}`;
}

/** Calls `onEvent(n, t)` for every bench event in `buf` from byte `from`; returns how many. */
export function scanEvents(buf, from, onEvent) {
  let count = 0;
  for (let at = buf.indexOf(N_KEY, from); at >= 0; at = buf.indexOf(N_KEY, at)) {
    let i = at + N_KEY.length;
    let n = 0;
    for (let c = buf[i]; c >= 0x30 && c <= 0x39; c = buf[++i]) n = n * 10 + (c - 0x30);
    const tAt = buf.indexOf(T_KEY, i) + T_KEY.length;
    let j = tAt;
    for (let c = buf[j]; (c >= 0x30 && c <= 0x39) || c === 0x2e; c = buf[++j]);
    onEvent(n, Number(buf.toString("latin1", tAt, j)));
    count++;
    at = j;
  }
  return count;
}

/** Counts occurrences of `needle` (bytes) in `buf`. */
export function countOf(buf, needle) {
  let count = 0;
  for (let at = buf.indexOf(needle); at >= 0; at = buf.indexOf(needle, at + needle.length)) count++;
  return count;
}

/** Opens a socket; resolves once the upgrade succeeded (bounded in time). */
export function openSocket(url) {
  const ws = new WebSocket(url, WS_OPTIONS);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no upgrade within ${OPEN_TIMEOUT_MS} ms: ${url}`));
    }, OPEN_TIMEOUT_MS);
    ws.once("open", () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.once("unexpected-response", (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
    });
  });
}

/**
 * As the SDK acks (sdk/subscription.ts); BENCH_TAIL_ACK_EVERY and BENCH_TAIL_ACK_DELAY_MS override
 * it, to measure what acks cost the server (read as each subscriber opens).
 */
const ackEvery = () => Number(process.env.BENCH_TAIL_ACK_EVERY ?? 8);
const ackDelayMs = () => Number(process.env.BENCH_TAIL_ACK_DELAY_MS ?? 1_000);

/**
 * A subscriber. `protocol` "ducktail": sends `subscribe` on open, resolves `ready` on
 * `subscribed`, acks tail frames once their events are counted as the SDK does (cumulatively: one
 * `tailAck` per 8 frames, naming the last, or 1 s after the first unacked one); "room": a partyserver room socket, ready on open;
 * "room-acks": a room socket that acks what it got as a DuckTail subscriber does (the room ignores the acks).
 * Each frame goes to `sink.frame(index, buf, from, now)`; `dropped` frames add to `sink.dropped`.
 */
export class Subscriber {
  subscription = null;
  unacked = 0;
  lastSeq = "0";
  /** Frames received ("room-acks", which numbers them itself). */
  frames = 0;
  ackTimer = undefined;
  /** Replicas the subscription reached (DuckTail's `subscribed.replicas`). */
  replicas = null;

  /** Opens and (DuckTail) subscribes; registers the socket in `sockets` first, so a failed run still closes it. */
  static async open({ url, index, protocol, filter, sink, sockets }) {
    const ws = await openSocket(url);
    sockets.add(ws);
    const sub = new Subscriber(ws, index, protocol, sink);
    if (protocol === "ducktail") {
      ws.send(JSON.stringify({ type: "subscribe", id: `s${index}`, filter }));
      await sub.ready;
    }
    return sub;
  }

  constructor(ws, index, protocol, sink) {
    this.ws = ws;
    this.ackEvery = ackEvery();
    this.ackDelayMs = ackDelayMs();
    this.ready = new Promise((resolve, reject) => {
      this.confirm = resolve;
      this.refuse = reject;
      setTimeout(
        () => reject(new Error(`subscriber ${index}: no subscribed within ${OPEN_TIMEOUT_MS} ms`)),
        OPEN_TIMEOUT_MS,
      ).unref();
    });
    this.ready.catch(() => {});
    ws.on("message", (buf) => {
      const now = performance.now();
      if (protocol === "room") return sink.frame(index, buf, 0, now);
      if (protocol === "room-acks") {
        sink.frame(index, buf, 0, now);
        return this.counted(String(++this.frames));
      }
      if (buf.subarray(0, TAIL_PREFIX.length).equals(TAIL_PREFIX)) return this.tail(buf, index, sink, now);
      this.control(JSON.parse(buf.toString()), sink);
    });
    ws.on("close", (code, reason) => {
      if (code !== 1000 && code !== 1005) sink.errors.push(`subscriber ${index} closed: ${code} ${reason}`);
    });
  }

  tail(buf, index, sink, now) {
    const at = buf.indexOf(SEQ_KEY) + SEQ_KEY.length;
    let end = at;
    while (buf[end] >= 0x30 && buf[end] <= 0x39) end++;
    sink.frame(index, buf, end, now);
    this.counted(buf.toString("latin1", at, end));
  }

  /** A frame's events are counted: ack as the SDK does. */
  counted(seq) {
    this.lastSeq = seq;
    if (++this.unacked >= this.ackEvery) this.ack();
    else this.ackTimer ??= setTimeout(() => this.ack(), this.ackDelayMs);
  }

  ack() {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.unacked === 0) return;
    this.unacked = 0;
    if (this.ws.readyState === 1) {
      this.ws.send(`{"type":"tailAck","subscription":"${this.subscription}","seq":${this.lastSeq}}`);
    }
  }

  control(frame, sink) {
    if (frame.type === "subscribed") {
      this.subscription = frame.subscription;
      this.replicas = frame.replicas;
      this.confirm();
    } else if (frame.type === "dropped") sink.dropped += frame.count;
    else if (frame.type === "error") {
      sink.errors.push(`${frame.code}: ${frame.message}`);
      this.refuse(new Error(`subscribe refused: ${frame.code}: ${frame.message}`));
    } else if (frame.type !== "unsubscribed") sink.errors.push(`unexpected ${frame.type} frame`);
  }
}

/**
 * A publisher socket: sends `events` frames without waiting for anything. DuckTail acks each
 * frame; acks are counted and anything else is kept as an error. The rooms send publishers nothing.
 */
export class Publisher {
  acks = 0;
  errors = [];

  static async open(url, sockets) {
    const ws = await openSocket(url);
    sockets.add(ws);
    return new Publisher(ws);
  }

  constructor(ws) {
    this.ws = ws;
    ws.on("message", (buf) => {
      const text = buf.toString();
      if (text.startsWith(ACK_PREFIX) && text.includes('"rejected":[]')) this.acks++;
      else this.errors.push(text.slice(0, 200));
    });
  }

  send(text) {
    this.ws.send(text);
  }
}

/** Runs `open(i)` for i in 0..count-1, at most `concurrency` at a time; resolves to the results in order. */
export async function openMany(count, concurrency, open) {
  const out = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      out[i] = await open(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return out;
}

/** Closes every socket and waits for their close handshakes (bounded; stragglers are terminated). */
export async function closeAll(sockets) {
  const closed = [...sockets].map(
    (ws) =>
      new Promise((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        ws.once("close", resolve);
        ws.close(1000, "bench done");
      }),
  );
  const timer = new Promise((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS));
  await Promise.race([Promise.all(closed), timer]);
  for (const ws of sockets) if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
  sockets.clear();
}

/**
 * Every delivery of a measured event to a subscriber, counted: which (subscriber, event) pairs
 * arrived, how often, and with what latency (send → receipt). Events sent before `open(n0)` (the
 * warm-up) or from `close(n1)` on are not counted. `matches(sub, n)` says which subscriber should
 * get event n; a delivery it rules out (a broadcast room sends everyone everything) is `extra`.
 */
export class Deliveries {
  dropped = 0;
  errors = [];
  extra = 0;
  latencies = [];
  #counts;
  #span;
  /** Nothing counts before `open(n0)`. */
  #n0 = Number.POSITIVE_INFINITY;
  #n1 = Number.POSITIVE_INFINITY;
  #unique = 0;
  #expected = null;

  constructor(subscribers, matches, maxEvents) {
    this.subscribers = subscribers;
    this.matches = matches;
    this.#span = maxEvents;
    this.#counts = new Uint8Array(subscribers * maxEvents);
  }

  open(n0) {
    this.#n0 = n0;
  }

  /** No events from `n1` on count; from now on, `complete` says whether every expected one arrived. */
  close(n1) {
    if (n1 - this.#n0 > this.#span) throw new Error(`${n1 - this.#n0} events measured; room for ${this.#span}`);
    this.#n1 = n1;
    let expected = 0;
    for (let n = this.#n0; n < n1; n++) for (let s = 0; s < this.subscribers; s++) if (this.matches(s, n)) expected++;
    this.#expected = expected;
  }

  get complete() {
    return this.#expected !== null && this.#unique >= this.#expected;
  }

  /** A frame's bytes (events from byte `from`) reached subscriber `sub` at `now`. */
  frame(sub, buf, from, now) {
    scanEvents(buf, from, (n, t) => this.#record(sub, n, t, now));
  }

  #record(sub, n, t, now) {
    if (n < this.#n0 || n >= this.#n1) return;
    if (!this.matches(sub, n)) {
      this.extra++;
      return;
    }
    const i = sub * this.#span + (n - this.#n0);
    const seen = this.#counts[i];
    if (seen < 255) this.#counts[i] = seen + 1;
    if (seen > 0) return;
    this.#unique++;
    this.latencies.push(now - t);
  }

  /** Expected deliveries, first deliveries, those never delivered, and repeats. */
  summary() {
    let duplicates = 0;
    for (const c of this.#counts) if (c > 1) duplicates += c - 1;
    const expected = this.#expected ?? 0;
    return { expected, delivered: this.#unique, lost: expected - this.#unique, duplicates };
  }
}

/**
 * Counts tail events reaching a subscriber without looking inside them (the ingest runs' events
 * are bench/lib/frames.mjs's, which carry no send time): each TailEvent has one `receivedAt`.
 */
export class EventCounter {
  events = 0;
  dropped = 0;
  errors = [];
  static #key = Buffer.from('"receivedAt":');

  frame(_sub, buf, from) {
    this.events += countOf(buf.subarray(from), EventCounter.#key);
  }
}
