// A local DuckTail in its own process: `node serve.mjs <bundleDir> <persistDir> [varsJSON]`.
// Prints `READY <url>` once listening. The crash test SIGKILLs this process group mid-stream.
import { startWorker } from "./miniflare.mjs";

const [bundleDir, persistDir, vars] = process.argv.slice(2);
const { url } = await startWorker(bundleDir, { persistDir, vars: vars ? JSON.parse(vars) : {} });
process.stdout.write(`READY ${url}\n`);
setInterval(() => {}, 1 << 30);
