// The V8 profiler of a Worker inside workerd, through Miniflare's inspector (`inspectorPort`):
// a minimal Chrome DevTools Protocol client and the reading of its sampling profiles. Used by
// bench/profile.mjs (ingest) and bench/tail-profile.mjs (live tail); neither is part of `npm run bench`.
import WebSocket from "ws";

/** A CDP client connected to the user Worker's isolate among the inspector's targets on `port`. */
export async function devtools(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => t.title?.includes("core:user:"));
  if (!target) throw new Error(`no user worker among inspector targets: ${targets.map((t) => t.title).join(", ")}`);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  const waiting = new Map();
  let next = 0;
  ws.on("message", (data) => {
    const msg = JSON.parse(data.toString());
    waiting.get(msg.id)?.(msg.result);
    waiting.delete(msg.id);
  });
  return {
    call: (method, params = {}) =>
      new Promise((resolve) => {
        const id = ++next;
        waiting.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/** A sample's function as "name file:line". */
function frameName({ functionName, url, lineNumber }) {
  return `${functionName || "(anonymous)"} ${url ? `${url.split("/").pop()}:${lineNumber + 1}` : ""}`.trim();
}

/** Self samples per function ("name file:line"), as shares of all samples, largest first. */
export function selfTime(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const id of profile.samples) {
    const key = frameName(nodes.get(id).callFrame);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([fn, n]) => ({ fn, share: n / profile.samples.length })).sort((a, b) => b.share - a.share);
}

/** Samples with each function anywhere on their stack (by name), as shares of all samples, largest first. */
export function inclusiveTime(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const counts = new Map();
  for (const id of profile.samples) {
    const seen = new Set();
    for (let x = id; x !== undefined; x = parent.get(x)) seen.add(nodes.get(x).callFrame.functionName || "(anonymous)");
    for (const f of seen) counts.set(f, (counts.get(f) ?? 0) + 1);
  }
  return [...counts].map(([fn, n]) => ({ fn, share: n / profile.samples.length })).sort((a, b) => b.share - a.share);
}
