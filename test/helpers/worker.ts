import type { Miniflare } from "miniflare";
import { afterAll, beforeAll } from "vitest";
// @ts-expect-error plain .mjs helper without types
import { buildWorker, startWorker } from "./miniflare.mjs";

/** A suite's Worker: `mf` and `url` are set once its `beforeAll` has run. */
export interface SuiteWorker {
  readonly mf: Miniflare;
  readonly url: string;
}

/**
 * The bundled Worker under Miniflare for the enclosing `describe`, with `vars` over wrangler.toml's:
 * built and started before its tests, disposed after them.
 */
export function useWorker(vars: Record<string, string> = {}): SuiteWorker {
  let started: { mf: Miniflare; url: string } | null = null;
  beforeAll(async () => {
    started = await startWorker(buildWorker(), { vars });
  });
  afterAll(async () => {
    await started?.mf.dispose();
  });
  const get = () => {
    if (!started) throw new Error("the suite's Worker is not started yet (use it inside a test or a later hook)");
    return started;
  };
  return {
    get mf() {
      return get().mf;
    },
    get url() {
      return get().url;
    },
  };
}
