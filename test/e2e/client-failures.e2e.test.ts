// ducktail/client never waits silently: against a port with nothing listening, a server that
// answers 404, the Worker under a wrong prefix and the Worker with a wrong or missing key, over
// each transport, every track() rejects at once with a message naming the URL, the status and
// the fix (permanent failures), or the outage is reported once and flush() resolves with what is
// still pending (transient ones).
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import {
  type ClientOptions,
  DuckTailClient,
  type DuckTailClientError,
  type FlushReport,
  type Transport,
} from "../../sdk/index";
import { closedPort } from "../helpers/ports";
import { TcpProxy } from "../helpers/tcp-proxy";
import { useWorker } from "../helpers/worker";

const KEYS = { wk: { tenant: "fail", scope: "write" }, rk: { tenant: "fail", scope: "read" } };
const TRANSPORTS: Transport[] = ["auto", "websocket", "http"];

/** Settles like `promise`, or rejects after `ms`: a failure must not turn into a hung test. */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Resolves once `check` holds, polling an observable counter; rejects after `ms`. */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The reason a promise rejected with (it must reject within `ms`). */
async function rejection(promise: Promise<unknown>, ms = 5_000): Promise<DuckTailClientError> {
  return within(
    ms,
    promise.then(
      () => {
        throw new Error("resolved, expected a rejection");
      },
      (err: DuckTailClientError) => err,
    ),
    "the track() promise",
  );
}

