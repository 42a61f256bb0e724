// A pipelining WebSocket load generator: keeps `window` frames in flight on each socket,
// sends the next frame the moment an ack comes back, and records per-frame ack latency
// (send → ack, so it includes queueing behind the other in-flight frames, as a real client sees).
import WebSocket from "ws";
import { cpuMeter } from "./cpu.mjs";

const DRAIN_TIMEOUT_MS = 30_000;

/** One client socket whose replies are matched to requests by frame id. */
export class Conn {
  #waiting = new Map();

  /** Opens `ws://…` and resolves once the upgrade succeeded. */
  static open(url) {
    // No permessage-deflate: we measure frame handling, not zlib, and compress on neither side.
    // An all-zero mask key (legal, and fine on loopback) lets ws skip XOR-masking every byte we
    // send: at 1,000-event frames that was most of this load generator's CPU, and it shares the cores.
    const ws = new WebSocket(url, { perMessageDeflate: false, generateMask: (mask) => mask.fill(0) });
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(new Conn(ws)));
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
  }

  constructor(ws) {
    this.ws = ws;
    ws.on("message", (data) => {
      const reply = JSON.parse(data.toString());
      const done = this.#waiting.get(reply.id);
      if (!done) return; // pushes we did not ask for (none expected in these runs)
      this.#waiting.delete(reply.id);
      done(reply);
    });
  }

  get inFlight() {
    return this.#waiting.size;
  }

  /** Sends a frame (string or Buffer of JSON text) whose reply (same id) goes to `onReply`. */
  send(id, text, onReply) {
    this.#waiting.set(id, onReply);
    this.ws.send(text, { binary: false });
  }

  /** Sends a JSON frame and resolves with its reply. */
  call(frame) {
    return new Promise((resolve) => this.send(frame.id, JSON.stringify(frame), resolve));
  }

  close() {
    this.ws.close(1000, "bench done");
  }
}

/**
 * Drives `conns` with `batch`-event frames from `build(frameId, batch)` for `warmupMs`, then
 * measures for `durationMs`: acks received in that window count, frames still in flight at its
 * end are drained but not counted. `serverPid` (workerd) is only used for CPU accounting.
 */
export function runLoad({ conns, window, batch, build, warmupMs, durationMs, serverPid, tag }) {
  let phase = "warmup";
  let next = 0;
  let events = 0;
  let meter = null;
  let started = 0;
  const latencies = [];
  const errors = [];

  return new Promise((resolve) => {
    let elapsed = 0;
    let cpu = null;

    const finishIfDrained = () => {
      if (phase === "drain" && conns.every((c) => c.inFlight === 0)) {
        phase = "done";
        resolve({ events, frames: latencies.length, seconds: elapsed, latencies, errors, cpu });
      }
    };

    const sendOne = (conn) => {
      if (phase !== "warmup" && phase !== "measure") return finishIfDrained();
      const id = `${tag}-${next++}`;
      const sentAt = performance.now();
      conn.send(id, build(id, batch), (reply) => {
        if (phase === "measure") {
          if (reply.type !== "ack") errors.push(`${reply.code ?? reply.type}: ${reply.message ?? ""}`);
          else {
            latencies.push(performance.now() - sentAt);
            events += reply.received;
            if (reply.rejected?.length)
              errors.push(`${reply.rejected.length} events rejected: ${reply.rejected[0].code}`);
          }
        }
        sendOne(conn);
      });
    };

    for (const conn of conns) for (let i = 0; i < window; i++) sendOne(conn);
    setTimeout(() => {
      phase = "measure";
      started = performance.now();
      meter = cpuMeter(serverPid);
    }, warmupMs);
    setTimeout(() => {
      elapsed = (performance.now() - started) / 1000;
      cpu = meter.stop();
      phase = "drain";
      finishIfDrained();
      // Bounded: a server that stops answering fails the run instead of hanging the benchmark.
      setTimeout(() => {
        if (phase !== "drain") return;
        errors.push(`${conns.reduce((n, c) => n + c.inFlight, 0)} frames never acked`);
        phase = "done";
        resolve({ events, frames: latencies.length, seconds: elapsed, latencies, errors, cpu });
      }, DRAIN_TIMEOUT_MS).unref();
    }, warmupMs + durationMs);
  });
}
