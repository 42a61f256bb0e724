// Session recording in headless Chromium: duck.js with `record` loads duck-record.js, which
// records a checkout form while the test types and clicks; the stored session holds what the
// page showed with its masked and blocked parts left out; a socket dropped mid-session loses no
// chunk and stores none twice; a page without `record` never asks for duck-record.js.
import type { Server } from "node:http";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionSummary } from "../../src/protocol/recording";
import { launchChromium, skipBrowser, warnIfSkipped } from "../helpers/browser";
import { dashboardPage, screenshot } from "../helpers/dashboard";
import { eventually } from "../helpers/eventually";
import { BLOCKED_TEXT, ERROR_TEXT, MASKED_TEXT, startSite, THANKS_TEXT, VISIBLE_TEXT } from "../helpers/recording-site";
import { TcpProxy } from "../helpers/tcp-proxy";
import { PageEvents } from "../helpers/watch";
import { useWorker } from "../helpers/worker";

warnIfSkipped("the session recording browser tests");

const KEYS = {
  wk_rec: { tenant: "rec", scope: "write" },
  rk_rec: { tenant: "rec", scope: "read" },
};
/** Short chunks and re-sends, so a test sees several of each in a second or two. */
const RECORD = { record: true, recordOptions: { chunkMs: 250, resendMs: 400 }, flushInterval: 200 };

interface Recording {
  summary: SessionSummary;
  events: { type: number; timestamp: number; data?: unknown }[];
}

/**
 * The page's recording traffic, on its socket and over POST /recording, counted as it happens
 * (`until`: see PageEvents).
 */
class RecordingWatch extends PageEvents {
  protected override readonly waitMs = 15_000;
  /** Seqs of chunks sent, in order (re-sends repeat a seq). */
  readonly sent: number[] = [];
  readonly acked = new Set<number>();
  duplicates = 0;
  posts = 0;
  /** What the chunks sent carried (frames and POST bodies). */
  readonly texts: string[] = [];
  readonly requests: string[] = [];

