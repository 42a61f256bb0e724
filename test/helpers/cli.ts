// Runs the built `ducktail` command (dist/cli.js) as a child process, the way a user does.
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const CLI = join(ROOT, "dist/cli.js");

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running child with its output gathered so far and a way to wait for some of it. */
export class Running {
  stdout = "";
  stderr = "";
  readonly exited: Promise<CliResult>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding("utf8").on("data", (s: string) => {
      this.stdout += s;
    });
    child.stderr?.setEncoding("utf8").on("data", (s: string) => {
      this.stderr += s;
    });
    this.exited = new Promise((done) =>
      child.on("close", (code, signal) => done({ code, signal, stdout: this.stdout, stderr: this.stderr })),
    );
  }

  /** Resolves once `check` holds for what the child printed; rejects if it exits first or after `ms`. */
  waitFor(check: (out: { stdout: string; stderr: string }) => boolean, what: string, ms = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const test = () => {
        if (!check(this)) return;
        cleanup();
        resolve();
      };
      const exit = () => {
        cleanup();
        reject(new Error(`exited before ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`));
      }, ms);
      const cleanup = () => {
        clearTimeout(timer);
        this.child.stdout?.off("data", test);
        this.child.stderr?.off("data", test);
        this.child.off("close", exit);
      };
      // Listeners added after the gathering ones, so `this` already holds the new chunk.
      this.child.stdout?.on("data", test);
      this.child.stderr?.on("data", test);
      this.child.on("close", exit);
      test();
    });
  }
}

/** `node dist/cli.js <args>`, with `env` added to this process's (minus any DUCKTAIL_* of the caller). */
export function startCli(args: string[], env: Record<string, string> = {}): Running {
  return new Running(spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: cliEnv(env) }));
}

/** Runs the command to its end, feeding `input` to its stdin (closed at once when absent). */
export async function runCli(args: string[], env: Record<string, string> = {}, input?: string): Promise<CliResult> {
  const running = startCli(args, env);
  running.child.stdin?.end(input ?? "");
  return running.exited;
}

/** A shell pipeline (bash, pipefail: its status is the first non-zero of the stages). */
export function startPipeline(script: string, env: Record<string, string> = {}): Running {
  return new Running(spawn("bash", ["-c", `set -o pipefail; ${script}`], { cwd: ROOT, env: cliEnv(env) }));
}

function cliEnv(env: Record<string, string>): Record<string, string> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k, v]) => v !== undefined && !k.startsWith("DUCKTAIL_")),
  ) as Record<string, string>;
  return { ...base, NO_COLOR: "1", ...env };
}
