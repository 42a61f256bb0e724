import { describe, expect, it } from "vitest";
import { recordingCron } from "../../src/edge/recording";
import type { Env } from "../../src/env";
import type { SessionSummary } from "../../src/protocol/recording";
import { tenantRoot } from "../../src/recording/keys";
import { retainRecordings } from "../../src/recording/sessions";
import { bucket, tenant } from "./harness";

const NOW = Date.now();

/** rrweb-shaped events: a Meta (type 4) with the page, a custom error (type 5) when asked, then `n` increments. */
function events(at: number, n: number, opts: { href?: string; error?: boolean } = {}) {
  const out: Record<string, unknown>[] = [];
  if (opts.href) out.push({ type: 4, timestamp: at, data: { href: opts.href, width: 800, height: 600 } });
  if (opts.error) out.push({ type: 5, timestamp: at + 1, data: { tag: "error", payload: { message: "boom" } } });
  for (let i = 0; i < n; i++) out.push({ type: 3, timestamp: at + 2 + i, data: { source: 2, i } });
  return out;
}

function chunk(
  session: string,
  seq: number,
  evts: unknown[],
  ids: string | { userId?: string; anonymousId?: string } = {},
) {
  return { session, seq, events: evts, ...(typeof ids === "string" ? { userId: ids } : ids) };
}

async function keysUnder(prefix: string): Promise<string[]> {
  return (await bucket().list({ prefix })).objects.map((o) => o.key).sort();
}

