// The demo's webhook receiver: prints each batch of critical events DuckTail posts, once per
// Idempotency-Key (a retried batch carries the same key).
import { createServer } from "node:http";

const PORT = Number(process.env.PORT ?? 8788);
const TOKEN = process.env.WEBHOOK_TOKEN ?? "dev-token";
const seen = new Set();

createServer(async (req, res) => {
  if (req.method !== "POST" || req.url !== "/hook") return res.writeHead(404).end();
  if (req.headers.authorization !== `Bearer ${TOKEN}`) return res.writeHead(401).end();
  let body = "";
  for await (const chunk of req) body += chunk;
  const key = req.headers["idempotency-key"];
  if (!seen.has(key)) {
    seen.add(key);
    const { events } = JSON.parse(body);
    for (const e of events) console.log(`[webhook] ${e.importance} ${e.type} ${JSON.stringify(e.data)}`);
  }
  res.writeHead(204).end();
}).listen(PORT, "127.0.0.1", () => console.log(`[webhook] receiver on http://127.0.0.1:${PORT}/hook`));
