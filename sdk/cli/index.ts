// The `ducktail` command (package bin, bundled to dist/cli.js by sdk/build.mjs). See sdk/cli/README.md.
import { main } from "./main";

process.exitCode = await main(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
