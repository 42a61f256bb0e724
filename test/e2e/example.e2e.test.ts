// The example app (example/): its MyReplica, bundled by wrangler from example/wrangler.toml with
// "ducktail" resolved to this checkout, runs under Miniflare beside a local webhook receiver.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../helpers/eventually";
import { lakeRows } from "../helpers/lake";
// @ts-expect-error plain .mjs helper without types
import { buildWorker, startWorker } from "../helpers/miniflare.mjs";

const ROOT = resolve(import.meta.dirname, "../..");

interface Posted {
  auth: string | undefined;
  key: string | undefined;
  events: { id: string; importance: string; data: Record<string, unknown> }[];
}

describe("example app: a replica with transform and a webhook sink", () => {
  let mf: Miniflare;
  let url: string;
  let receiver: Server;
  const posted: Posted[] = [];

  beforeAll(async () => {
    receiver = createServer(async (req, res) => {
      let body = "";
      for await (const chunk of req) body += chunk;
      posted.push({
        auth: req.headers.authorization,
        key: req.headers["idempotency-key"] as string | undefined,
        events: JSON.parse(body).events,
      });
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const port = (receiver.address() as AddressInfo).port;
    const bundle = buildWorker(join(ROOT, "example/wrangler.toml"), [
      "--alias",
      `ducktail:${join(ROOT, "src/index.ts")}`,
      "--alias",
      `ducktail/sinks:${join(ROOT, "src/sinks/index.ts")}`,
    ]);
    ({ mf, url } = await startWorker(bundle, {
      replicaClass: "MyReplica",
      vars: { WEBHOOK_URL: `http://127.0.0.1:${port}/hook`, WEBHOOK_TOKEN: "t0ken" },
    }));
  });

  afterAll(async () => {
    await mf?.dispose();
    receiver?.close();
  });

  it("redacts emails everywhere, writes Parquet and posts only critical events to the webhook", async () => {
    const res = await fetch(`${url}/e`, {
      method: "POST",
      body: JSON.stringify([
        { id: "x1", type: "signup", importance: "critical", data: { email: "a@b.c", plan: "pro" } },
        { id: "x2", type: "pageview", data: { email: "d@e.f", path: "/" } },
      ]),
    });
    expect(await res.json()).toMatchObject({ stored: 2 });
    expect((await fetch(`${url}/flush`, { method: "POST" })).status).toBe(200);

    expect(posted).toHaveLength(1);
    expect(posted[0]?.auth).toBe("Bearer t0ken");
    expect(posted[0]?.key).toMatch(/^default\/default-0\/\d+$/);
    expect(posted[0]?.events).toMatchObject([{ id: "x1", data: { email: "[redacted]", plan: "pro" } }]);

    const { rows } = await lakeRows(mf);
    expect(rows.map((r) => [r.id, JSON.parse(r.data).email]).sort()).toEqual([
      ["x1", "[redacted]"],
      ["x2", "[redacted]"],
    ]);
  });

  it("serves its own view, merged over every shard by the view aggregator (an object of its replica class)", async () => {
    await fetch(`${url}/buffer/scale`, { method: "POST", body: JSON.stringify({ tier: 2 }) });
    for (let i = 0; i < 8; i++) {
      const plan = i % 4 === 0 ? "team" : "pro";
      const res = await fetch(`${url}/e`, {
        method: "POST",
        body: JSON.stringify([{ type: "signup", data: { plan } }]),
      });
      expect(res.status).toBe(200);
    }
    // Replicas push within about a second of ingest; "x1" above was a pro sign-up too.
    const answer = await eventually(async () => {
      const body = (await (await fetch(`${url}/buffer/mv/signups?window=1h`)).json()) as {
        replicas: { asked: number; missing: unknown[] };
        rows: { plan: string; signups: number }[];
      };
      return body.rows.reduce((n, r) => n + r.signups, 0) === 9 ? body : null;
    });
    expect(answer.rows).toEqual([
      { plan: "pro", signups: 7 },
      { plan: "team", signups: 2 },
    ]);
    expect(answer.replicas).toEqual({ asked: 4, answered: 4, missing: [] });
  });
});