describe("ducktail/client failures", { timeout: 30_000 }, () => {
  const worker = useWorker({ DUCKTAIL_KEYS: JSON.stringify(KEYS) });
  const clients: DuckTailClient[] = [];
  const proxies: TcpProxy[] = [];
  let notFound: Server;
  let notFoundUrl: string;
  let warn: MockInstance<(...args: unknown[]) => void>;

  beforeAll(async () => {
    // Not DuckTail: every request, upgrades included, gets a plain-text 404.
    notFound = createHttpServer((_req, res) => res.writeHead(404, { "content-type": "text/plain" }).end("no"));
    await new Promise<void>((done) => notFound.listen(0, "127.0.0.1", done));
    notFoundUrl = `http://127.0.0.1:${(notFound.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(0)));
    await Promise.all(proxies.map((p) => p.down()));
    await new Promise((done) => notFound?.close(done));
  });

  beforeEach(() => {
    warn = vi.spyOn(console, "warn").mockImplementation(() => {});
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** What the client warned about on the console. */
  const warnings = () => warn.mock.calls.map((args) => String(args[0])).filter((l) => l.startsWith("ducktail:"));

  function client(options: ClientOptions, errors: DuckTailClientError[]): DuckTailClient {
    const c = new DuckTailClient({ batchInterval: 5, onError: (e) => errors.push(e), ...options });
    clients.push(c);
    return c;
  }

  describe.each(TRANSPORTS)("over transport %s", (transport) => {
    const socketOrPost = (base: string) =>
      transport === "http" ? `POST ${base}/e` : `${base.replace(/^http/, "ws")}/ws`;

    const permanent: [string, () => { url: string; key?: string }, RegExp, string, number][] = [
      [
        "a wrong key",
        () => ({ url: worker.url, key: "nope" }),
        /answered 401 unauthorized: the key given is unknown to this Worker; pass \{ key \} with a write key/,
        "unauthorized",
        401,
      ],
      [
        "no key where the Worker needs one",
        () => ({ url: worker.url }),
        /answered 401 unauthorized: no key was given and this Worker requires one; pass \{ key \}/,
        "unauthorized",
        401,
      ],
      [
        "a server that answers 404 (not DuckTail)",
        () => ({ url: notFoundUrl, key: "wk" }),
        /answered 404 not_found: nothing serves \/(ws|e) here; url should be the Worker's base URL, e\.g\. https:\/\/<worker>\.workers\.dev/,
        "not_found",
        404,
      ],
      [
        "the Worker under a wrong path prefix",
        () => ({ url: `${worker.url}/wrong-prefix`, key: "wk" }),
        /answered 404 not_found: nothing serves \/(ws|e) here; url should be the Worker's base URL.*\(server: "no route \/wrong-prefix\/(ws|e)"\)/,
        "not_found",
        404,
      ],
    ];

    it.each(permanent)(
      "rejects every pending track at once on %s, and every later one, with the URL, the status and the fix",
      async (_what, target, fix, code, status) => {
        const errors: DuckTailClientError[] = [];
        const { url, key } = target();
        const c = client({ url, key, transport }, errors);
        const tracked = [0, 1, 2].map((i) => c.track("fail", { i }, { id: `perm-${transport}-${i}` }));
        const report = await within(5_000, c.flush(), "flush()");
        expect(report).toEqual({ acked: 0, failed: 3, pending: 0 });
        for (const [i, p] of tracked.entries()) {
          const err = await rejection(p);
          expect(err).toMatchObject({ name: "DuckTailClientError", code, status, eventId: `perm-${transport}-${i}` });
          expect(err.message).toContain(socketOrPost(url));
          expect(err.message).toMatch(fix);
        }
        const later = await rejection(c.track("fail", {}, { id: "later" }));
        expect(later).toMatchObject({ code, status, eventId: "later" });
        await expect(within(1_000, c.connect(), "connect()")).rejects.toMatchObject({ code });
        // Reported once for the client, then once per refused event; warned once.
        expect(errors.map((e) => [e.code, e.eventId])).toEqual([
          [code, undefined],
          ...[0, 1, 2].map((i) => [code, `perm-${transport}-${i}`]),
          [code, "later"],
        ]);
        expect(warnings()).toHaveLength(1);
        expect(warnings()[0]).toContain(socketOrPost(url));
        expect(warnings()[0]).toContain("This client now refuses every event");
      },
    );

    it("keeps events queued while nothing listens, reports the outage once however many retries fail, and flush() resolves with them pending", async () => {
      const port = await closedPort();
      const errors: DuckTailClientError[] = [];
      let attempts = 0; // the probe after each failed upgrade, or each POST
      const realFetch = globalThis.fetch;
      vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
        if (String(input instanceof Request ? input.url : input).includes(`127.0.0.1:${port}`)) attempts++;
        return realFetch(input, init);
      });
      const url = `http://127.0.0.1:${port}`;
      const c = client({ url, transport }, errors);
      const events: DuckTailClientError[] = [];
      c.on("error", (e) => events.push(e));
      const tracked = c.track("down", {}, { id: `down-${transport}` });
      let settled = false;
      tracked.then(
        () => (settled = true),
        () => (settled = true),
      );
      await until(() => attempts >= 3, "three failed attempts");
      expect(await within(2_000, c.flush(200), "flush(200)")).toEqual({ acked: 0, failed: 0, pending: 1 });
      expect(settled, "the event is still held for a retry").toBe(false);
      expect(c.unacked).toBe(1);
      expect(errors.map((e) => e.code)).toEqual(["unreachable"]);
      expect(events, 'on("error") gets the same').toEqual(errors);
      const [outage] = errors;
      expect(outage?.message).toContain(`127.0.0.1:${port}`);
      expect(outage?.message).toMatch(/ECONNREFUSED/);
      expect(outage?.message).toMatch(/1 event held, retrying with backoff/);
      expect(warnings()).toEqual([
        `ducktail: ${outage?.message} (one warning per outage; { warnings: false } silences it)`,
      ]);
      await c.close(0);
      await expect(tracked).rejects.toMatchObject({ code: "closed" });
    });

    it("warns again for the next outage once the connection came back, and not at all with warnings: false", async () => {
      const proxy = await TcpProxy.create(Number(new URL(worker.url).port));
      proxies.push(proxy);
      const errors: DuckTailClientError[] = [];
      const c = client({ url: `http://127.0.0.1:${proxy.port}`, key: "wk", transport }, errors);
      const first = c.track("outage", {}, { id: `outage-1-${transport}` });
      await until(() => errors.length === 1, "the first outage report");
      await proxy.up();
      await within(5_000, c.flush(), "flush() after the proxy came up");
      await expect(first).resolves.toEqual({ id: `outage-1-${transport}` });
      await proxy.down();
      const second = c.track("outage", {}, { id: `outage-2-${transport}` });
      await until(() => errors.length === 2, "the second outage report");
      expect(errors.map((e) => e.code)).toEqual(["unreachable", "unreachable"]);
      expect(warnings()).toHaveLength(2);
      await proxy.up();
      await within(5_000, c.flush(), "flush() after the proxy came up again");
      await expect(second).resolves.toEqual({ id: `outage-2-${transport}` });
      await c.close(0); // before the proxy goes: its next outage is not this test's
      await proxy.down();

      const quietErrors: DuckTailClientError[] = [];
      const quiet = client({ url: `http://127.0.0.1:${await closedPort()}`, transport, warnings: false }, quietErrors);
      void quiet.track("quiet").catch(() => {});
      await until(() => quietErrors.length === 1, "the quiet client's outage report");
      expect(quietErrors[0]?.code).toBe("unreachable");
      expect(warnings()).toHaveLength(2);
    });
  });

  it("rejects at once over HTTP with a key that may not send (403 forbidden)", async () => {
    const errors: DuckTailClientError[] = [];
    const c = client({ url: worker.url, key: "rk", transport: "http" }, errors);
    const err = await rejection(c.track("forbidden"));
    expect(err).toMatchObject({ code: "forbidden", status: 403 });
    expect(err.message).toContain(`POST ${worker.url}/e answered 403 forbidden: the key may not send events`);
    expect(warnings()).toHaveLength(1);
  });

  it("resolves flush() after its default 10 s, not before, with what is still pending", async () => {
    // Only the client's timers are faked; vi.waitFor keeps real ones, so every wait stays bounded.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const c = client({ url: `http://127.0.0.1:${await closedPort()}`, transport: "http", warnings: false }, []);
      let settled = false;
      void c.track("never").then(
        () => (settled = true),
        () => (settled = true),
      );
      let report: FlushReport | undefined;
      void c.flush().then((r) => (report = r));
      await vi.advanceTimersByTimeAsync(9_990);
      expect(report, "still waiting before 10 s").toBeUndefined();
      await vi.advanceTimersByTimeAsync(10);
      await vi.waitFor(() => expect(report).toEqual({ acked: 0, failed: 0, pending: 1 }), { timeout: 1_000 });
      expect(settled).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });
});
