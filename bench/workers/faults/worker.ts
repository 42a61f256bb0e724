// Bench- and test-only build of DuckTail: the real Worker, coordinator and replica, except that
// every replica reaches R2 through one switch that can take it down (bench/faults.mjs, the faults
// e2e test). Never deploy it: `/__faults` is unauthenticated.
//
//   POST /__faults?mode=down|hang|up[&only=<key prefix>]   fail or hang every R2 call (on keys
//        under the prefix), or heal (calls still hanging then fail)
//   POST /__faults?mode=flap&downMs=D&upMs=U[&fault=hang]  D ms of the fault, U ms of health, again
//   GET  /__faults[?since=<epoch ms>]   → { calls, byMethod, perSecond: [{second, calls}], now }
//        the replicas' R2 calls (tries) since then, and what they met
import type { Env } from "../../../src/env";
import { BufferReplica as DuckTailReplica } from "../../../src/replica/BufferReplica";
import duckTail from "../../../src/worker";
import { type BucketCall, BucketFaults } from "../../../test/helpers/faulty-bucket";

export { BufferCoordinator } from "../../../src/group/BufferCoordinator";
export { LakeCatalog } from "../../../src/lake/catalog/LakeCatalog";

// One switch for every replica: the Worker and its Durable Objects share this isolate under workerd.
const faults = new BucketFaults();

export class BufferReplica extends DuckTailReplica {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, { ...env, EVENTS: faults.wrap(env.EVENTS) });
  }
}

function control(req: Request, url: URL): Response {
  const q = url.searchParams;
  if (req.method === "POST") {
    const prefix = q.get("only");
    const only = prefix === null ? undefined : (key: string) => key.startsWith(prefix);
    const mode = q.get("mode");
    if (mode === "down") faults.down(only);
    else if (mode === "hang") faults.hang(only);
    else if (mode === "up") faults.up();
    else if (mode === "flap")
      faults.flap(Number(q.get("downMs")), Number(q.get("upMs")), q.get("fault") === "hang" ? "hang" : "down");
    else return new Response(`unknown mode ${mode}`, { status: 400 });
    return new Response(null, { status: 204 });
  }
  const since = Number(q.get("since") ?? 0);
  const calls = faults.calls.filter((c) => c.at >= since);
  const byMethod: Record<string, number> = {};
  const perSecond = new Map<number, number>();
  for (const c of calls) {
    byMethod[c.method] = (byMethod[c.method] ?? 0) + 1;
    const second = Math.floor(c.at / 1000);
    perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
  }
  const met: Record<BucketCall["met"], number> = { up: 0, down: 0, hang: 0 };
  for (const c of calls) met[c.met]++;
  return Response.json({
    calls: calls.length,
    byMethod,
    met,
    perSecond: [...perSecond].map(([second, n]) => ({ second, calls: n })),
    now: Date.now(),
  });
}

export default {
  ...duckTail,
  async fetch(req: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === "/__faults") return control(req, url);
    return duckTail.fetch(req, env, ctx);
  },
};
