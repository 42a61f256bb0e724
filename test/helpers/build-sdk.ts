// vitest globalSetup: rebuild dist/ (client, console, CLI, duck.js) so tests run the current sdk/.
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
  execFileSync(process.execPath, [join(root, "sdk/build.mjs")], { stdio: "inherit" });
}
