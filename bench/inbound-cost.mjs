// What one inbound WebSocket message costs workerd before any of DuckTail's code runs: a Durable
// Object with an empty message handler, its sockets hibernatable (`ctx.acceptWebSocket`, as
// DuckTail's are) or not (`accept()`, as partyserver's default room), 200 sockets sending a
// `tailAck`-sized frame at a fixed rate. Server CPU ÷ messages, per round. It is what each of a
// live tail's acks costs the server, and what the tail's flow control adds to a broadcast (see
// bench/BASELINE.md, section 7). Not part of `npm run bench`.
//
//   node_modules/.bin/node bench/inbound-cost.mjs [rounds]
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import WebSocket from "ws";
import { childPids, cpuMeter } from "./lib/cpu.mjs";
import { fmt, table } from "./lib/stats.mjs";

const SOCKETS = 200;
const RATE = 4_000;
const SECONDS = 5;
const rounds = Number(process.argv[2] ?? 3);

const script = `
export class Hibernating {
  constructor(ctx) { this.ctx = ctx; this.n = 0; }
  fetch() {
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }
  webSocketMessage(ws, m) { this.n++; if (m === "count") ws.send(String(this.n)); }
  webSocketClose() {}
}
export class Accepted {
  constructor(ctx) { this.n = 0; }
  fetch() {
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener("message", (e) => { this.n++; if (e.data === "count") server.send(String(this.n)); });
    return new Response(null, { status: 101, webSocket: client });
  }
}
export default {
  fetch(req, env) {
    const ns = new URL(req.url).pathname === "/hibernating" ? env.HIBERNATING : env.ACCEPTED;
    return ns.get(ns.idFromName(new URL(req.url).search)).fetch(req);
  },
};`;

const before = new Set(childPids());
const mf = new Miniflare(
  convertV4MiniflareOptions({
    name: "inbound-cost",
    modules: true,
    script,
    compatibilityDate: "2025-01-01",
    durableObjects: { HIBERNATING: "Hibernating", ACCEPTED: "Accepted" },
  }),
);
const base = (await mf.ready).toString().replace(/^http/, "ws").replace(/\/$/, "");
const pid = childPids().find((p) => !before.has(p)) ?? null;
const frame = JSON.stringify({
  type: "tailAck",
  subscription: "5f82fec2-2e8c-4981-b035-8a256c1a9acd",
  seq: 1234567890,
});

/** Opens a socket (bounded in time). */
function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => reject(new Error(`no upgrade within 10 s: ${url}`)), 10_000);
    ws.once("open", () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once("error", reject);
  });
}

/** One run: every socket of a fresh object sends its share of RATE × SECONDS frames on a steady timer. */
async function run(kind, round) {
  const sockets = await Promise.all(Array.from({ length: SOCKETS }, () => open(`${base}/${kind}?r=${round}`)));
  await new Promise((r) => setTimeout(r, 300));
  const total = RATE * SECONDS;
  const meter = cpuMeter(pid);
  const t0 = performance.now();
  let sent = 0;
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * RATE));
      for (; sent < due; sent++) sockets[sent % SOCKETS].send(frame);
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 5);
  });
  // The object counts what it got: every frame is in once it answers the last one.
  const counted = await new Promise((resolve) => {
    sockets[0].once("message", (d) => resolve(Number(String(d))));
    sockets[0].send("count");
  });
  const cpu = meter.stop();
  const seconds = (performance.now() - t0) / 1000;
  for (const ws of sockets) ws.close();
  await new Promise((r) => setTimeout(r, 300));
  return {
    kind,
    round,
    messages: counted - 1,
    cpu: cpu.server,
    perMessageUs: ((cpu.server ?? 0) * seconds * 1e6) / total,
  };
}

const rows = [];
for (let r = 1; r <= rounds; r++) {
  for (const kind of r % 2 ? ["hibernating", "accepted"] : ["accepted", "hibernating"]) rows.push(await run(kind, r));
}
await mf.dispose();
console.log(
  `Inbound WebSocket frames (${frame.length} bytes) into one Durable Object with an empty handler: ${SOCKETS} sockets,` +
    ` ${fmt.int(RATE)} frames/s for ${SECONDS} s per run; server CPU ÷ frames.\n`,
);
console.log(
  table(
    [
      { title: "sockets", value: (x) => x.kind, left: true },
      { title: "round", value: (x) => String(x.round) },
      { title: "frames counted", value: (x) => fmt.int(x.messages) },
      { title: "cpu srv", value: (x) => fmt.pct(x.cpu) },
      { title: "µs per frame", value: (x) => x.perMessageUs.toFixed(1) },
    ],
    rows,
  ),
);
