// `npm run dev`: the webhook receiver and `wrangler dev`, together; Ctrl-C stops both.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

// Run wrangler's JS with this Node (22 under npm scripts, from the `node` devDependency).
const wrangler = fileURLToPath(new URL("node_modules/wrangler/bin/wrangler.js", import.meta.url));
const env = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" };
const children = [
  spawn(process.execPath, ["receiver.mjs"], { stdio: "inherit", env }),
  spawn(process.execPath, [wrangler, "dev", ...process.argv.slice(2)], { stdio: "inherit", env }),
];
const stop = () => {
  for (const c of children) c.kill("SIGTERM");
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
for (const c of children) c.on("exit", stop);
