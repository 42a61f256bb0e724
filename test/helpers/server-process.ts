import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, expect } from "vitest";
// @ts-expect-error plain .mjs helper without types
import { buildWorker, startWorker } from "./miniflare.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** A DuckTail running in its own process group (test/helpers/serve.mjs: node + its workerd). */
export interface ServerProcess {
  child: ChildProcess;
  /** Process group id (= the child's pid: spawned detached). */
  pgid: number;
  /** From the server's `READY <url>` line. */
  url: string;
  /** SIGKILLs the whole group and resolves once no live process is left in it. */
  kill(): Promise<void>;
}

/**
 * Live (non-zombie) processes of a process group, from /proc. Killed grandchildren (workerd) are
 * re-parented to PID 1, which may not reap them here, so zombies are left out.
 */
export function liveGroupMembers(pgid: number): number[] {
  if (!existsSync("/proc/self/stat")) {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const live: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may contain spaces and parentheses.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z" && state !== "X") live.push(Number(name));
  }
  return live;
}

/**
 * Starts `node_modules/.bin/node test/helpers/serve.mjs <bundleDir> <persistDir> <varsJSON>` detached
 * (its own process group) and resolves once it prints `READY <url>`.
 */
export function spawnServer(
  bundleDir: string,
  persistDir: string,
  vars: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ServerProcess> {
  const child = spawn(
    join(root, "node_modules/.bin/node"),
    [join(root, "test/helpers/serve.mjs"), bundleDir, persistDir, JSON.stringify(vars)],
    { cwd: root, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  const pgid = child.pid!;
  const exited = new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.once("exit", () => done());
  });
  const kill = async () => {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
    await exited;
    const deadline = Date.now() + 5_000;
    while (liveGroupMembers(pgid).length > 0) {
      if (Date.now() > deadline) throw new Error(`process group ${pgid} still alive: ${liveGroupMembers(pgid)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr += d;
  });
  return new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => {
      void kill();
      reject(new Error(`server not READY within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before READY\n${stdout}\n${stderr}`));
    });
    child.stdout!.on("data", (d) => {
      stdout += d;
      const m = /^READY (\S+)$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolveReady({ child, pgid, url: m[1]!, kill });
      }
    });
  });
}

/** What {@link usePersistedServers} gives a suite. */
export interface PersistedServers {
  /** Spawns a server on the suite's state (each is killed after the suite, if still up). */
  start(): Promise<ServerProcess>;
  /** An in-process Miniflare on the same state (start it once the servers are gone), disposed after the suite. */
  reader(): Promise<Miniflare>;
}

/**
 * One persisted DuckTail state for a suite that kills servers and starts them again on it. Call it
 * first in the `describe`: its `afterAll` then runs last, after the suite's own (clients closed
 * before their servers go), kills every server still up, checks none left a process behind, and
 * removes the bundle and the state.
 */
export function usePersistedServers(prefix: string, vars: Record<string, string>): PersistedServers {
  let bundle = "";
  let persist = "";
  const servers: ServerProcess[] = [];
  let reader: Miniflare | undefined;
  beforeAll(() => {
    bundle = buildWorker();
    persist = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.kill()));
    for (const s of servers) expect(liveGroupMembers(s.pgid)).toEqual([]);
    await reader?.dispose();
    for (const dir of [bundle, persist]) if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return {
    async start() {
      const server = await spawnServer(bundle, persist, vars);
      servers.push(server);
      return server;
    },
    async reader() {
      reader = ((await startWorker(bundle, { persistDir: persist, vars })) as { mf: Miniflare }).mf;
      return reader;
    },
  };
}
