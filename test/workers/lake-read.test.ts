import { describe, expect, it } from "vitest";
import type { LakeFileList } from "../../src/protocol/lake";
import { bucket, ev, tenant } from "./harness";

/** A tenant with one flushed object; answers the file list and the object's bytes as R2 holds them. */
async function flushedObject(name: string) {
  const t = tenant(name);
  await t.post("/e", [ev("view", { id: "r1" }), ev("click", { id: "r2" })]);
  await t.post("/flush", {});
  const list = (await (await t.fetch("/lake/files")).json()) as LakeFileList;
  const file = list.files[0];
  if (!file) throw new Error("the flush committed no file");
  const obj = await bucket().get(file.key);
  const bytes = new Uint8Array(await (obj as R2ObjectBody).arrayBuffer());
  const read = tenant(name, "read");
  const object = (range?: string, method = "GET") =>
    read.fetch(`/lake/object?object=${encodeURIComponent(file.key)}`, {
      method,
      ...(range !== undefined && { headers: { range } }),
    });
  return { t, list, file, bytes, object };
}

describe("GET /lake/files and GET /lake/object", () => {
  it("lists the snapshot's files of the range with their size, rows and hour", async () => {
    const { list, file, bytes } = await flushedObject("lr-files");
    expect(list.files).toHaveLength(1);
    expect(file).toMatchObject({ bytes: bytes.byteLength, rows: 2, deletes: null });
    expect(file.to - file.from).toBe(3_600_000);
    expect(file.key).toMatch(/^events\/tenant=lr-files\//);
    expect(list).toMatchObject({ live: true, bytes: bytes.byteLength, rows: 2 });
    const t = tenant("lr-files", "read");
    const before = (await (
      await t.fetch(`/lake/files?to=${file.from}&from=${file.from - 3_600_000}`)
    ).json()) as LakeFileList;
    expect(before.files).toEqual([]);
  });

  it("serves a byte range as 206 with Content-Range, a suffix range, and the whole object as 200", async () => {
    const { bytes, object } = await flushedObject("lr-range");
    const size = bytes.byteLength;
    const part = await object("bytes=4-19");
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 4-19/${size}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(bytes.slice(4, 20));
    const tail = await object("bytes=-8");
    expect(tail.status).toBe(206);
    expect(tail.headers.get("content-range")).toBe(`bytes ${size - 8}-${size - 1}/${size}`);
    expect(new TextDecoder().decode(new Uint8Array(await tail.arrayBuffer()).slice(4))).toBe("PAR1");
    const open = await object(`bytes=${size - 3}-`);
    expect(new Uint8Array(await open.arrayBuffer())).toEqual(bytes.slice(size - 3));
    // Several ranges: one 206 covering them.
    const two = await object("bytes=0-3, 10-11");
    expect(two.headers.get("content-range")).toBe(`bytes 0-11/${size}`);
    expect(new Uint8Array(await two.arrayBuffer())).toEqual(bytes.slice(0, 12));
    const whole = await object();
    expect(whole.status).toBe(200);
    expect(whole.headers.get("accept-ranges")).toBe("bytes");
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(bytes);
    const head = await object("bytes=0-9", "HEAD");
    expect(head.status).toBe(206);
    expect(head.headers.get("content-length")).toBe("10");
    expect(await head.text()).toBe("");
  });

  it("answers 416 with the object's size for ranges outside it or malformed", async () => {
    const { bytes, object } = await flushedObject("lr-416");
    for (const bad of [`bytes=${bytes.byteLength}-`, "bytes=9-3", "bytes=-0", "bytes=abc", "bytes=", "nonsense"]) {
      const res = await object(bad);
      expect(res.status, bad).toBe(416);
      expect(res.headers.get("content-range"), bad).toBe(`bytes */${bytes.byteLength}`);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("range_not_satisfiable");
    }
  });

  it("serves only the tenant's own objects: another tenant's is 403, keys outside the lake or with .. are 404", async () => {
    const mine = await flushedObject("lr-mine");
    const theirs = await flushedObject("lr-theirs");
    const t = tenant("lr-mine", "read");
    const get = (key: string) => t.fetch(`/lake/object?object=${encodeURIComponent(key)}`);
    const other = await get(theirs.file.key);
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { message: string } }).error.message).toMatch(/another tenant/);
    const dotDot = mine.file.key.replace("tenant=lr-mine/", "tenant=lr-mine/../tenant=lr-theirs/");
    expect((await get(dotDot)).status).toBe(404);
    expect((await get("deadletter/x.json")).status).toBe(404);
    expect((await get(`${mine.file.key.slice(0, -8)}-missing.parquet`)).status).toBe(404);
    expect((await t.fetch("/lake/object")).status).toBe(400);
    expect(
      (await tenant("lr-mine", "write").fetch(`/lake/object?object=${encodeURIComponent(mine.file.key)}`)).status,
    ).toBe(403);
    expect((await get(mine.file.key)).status).toBe(200);
  });

  it("GET /events?buffered=only answers what the replicas buffer, not what is flushed", async () => {
    const t = tenant("lr-buffered");
    await t.post("/e", [ev("view", { id: "f1" })]);
    await t.post("/flush", {});
    await t.post("/e", [ev("view", { id: "b1" })]);
    const body = (await (await t.fetch("/events?buffered=only")).json()) as { events: { id: string }[] };
    expect(body.events.map((e) => e.id)).toEqual(["b1"]);
    expect((await t.fetch("/events?buffered=only&snapshot=1")).status).toBe(400);
    expect((await t.fetch("/events?buffered=yes")).status).toBe(400);
  });
});