describe("session recording", () => {
  it("acks a chunk on the socket and stores a re-sent seq once", async () => {
    const t = tenant("rec-socket");
    const ws = await t.socket();
    const c = chunk("s-once", 0, events(NOW, 3, { href: "https://site.test/a" }), { anonymousId: "anon-socket" });
    expect(await ws.request({ type: "recording", chunk: c })).toMatchObject({
      type: "recorded",
      session: "s-once",
      seq: 0,
      duplicate: false,
    });
    expect(await ws.request({ type: "recording", chunk: c })).toMatchObject({ type: "recorded", duplicate: true });
    ws.close();
    const keys = await keysUnder(tenantRoot(t.name));
    expect(keys.filter((k) => k.endsWith(".json.gz"))).toEqual([
      expect.stringMatching(/^recordings\/tenant=rec-socket\/dt=\d{4}-\d{2}-\d{2}\/s-once\/0\.json\.gz$/),
    ]);
    const listed = (await (await t.fetch("/recording/sessions")).json()) as { sessions: SessionSummary[] };
    expect(listed.sessions).toEqual([
      expect.objectContaining({ session: "s-once", chunks: 1, errors: 0, userId: null, anonymousId: "anon-socket" }),
    ]);
  });

  it("streams a session's events in seq order, whatever order the chunks came in", async () => {
    const t = tenant("rec-stream");
    const second = events(NOW + 1000, 2);
    const first = events(NOW, 2, { href: "https://site.test/" });
    expect((await t.post("/recording", [chunk("s-order", 1, second)])).status).toBe(200);
    expect((await t.post("/recording", chunk("s-order", 0, first))).status).toBe(200);
    const res = await t.fetch("/recording/s-order");
    expect(res.headers.get("content-type")).toBe("application/json");
    const body = (await res.json()) as { session: string; summary: SessionSummary; events: unknown[] };
    expect(body.events).toEqual([...first, ...second]);
    expect(body.summary).toMatchObject({ start: NOW, end: NOW + 1003, pages: ["https://site.test/"], chunks: 2 });
  });

  it("lists sessions by time, user, anonymous id and errors, newest first, and refuses bad filters", async () => {
    const t = tenant("rec-list");
    const alice = { userId: "alice", anonymousId: "anon-a" };
    await t.post("/recording", chunk("s-alice", 0, events(NOW - 60_000, 1, { error: true }), alice));
    await t.post("/recording", chunk("s-bob", 0, events(NOW - 30_000, 1), { userId: "bob", anonymousId: "anon-b" }));
    const list = async (q: string) =>
      ((await (await t.fetch(`/recording/sessions${q}`)).json()) as { sessions: SessionSummary[] }).sessions.map(
        (s) => s.session,
      );
    expect(await list("")).toEqual(["s-bob", "s-alice"]);
    expect(await list("?userId=alice")).toEqual(["s-alice"]);
    expect(await list("?anonymousId=anon-b")).toEqual(["s-bob"]);
    expect(await list("?anonymousId=anon-b&userId=alice")).toEqual([]);
    expect(await list("?hasErrors=true")).toEqual(["s-alice"]);
    expect(await list("?hasErrors=false")).toEqual(["s-bob"]);
    expect(await list(`?from=${NOW - 45_000}&to=${NOW}`)).toEqual(["s-bob"]);
    expect(await list("?limit=1")).toEqual(["s-bob"]);
    expect((await t.fetch("/recording/sessions?hasErrors=maybe")).status).toBe(400);
    expect((await t.fetch("/recording/sessions?from=tomorrow")).status).toBe(400);
    expect((await t.fetch(`/recording/sessions?from=${NOW}&to=${NOW - 1}`)).status).toBe(400);
  });

  it("is tenant-confined and needs read scope to read, admin to delete", async () => {
    const a = tenant("rec-tenant-a");
    const b = tenant("rec-tenant-b");
    await a.post("/recording", chunk("s-mine", 0, events(NOW, 1)));
    expect((await b.fetch("/recording/s-mine")).status).toBe(404);
    expect(((await (await b.fetch("/recording/sessions")).json()) as { sessions: unknown[] }).sessions).toEqual([]);
    expect((await a.fetch("/recording/sessions", {}, `key-${a.name}-write`)).status).toBe(403);
    expect((await a.fetch("/recording/s-mine", {}, `key-${a.name}-read`)).status).toBe(200);
    expect((await a.fetch("/recording/s-mine", { method: "DELETE" }, `key-${a.name}-read`)).status).toBe(403);
    expect((await b.fetch("/recording/s-mine", { method: "DELETE" })).status).toBe(404);
    const deleted = await a.fetch("/recording/s-mine", { method: "DELETE" });
    expect(await deleted.json()).toEqual({ session: "s-mine", deleted: 2 });
    expect((await a.fetch("/recording/s-mine")).status).toBe(404);
    expect(await keysUnder(tenantRoot(a.name))).toEqual([]);
  });

  it("refuses malformed chunks with a clear error, on the socket and over HTTP", async () => {
    const t = tenant("rec-bad");
    const ws = await t.socket();
    const reply = await ws.request({ type: "recording", chunk: { session: "x y", seq: 0, events: [] } });
    expect(reply).toMatchObject({ type: "error", code: "bad_frame", message: expect.stringContaining("session") });
    const noEvents = await t.post("/recording", { session: "ok", seq: 0, events: [] });
    expect(noEvents.status).toBe(400);
    expect(await noEvents.json()).toMatchObject({ error: { code: "bad_request" } });
    expect((await t.post("/recording", { session: "ok", seq: -1, events: events(NOW, 1) })).status).toBe(400);
    expect((await t.post("/recording", { session: "ok", seq: 0, events: [{ type: "x" }] })).status).toBe(400);
    expect((await t.fetch("/recording", { method: "POST", body: "{nope" })).status).toBe(400);
    const huge = await t.post("/recording", chunk("ok", 0, [{ type: 3, timestamp: NOW, data: "x".repeat(1_100_000) }]));
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ error: { code: "frame_too_large" } });
    expect((await t.fetch("/recording/%E0%A4%A")).status).toBe(400);
    ws.close();
  });

  it("refuses a chunk that would take the session past RECORDING_MAX_SESSION_BYTES", async () => {
    const t = tenant("rec-full", "admin", { RECORDING_MAX_SESSION_BYTES: "400" } as Partial<Env>);
    // Incompressible payloads: a few hundred gzipped bytes each.
    const noise = (n: number) => Array.from({ length: n }, () => Math.random().toString(36).slice(2)).join("");
    const big = (at: number) => [{ type: 3, timestamp: at, data: { text: noise(20) } }];
    expect((await t.post("/recording", chunk("s-full", 0, big(NOW)))).status).toBe(200);
    const refused = await t.post("/recording", chunk("s-full", 1, big(NOW + 1)));
    expect(refused.status).toBe(413);
    expect(await refused.json()).toMatchObject({ error: { code: "recording_full" } });
    const body = (await (await t.fetch("/recording/s-full")).json()) as { events: unknown[] };
    expect(body.events).toHaveLength(1);
  });

  it("DELETE /users/<id> removes that user's recordings and nobody else's", async () => {
    const t = tenant("rec-erase");
    await t.post("/recording", chunk("s-gone", 0, events(NOW, 1), "carol"));
    await t.post("/recording", chunk("s-kept", 0, events(NOW, 1), "dave"));
    const res = await t.fetch("/users/carol", { method: "DELETE" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ recordings: 1 });
    expect((await t.fetch("/recording/s-gone")).status).toBe(404);
    expect((await t.fetch("/recording/s-kept")).status).toBe(200);
  });

  it("DELETE /users/<id>?by=anonymousId removes the sessions recorded under that anonymous id, identified or not", async () => {
    const t = tenant("rec-erase-anon");
    await t.post("/recording", chunk("s-anon", 0, events(NOW, 1), { anonymousId: "anon-erin" }));
    await t.post("/recording", chunk("s-later", 0, events(NOW, 1), { anonymousId: "anon-erin" }));
    await t.post("/recording", chunk("s-later", 1, events(NOW + 10, 1), { userId: "erin", anonymousId: "anon-erin" }));
    // Its userId is the string asked for, but by=anonymousId looks at anonymous ids only.
    await t.post("/recording", chunk("s-other", 0, events(NOW, 1), { userId: "anon-erin", anonymousId: "anon-frank" }));
    const byUser = await t.fetch("/users/anon-frank?by=userId", { method: "DELETE" });
    expect(await byUser.json()).toMatchObject({ recordings: 0 });
    const res = await t.fetch("/users/anon-erin?by=anonymousId", { method: "DELETE" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ matchedBy: "anonymousId", recordings: 2 });
    expect((await t.fetch("/recording/s-anon")).status).toBe(404);
    expect((await t.fetch("/recording/s-later")).status).toBe(404);
    expect((await t.fetch("/recording/s-other")).status).toBe(200);
    const left = await keysUnder(tenantRoot(t.name));
    expect(left.filter((k) => !k.includes("/s-other"))).toEqual([]);
  });

  it("lists and erases a session by a userId its chunks carried before another user's", async () => {
    const t = tenant("rec-shared-device");
    await t.post("/recording", chunk("s-shared", 0, events(NOW, 1), { userId: "ivy", anonymousId: "anon-kiosk" }));
    await t.post(
      "/recording",
      chunk("s-shared", 1, events(NOW + 10, 1), { userId: "jack", anonymousId: "anon-kiosk" }),
    );
    await t.post("/recording", chunk("s-jack", 0, events(NOW, 1), { userId: "jack" }));
    const list = async (q: string) =>
      ((await (await t.fetch(`/recording/sessions${q}`)).json()) as { sessions: SessionSummary[] }).sessions;
    const ivy = await list("?userId=ivy");
    expect(ivy).toEqual([expect.objectContaining({ session: "s-shared", userId: "jack", otherUserIds: ["ivy"] })]);
    const res = await t.fetch("/users/ivy?by=userId", { method: "DELETE" });
    expect(await res.json()).toMatchObject({ recordings: 1 });
    expect((await t.fetch("/recording/s-shared")).status).toBe(404);
    expect((await t.fetch("/recording/s-jack")).status).toBe(200);
  });

  it("DELETE /users/<id> (by any) removes the sessions with that userId and those with that anonymousId", async () => {
    const t = tenant("rec-erase-any");
    await t.post("/recording", chunk("s-as-user", 0, events(NOW, 1), { userId: "gus", anonymousId: "anon-1" }));
    await t.post("/recording", chunk("s-as-anon", 0, events(NOW, 1), { anonymousId: "gus" }));
    await t.post("/recording", chunk("s-kept", 0, events(NOW, 1), { userId: "hal", anonymousId: "anon-2" }));
    const res = await t.fetch("/users/gus?by=any", { method: "DELETE" });
    expect(await res.json()).toMatchObject({ matchedBy: "any", recordings: 2 });
    expect((await t.fetch("/recording/s-as-user")).status).toBe(404);
    expect((await t.fetch("/recording/s-as-anon")).status).toBe(404);
    expect((await t.fetch("/recording/s-kept")).status).toBe(200);
  });

  it("lists and erases a session whose ids are too long for the index's R2 metadata", async () => {
    const t = tenant("rec-long-ids");
    const ids = { userId: "ü".repeat(1024), anonymousId: `anon-${"x".repeat(1000)}` };
    await t.post("/recording", chunk("s-long", 0, events(NOW, 1, { href: "https://site.test/long" }), ids));
    await t.post("/recording", chunk("s-short", 0, events(NOW, 1), { anonymousId: "anon-short" }));
    const listed = (await (await t.fetch(`/recording/sessions?anonymousId=${ids.anonymousId}`)).json()) as {
      sessions: SessionSummary[];
    };
    expect(listed.sessions).toEqual([
      expect.objectContaining({ session: "s-long", ...ids, pages: ["https://site.test/long"] }),
    ]);
    const res = await t.fetch(`/users/${encodeURIComponent(ids.userId)}?by=userId`, { method: "DELETE" });
    expect(await res.json()).toMatchObject({ recordings: 1 });
    expect((await t.fetch("/recording/s-long")).status).toBe(404);
    expect((await t.fetch("/recording/s-short")).status).toBe(200);
  });

  it("refuses a chunk whose anonymousId is not a string of at most 1024 characters", async () => {
    const t = tenant("rec-bad-anon");
    const long = await t.post("/recording", chunk("s", 0, events(NOW, 1), { anonymousId: "a".repeat(1025) }));
    expect(long.status).toBe(400);
    expect(await long.json()).toMatchObject({
      error: { code: "bad_request", message: expect.stringContaining("anonymousId") },
    });
    expect((await t.post("/recording", { session: "s", seq: 0, events: events(NOW, 1), anonymousId: 5 })).status).toBe(
      400,
    );
    expect((await t.fetch("/recording/s")).status).toBe(404);
  });

  it("retention erases the sessions of days past it, objects and index alike", async () => {
    const t = tenant("rec-retain");
    await t.post("/recording", chunk("s-old", 0, events(NOW, 1)));
    const ns = t.env.RECORDINGS as NonNullable<Env["RECORDINGS"]>;
    const DAY = 86_400_000;
    expect(await retainRecordings(bucket(), ns, t.name, 2 * DAY, NOW + DAY)).toBe(0);
    expect(await retainRecordings(bucket(), ns, t.name, 2 * DAY, NOW + 4 * DAY)).toBe(1);
    expect(await keysUnder(tenantRoot(t.name))).toEqual([]);
    expect((await t.fetch("/recording/s-old")).status).toBe(404);
  });

  it("the cron keeps recordings as long as the tenant's lake keeps events, unless RECORDING_RETENTION_DAYS says otherwise", async () => {
    const DAY = 86_400_000;
    const short = tenant("rec-cron-short");
    const kept = tenant("rec-cron-kept");
    await short.fetch("/lake/retention", { method: "PUT", body: JSON.stringify({ days: 2 }) });
    await short.post("/recording", chunk("s-short", 0, events(NOW, 1)));
    await kept.post("/recording", chunk("s-kept", 0, events(NOW, 1)));
    await recordingCron(short.env, NOW + DAY);
    expect((await short.fetch("/recording/s-short")).status).toBe(200);
    await recordingCron(short.env, NOW + 4 * DAY);
    expect((await short.fetch("/recording/s-short")).status).toBe(404);
    expect((await kept.fetch("/recording/s-kept")).status).toBe(200); // its lake keeps events for good
    // Every tenant's recordings are past this: the test stays last in the file.
    await recordingCron({ ...kept.env, RECORDING_RETENTION_DAYS: "1" }, NOW + 3 * DAY);
    expect((await kept.fetch("/recording/s-kept")).status).toBe(404);
  });
});
