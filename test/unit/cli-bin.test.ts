// The `ducktail` command as the README runs it in a checkout: `npx ducktail …`. npm runs the
// project's own bin file as it is, so the build must leave it executable with its shebang.
import { spawnSync } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { VERSION } from "../../src/protocol/version";
import { ROOT } from "../helpers/cli";

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  bin: { ducktail: string };
};
const file = join(ROOT, pkg.bin.ducktail);

describe("the ducktail bin", { timeout: 30_000 }, () => {
  it("is executable and runs by its shebang", () => {
    expect(() => accessSync(file, constants.X_OK)).not.toThrow();
    expect(readFileSync(file, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
    const run = spawnSync(file, ["--help"], { cwd: ROOT, encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^Usage: ducktail <command>/);
  });

  it("runs as `npx ducktail` in the checkout, never fetching a package of that name", () => {
    // --no: if npm did not find the project's own bin it would refuse, not install `ducktail` from the registry.
    const run = spawnSync("npx", ["--no", "--", "ducktail", "--help"], { cwd: ROOT, encoding: "utf8" });
    expect(run.stderr).not.toMatch(/Permission denied|not found|could not determine/i);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^Usage: ducktail <command>/);
  });

  it("prints the package's version, which /health and the catalog report too", () => {
    expect(VERSION).toBe(pkg.version);
    for (const flag of ["--version", "-V"]) {
      const run = spawnSync(file, [flag], { cwd: ROOT, encoding: "utf8" });
      expect(run.status).toBe(0);
      expect(run.stdout).toBe(`ducktail ${pkg.version}\n`);
    }
  });
});
