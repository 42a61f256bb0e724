// CPU accounting, to tell a server-bound run from a client-bound one on a small machine:
// the load generator shares the cores with workerd, so "the server was at 100% of a core"
// is what makes a throughput figure mean anything.
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** Pids of this process's direct children (Linux /proc; empty elsewhere). */
export function childPids() {
  const out = [];
  let entries = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat && stat.ppid === process.pid) out.push(Number(name));
  }
  return out;
}

/** { ppid, cpuSeconds } of a process, all threads (user + system), or null if it is gone. */
function readStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(fields[1]), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND };
  } catch {
    return null;
  }
}

/** CPU seconds used so far by process `pid`, all threads (user + system), or null if it is gone. */
export function cpuSeconds(pid) {
  return readStat(pid)?.cpuSeconds ?? null;
}

/**
 * Starts measuring CPU of this process and of `pid` (a workerd); `stop()` returns the share of
 * one core each used over the wall time in between (1 = one core fully busy).
 */
export function cpuMeter(pid) {
  const t0 = performance.now();
  const self0 = process.cpuUsage();
  const server0 = pid ? readStat(pid)?.cpuSeconds : undefined;
  return {
    stop() {
      const wall = (performance.now() - t0) / 1000;
      const self = process.cpuUsage(self0);
      const server1 = pid ? readStat(pid)?.cpuSeconds : undefined;
      return {
        client: (self.user + self.system) / 1e6 / wall,
        server: server0 !== undefined && server1 !== undefined ? (server1 - server0) / wall : null,
      };
    },
  };
}

/**
 * Waits until the processes `pids` (workerds) together use less than `share` of a core over a
 * `windowMs` window, at most `timeoutMs`; resolves to the ms waited. A run that follows a saturated
 * one would otherwise share the cores with the backlog its predecessor left behind.
 */
export async function quiet(pids, { share = 0.1, windowMs = 250, timeoutMs = 10_000 } = {}) {
  const started = performance.now();
  const total = () => pids.reduce((s, pid) => s + (cpuSeconds(pid) ?? 0), 0);
  for (;;) {
    const before = total();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const used = (total() - before) / (windowMs / 1000);
    if (used < share || performance.now() - started > timeoutMs) return performance.now() - started;
  }
}