  constructor(page: Page) {
    super();
    page.on("request", (r) => {
      this.record(() => this.requests.push(r.url()));
      if (!new URL(r.url()).pathname.endsWith("/recording")) return;
      const chunks = JSON.parse(r.postData() ?? "[]") as { seq: number }[];
      this.record(() => {
        this.posts++;
        this.texts.push(r.postData() ?? "");
        this.sent.push(...chunks.map((c) => c.seq));
      });
    });
    page.on("requestfinished", async (r) => {
      if (!new URL(r.url()).pathname.endsWith("/recording")) return;
      const answer = (await (await r.response())?.json()) as { recorded: { seq: number; duplicate: boolean }[] };
      this.record(() => {
        for (const a of answer.recorded) {
          this.acked.add(a.seq);
          if (a.duplicate) this.duplicates++;
        }
      });
    });
    page.on("websocket", (ws) => {
      ws.on("framesent", (f) => {
        const m = /^\{"type":"recording","id":"rec:(\d+)"/.exec(String(f.payload));
        if (m)
          this.record(() => {
            this.sent.push(Number(m[1]));
            this.texts.push(String(f.payload));
          });
      });
      ws.on("framereceived", (f) => {
        const frame = JSON.parse(String(f.payload)) as { type: string; seq?: number; duplicate?: boolean };
        if (frame.type !== "recorded") return;
        this.record(() => {
          this.acked.add(frame.seq as number);
          if (frame.duplicate) this.duplicates++;
        });
      });
    });
  }

  protected override describe(): string {
    return `sent ${this.sent}, acked ${[...this.acked]}`;
  }

  /** Every seq sent so far is acked, and at least `n` were sent. */
  settled(n: number): Promise<void> {
    return this.until(
      () => this.sent.length >= n && new Set(this.sent).size === this.acked.size,
      `${n} recording chunks acked`,
    );
  }
}

describe.skipIf(skipBrowser)("session recording in Chromium", () => {
  const worker = useWorker({ DUCKTAIL_KEYS: JSON.stringify(KEYS) });
  let browser: Browser;
  let site: { url: string; server: Server };
  /** The first test's recording, which the dashboard test replays. */
  let recorded: Recording | null = null;

  beforeAll(async () => {
    browser = await launchChromium();
    site = await startSite(() => worker.url, "wk_rec");
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((done) => site?.server.close(done));
  });

  async function open(query: Record<string, string>): Promise<{ page: Page; watch: RecordingWatch }> {
    const page = await (await browser.newContext()).newPage();
    const watch = new RecordingWatch(page);
    await page.goto(`${site.url}/checkout?${new URLSearchParams(query)}`);
    return { page, watch };
  }

  /** Appends text to the page's #log (a mutation the recorder records). */
  const append = (page: Page, text: string) =>
    page.evaluate((t) => {
      const doc = (globalThis as unknown as { document: { getElementById(id: string): { append(s: string): void } } })
        .document;
      doc.getElementById("log").append(t);
    }, text);

  const sessionOf = (page: Page) =>
    page.evaluate(() => (JSON.parse(localStorage.getItem("duck_sid") ?? "{}") as { id: string }).id);

  async function recording(session: string): Promise<Recording> {
    const res = await fetch(`${worker.url}/recording/${session}?key=rk_rec`);
    expect(res.status).toBe(200);
    return (await res.json()) as Recording;
  }

  it("records typing and a click with inputs and data-duck-mask text masked and data-duck-block left out", async () => {
    const { page, watch } = await open({ opts: JSON.stringify(RECORD) });
    await watch.settled(1); // the full snapshot is stored
    await page.fill("#name", "Bob Secretname");
    await page.fill("#card", "4111111111111111");
    await page.click("#buy");
    await page.waitForSelector(`text=${THANKS_TEXT}`);
    await watch.until(() => watch.texts.some((t) => t.includes(THANKS_TEXT)), "the click's chunk sent");
    await watch.settled(watch.sent.length);
    const session = await sessionOf(page);
    const stored = await recording(session);
    const text = JSON.stringify(stored.events);
    expect(text).toContain(VISIBLE_TEXT);
    expect(text).toContain(THANKS_TEXT);
    expect(text).not.toContain(MASKED_TEXT);
    expect(text).not.toContain(BLOCKED_TEXT);
    expect(text).not.toContain("Secretname");
    expect(text).not.toContain("4111111111111111");
    // The index carries duck.js's anonymous id of the page: DELETE /users/<id>?by=anonymousId finds it.
    const anonymousId = await page.evaluate(() => localStorage.getItem("duck_aid"));
    expect(anonymousId).toMatch(/^[0-9a-f-]{36}$/);
    expect(stored.summary).toMatchObject({ session, chunks: new Set(watch.sent).size, anonymousId });
    await page.context().close();
    recorded = stored;
  });

  it("replays the session in the dashboard to the page's last state, masked and blocked as recorded", async () => {
    if (!recorded) throw new Error("needs the recording of the test before");
    const { summary } = recorded;
    const { page, errors, close } = await dashboardPage(browser);
    // t well past the end: the player seeks to the last recorded state.
    await page.goto(`${worker.url}/dashboard?key=rk_rec#/replay/${summary.session}?t=${summary.end + 10_000}`);
    const frame = page.frameLocator(".replayer-wrapper iframe");
    await frame.locator("#status").filter({ hasText: THANKS_TEXT }).waitFor({ timeout: 10_000 });
    expect(await frame.locator("#visible").textContent()).toBe(VISIBLE_TEXT);
    expect(await frame.locator("#secret").textContent()).toBe(MASKED_TEXT.replace(/\S/g, "*"));
    // A blocked element is replayed as an empty box of its size: none of its attributes or content.
    expect(await frame.locator("#blocked").count()).toBe(0);
    expect(await frame.locator("div[style*='width: 300px']").innerHTML()).toBe("");
    expect(await frame.locator("body").textContent()).not.toContain(BLOCKED_TEXT);
    expect(await frame.locator("#name").inputValue()).toBe("*".repeat("Bob Secretname".length));
    expect(await frame.locator("#card").inputValue()).toMatch(/^\*+$/);
    await screenshot(page, "replay");
    // The sessions list links to it.
    await page.goto(`${worker.url}/dashboard#/replay`);
    await page.locator(`a[href="#/replay/${summary.session}"]`).waitFor();
    // rrweb's player replays into a sandboxed frame without scripts, which Chromium reports.
    expect(errors).toEqual([]);
    await close();
  });

  it("links an error in the errors view to its session's replay, which lists the error", async () => {
    const { page, watch } = await open({ opts: JSON.stringify(RECORD) });
    await watch.settled(1);
    await page.click("#fail");
    await watch.until(() => watch.texts.some((t) => t.includes(ERROR_TEXT)), "the error's chunk sent");
    await watch.settled(watch.sent.length);
    const session = await sessionOf(page);
    expect((await recording(session)).summary.errors).toBe(1);
    // The errors view has the sample once the replica pushed its minute to the tenant's aggregator.
    await eventually(async () =>
      (await (await fetch(`${worker.url}/buffer/mv/errors?key=rk_rec`)).text()).includes(session),
    );
    await page.context().close();
    const dash = await dashboardPage(browser);
    await dash.page.goto(`${worker.url}/dashboard?key=rk_rec#/errors`);
    const link = dash.page.locator(`a.replay[href^="#/replay/${session}?t="]`);
    await link.waitFor({ state: "attached" });
    // The link is in the error's sample, behind its disclosure.
    await dash.page.locator("details", { has: link }).locator("summary").click();
    await link.click();
    await dash.page.locator(".replay-errors button", { hasText: ERROR_TEXT }).waitFor();
    expect(dash.errors).toEqual([]);
    await dash.close();
  });

  it("loses no chunk and stores none twice when the socket drops mid-session", async () => {
    const proxy = await TcpProxy.create(Number(new URL(worker.url).port));
    await proxy.up();
    try {
      const via = `http://127.0.0.1:${proxy.port}`;
      const { page, watch } = await open({ opts: JSON.stringify(RECORD), worker: via });
      await watch.settled(1);
      // Acks are swallowed from here: the chunks of step 1 reach the server, their acks do not.
      proxy.muted = true;
      await append(page, "step one;");
      const unacked = watch.sent.length;
      await watch.until(() => watch.sent.length > unacked, "a chunk sent while acks are lost");
      // The server stored it (its ack is what got lost): the re-send must be answered as a duplicate.
      const session = await sessionOf(page);
      await eventually(async () => (await recording(session)).summary.chunks > unacked);
      proxy.cut();
      proxy.muted = false;
      await append(page, "step two;");
      await watch.until(() => watch.duplicates > 0, "a chunk re-sent after the drop, answered duplicate");
      await watch.settled(watch.sent.length);
      const stored = await recording(await sessionOf(page));
      const seqs = [...new Set(watch.sent)].sort((a, b) => a - b);
      expect(seqs).toEqual(seqs.map((_, i) => i)); // numbered without gaps
      expect(stored.summary.chunks).toBe(seqs.length); // each stored once
      const text = JSON.stringify(stored.events);
      expect(text.indexOf("step one;")).toBeGreaterThan(-1);
      expect(text.indexOf("step two;")).toBeGreaterThan(text.indexOf("step one;"));
      await page.context().close();
    } finally {
      await proxy.down();
    }
  });

  it("posts its chunks when the page has no WebSocket", async () => {
    const page = await (await browser.newContext()).newPage();
    await page.addInitScript(() => {
      (globalThis as unknown as { WebSocket?: unknown }).WebSocket = undefined;
    });
    const watch = new RecordingWatch(page);
    await page.goto(`${site.url}/checkout?${new URLSearchParams({ opts: JSON.stringify(RECORD) })}`);
    await watch.settled(1);
    await append(page, "posted;");
    await watch.until(() => watch.texts.some((t) => t.includes("posted;")), "the chunk with the change sent");
    await watch.settled(watch.sent.length);
    expect(watch.posts).toBeGreaterThan(0);
    expect(JSON.stringify((await recording(await sessionOf(page))).events)).toContain("posted;");
    await page.context().close();
  });

  it("sends what is unacked with sendBeacon when the page is left", async () => {
    // Chunks only on hide: nothing goes on the socket before the page is left.
    const opts = { ...RECORD, recordOptions: { chunkMs: 60_000, resendMs: 60_000 } };
    const { page, watch } = await open({ opts: JSON.stringify(opts) });
    await page.waitForFunction(
      () => typeof (globalThis as unknown as { duck: { rec: { on?: unknown } } }).duck.rec.on === "function",
    );
    await append(page, "before leaving;");
    const session = await sessionOf(page);
    await page.goto(`${site.url}/checkout`); // no snippet there: the beacon is all that is sent
    // Nothing went on the socket and no timer fired: what is stored came with the beacon.
    expect(watch.sent).toEqual([]);
    const stored = await eventually(async () => {
      const res = await fetch(`${worker.url}/recording/${session}?key=rk_rec`);
      return res.ok ? ((await res.json()) as Recording) : null;
    });
    expect(JSON.stringify(stored.events)).toContain("before leaving;");
    await page.context().close();
  });

  it("records nothing when the browser sends Global Privacy Control", async () => {
    const gpc = async (opts: object) => {
      const page = await (await browser.newContext()).newPage();
      await page.addInitScript(() => {
        Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true });
      });
      const watch = new RecordingWatch(page);
      await page.goto(`${site.url}/checkout?${new URLSearchParams({ opts: JSON.stringify(opts) })}`);
      return { page, watch };
    };
    // duck.js respects it (the default): no recorder is even loaded.
    const respected = await gpc(RECORD);
    await respected.page.waitForFunction(
      () => typeof (globalThis as unknown as { duck: { rec?: unknown } }).duck.rec === "object",
    );
    expect(respected.watch.requests.filter((u) => u.includes("duck-record.js"))).toEqual([]);
    await respected.page.context().close();
    // duck.js told to ignore it: the recorder loads, and still records nothing.
    const ignored = await gpc({ ...RECORD, respectDoNotTrack: false });
    await ignored.page.waitForFunction(
      () =>
        typeof (globalThis as unknown as { duck: { rec: { recording?: boolean } } }).duck.rec.recording === "boolean",
    );
    expect(
      await ignored.page.evaluate(
        () => (globalThis as unknown as { duck: { rec: { recording: boolean } } }).duck.rec.recording,
      ),
    ).toBe(false);
    expect(ignored.watch.sent).toEqual([]);
    await ignored.page.context().close();
  });

  it("never requests /duck-record.js from a page without record", async () => {
    const { page, watch } = await open({ opts: JSON.stringify({ flushInterval: 100 }) });
    // duck.js's init has run once `duck.rec` exists: it would have added the recorder's script by then.
    await page.waitForFunction(
      () => typeof (globalThis as unknown as { duck: { rec?: unknown } }).duck.rec === "object",
    );
    expect(watch.requests.some((u) => u.endsWith("/duck.js"))).toBe(true);
    expect(watch.requests.filter((u) => u.includes("duck-record.js"))).toEqual([]);
    await page.context().close();
  });
});
