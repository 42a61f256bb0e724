// Where the time of "subscribe 1,000" goes (`npm run bench -- tail` times connect + subscribe
// together): DuckTail's connects alone, then its `subscribe` frames alone on the open sockets,
// each with its server CPU, against partyserver's rooms connecting the same 1,000 sockets (a room
// has no subscribe frame: its connect is the whole of its subscribe). 50 sockets in flight, as in
// the tail section; a fresh tenant or room per round; systems alternate their order by round.
// Not part of `npm run bench` (see bench/BASELINE.md, section 7).
//
//   node_modules/.bin/node bench/subscribe-cost.mjs [rounds]
import { setTimeout as sleep } from "node:timers/promises";
import { buildWorker } from "../test/helpers/miniflare.mjs";
import { INGEST_CONFIG } from "./ingest.mjs";
import { cpuSeconds, quiet } from "./lib/cpu.mjs";
import { fmt, table } from "./lib/stats.mjs";
import { keyOf, wsBase } from "./lib/systems.mjs";
import { closeAll, openMany, openSocket } from "./lib/tail-load.mjs";
import { startBenchWorker, startDuckTail } from "./lib/workerd.mjs";
import { keyTable, PARTYSERVER_CONFIG, TAIL_VARS } from "./tail.mjs";

const SOCKETS = 1000;
const IN_FLIGHT = 50;
const STEP_TIMEOUT_MS = 10_000;
const rounds = Number(process.argv[2] ?? 3);

const ducktail = await startDuckTail(buildWorker(INGEST_CONFIG), { ...TAIL_VARS, DUCKTAIL_KEYS: keyTable(rounds) });
const rooms = await startBenchWorker(buildWorker(PARTYSERVER_CONFIG), {
  durableObjects: {
    BROADCAST_ROOM: { className: "BroadcastRoom", useSQLite: true },
    HIBERNATING_BROADCAST_ROOM: { className: "HibernatingBroadcastRoom", useSQLite: true },
  },
});

/** What each system connects to in round `r` (the tail section's tenants, so the keys exist). */
const SYSTEMS = [
  {
    name: "ducktail",
    pid: ducktail.pid,
    url: (r) => `${wsBase(ducktail.url)}/ws?key=${keyOf(`tail-b${r}`, "read")}`,
    subscribes: true,
  },
  {
    name: "partyserver broadcast",
    pid: rooms.pid,
    url: (r) => `${wsBase(rooms.url)}/parties/broadcast-room/subscribe-cost-${r}`,
  },
  {
    name: "partyserver hibernating broadcast",
    pid: rooms.pid,
    url: (r) => `${wsBase(rooms.url)}/parties/hibernating-broadcast-room/subscribe-cost-${r}`,
  },
];

/** Settles with `promise`, or rejects after STEP_TIMEOUT_MS naming `what`. */
function bounded(promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Sends a match-all `subscribe` and waits for its `subscribed`. */
function subscribe(ws, i) {
  return bounded(
    new Promise((resolve, reject) => {
      const onMessage = (data) => {
        const frame = JSON.parse(String(data));
        if (frame.id !== `s${i}`) return;
        ws.off("message", onMessage);
        if (frame.type === "subscribed") resolve();
        else reject(new Error(`subscribe ${i} answered ${String(data)}`));
      };
      ws.on("message", onMessage);
      ws.send(JSON.stringify({ type: "subscribe", id: `s${i}`, filter: {} }));
    }),
    `subscribe ${i}`,
  );
}

/** Wall time and server CPU (ms) of `phase()`. */
async function timed(pid, phase) {
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  await phase();
  return { ms: performance.now() - t0, cpuMs: ((cpuSeconds(pid) ?? 0) - (cpu0 ?? 0)) * 1000 };
}

async function run(system, round) {
  let sockets = [];
  const connect = await timed(system.pid, async () => {
    sockets = await openMany(SOCKETS, IN_FLIGHT, () => openSocket(system.url(round)));
  });
  await sleep(500);
  const sub = system.subscribes
    ? await timed(system.pid, () => openMany(SOCKETS, IN_FLIGHT, (i) => subscribe(sockets[i], i)))
    : null;
  await closeAll(new Set(sockets));
  await quiet([system.pid]); // the closes (and DuckTail's unsubscribes) are done before the next run
  return { system: system.name, round, connect, sub };
}

const rows = [];
for (let r = 1; r <= rounds; r++) {
  const order = r % 2 ? SYSTEMS : [...SYSTEMS].reverse();
  for (const system of order) rows.push(await run(system, r));
}
await ducktail.mf.dispose();
await rooms.mf.dispose();

const perSocketUs = (x) => ((x.cpuMs / SOCKETS) * 1000).toFixed(0);
console.log(
  `Connecting ${fmt.int(SOCKETS)} sockets (${IN_FLIGHT} in flight), then, for DuckTail, a match-all \`subscribe\` on each` +
    ` (${IN_FLIGHT} in flight); wall time and server CPU per phase.\n`,
);
console.log(
  table(
    [
      { title: "system", value: (x) => x.system, left: true },
      { title: "round", value: (x) => String(x.round) },
      { title: "connect ms", value: (x) => fmt.int(x.connect.ms) },
      { title: "cpu µs/socket", value: (x) => perSocketUs(x.connect) },
      { title: "subscribe ms", value: (x) => (x.sub ? fmt.int(x.sub.ms) : "-") },
      { title: "cpu µs/subscribe", value: (x) => (x.sub ? perSocketUs(x.sub) : "-") },
      { title: "total ms", value: (x) => fmt.int(x.connect.ms + (x.sub?.ms ?? 0)) },
    ],
    rows,
  ),
);
process.exit(0);
