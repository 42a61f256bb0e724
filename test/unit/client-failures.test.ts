// Which answers stop ducktail/client for good (the key or the URL is wrong) and which it retries,
// from a local server answering what each case needs.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { permanentFailure, probeSocket } from "../../sdk/failures";
import { endpoints } from "../../sdk/url";

describe("permanent failures", () => {
  it.each([
    [401, "unauthorized", /the key given is unknown to this Worker; pass \{ key \}/],
    [403, "forbidden", /the key may not send events; pass \{ key \} with a write \(or admin\) key/],
    [404, "not_found", /nothing serves \/e here; url should be the Worker's base URL/],
    [405, "method_not_allowed", /\/e does not take this method here, so this is not a DuckTail Worker/],
    [410, "not_found", /nothing serves \/e here any more/],
  ])("names the URL, the status and the fix for %i", (status, code, fix) => {
    const err = permanentFailure("POST https://h.example/e", "/e", { status, body: null }, true);
    expect(err).toMatchObject({ code, status, message: expect.stringMatching(fix) });
    expect(err?.message.startsWith(`POST https://h.example/e answered ${status} ${code}: `)).toBe(true);
  });

  it("keeps the server's own code and message", () => {
    const answer = { status: 404, code: "not_found", message: "no route /x/ws", body: {} };
    expect(permanentFailure("wss://h/x/ws", "/ws", answer, false)?.message).toMatch(/\(server: "no route \/x\/ws"\)$/);
  });

  it.each([400, 408, 413, 429, 500, 502, 503])("leaves %i to a retry or to the batch", (status) => {
    expect(permanentFailure("POST https://h/e", "/e", { status, body: null }, true)).toBeNull();
  });
});

describe("probing a failed upgrade with a plain GET", () => {
  let server: Server;
  let base: string;
  /** What the server answers GET /<status>/ws with: that status and, for DuckTail cases, its error body. */
  beforeAll(async () => {
    server = createServer((req, res) => {
      const [, status = "200", code] = (req.url ?? "").split("?")[0]?.split("/") ?? [];
      const body = code === "bad_frame" ? { error: { code, message: "expected a WebSocket upgrade" } } : { ok: true };
      res.writeHead(Number(status), { "content-type": "application/json" }).end(JSON.stringify(body));
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((done) => server.close(done));
  });

  it("calls 400 bad_frame (key and path fine) transient", async () => {
    const probe = await probeSocket(endpoints(`${base}/400/bad_frame`), "k");
    expect(probe).toEqual({
      transient: expect.stringMatching(
        /upgrade to ws:\/\/.*\/400\/bad_frame\/ws failed though the Worker answers \(GET: 400 bad_frame\)/,
      ),
    });
  });

  it.each(["500", "503", "429", "200"])("calls %s transient", async (status) => {
    const probe = await probeSocket(endpoints(`${base}/${status}`), undefined);
    expect(probe).toEqual({
      transient: expect.stringContaining(`refused the WebSocket upgrade (GET answered ${status})`),
    });
  });

  it("calls 401 permanent, saying whether a key was given", async () => {
    const withKey = await probeSocket(endpoints(`${base}/401`), "k");
    const without = await probeSocket(endpoints(`${base}/401`), undefined);
    expect(withKey).toEqual({ permanent: expect.objectContaining({ code: "unauthorized", status: 401 }) });
    expect("permanent" in withKey && withKey.permanent.message).toMatch(/the key given is unknown/);
    expect("permanent" in without && without.permanent.message).toMatch(/no key was given/);
  });
});
