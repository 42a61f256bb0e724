// The test site for session recording: a checkout form with masked and blocked parts, served by
// a local HTTP server from another origin than the Worker; duck.js comes from `workerUrl`.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** Text the replay must show as it is, text it must mask, and text it must never hold. */
export const VISIBLE_TEXT = "Shipping to Alice";
export const MASKED_TEXT = "Card ends 4242";
export const BLOCKED_TEXT = "Blocked promo banner";
export const THANKS_TEXT = "Thanks, order placed";
/** The message of the uncaught error the page's #fail button throws. */
export const ERROR_TEXT = "Checkout exploded";

function checkoutPage(workerUrl: string, key: string, init: object | null): string {
  const snippet = init
    ? `<script>window.duck = window.duck || []; duck.push(["init", ${JSON.stringify(key)}, ${JSON.stringify(init)}]);</script>
       <script async src="${workerUrl}/duck.js"></script>`
    : "";
  return `<!doctype html><html><head><title>Checkout</title>${snippet}</head><body>
    <h1>Checkout</h1>
    <p id="visible">${VISIBLE_TEXT}</p>
    <p id="secret" data-duck-mask>${MASKED_TEXT}</p>
    <div id="blocked" data-duck-block style="width:300px;height:40px">${BLOCKED_TEXT}</div>
    <form onsubmit="return false">
      <input id="name" name="name" placeholder="Name">
      <input id="card" name="card" type="password">
      <button id="buy" type="button">Buy</button>
      <button id="fail" type="button">Fail</button>
    </form>
    <p id="status"></p>
    <ol id="log"></ol>
    <script>
      document.getElementById("fail").addEventListener("click", () => {
        setTimeout(() => { throw new Error(${JSON.stringify(ERROR_TEXT)}); });
      });
      document.getElementById("buy").addEventListener("click", () => {
        document.getElementById("status").textContent = ${JSON.stringify(THANKS_TEXT)};
      });
    </script>
  </body></html>`;
}

/** Serves `/checkout` (recording with `?opts=<json>` as init options, none when absent). */
export async function startSite(workerUrl: () => string, key: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://site.test");
    const opts = url.searchParams.get("opts");
    res.setHeader("content-type", "text/html");
    res.end(checkoutPage(url.searchParams.get("worker") ?? workerUrl(), key, opts ? JSON.parse(opts) : null));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
