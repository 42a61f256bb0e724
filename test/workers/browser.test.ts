import { describe, expect, it } from "vitest";
import duckJs from "../../src/duck-js";
import { allRows, tenant } from "./harness";

const PAGE = "https://shop.example";

describe("browser routes", () => {
  it("serves duck.js as cacheable JavaScript any page may load", async () => {
    const t = tenant("duck-js");
    const res = await t.fetch("/duck.js", { headers: { origin: PAGE } }, "");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/javascript; charset=utf-8");
    expect(res.headers.get("cache-control")).toMatch(/max-age=\d+/);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(await res.text()).toBe(duckJs);
  });

  it("answers /snippet?k= with the HTML to paste: queue stub, init with the key, page, script tag and pixel", async () => {
    const t = tenant("duck-snippet");
    const res = await t.fetch("/snippet?k=pk_live_1", {}, "");
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('duck.push(["init", "pk_live_1", { endpoint: "https://ducktail.test" }]);');
    expect(html).toContain('<script async src="https://ducktail.test/duck.js"></script>');
    expect(html).toContain('duck.push(["page"]);');
    expect(html).toContain('<img src="https://ducktail.test/p.gif?e=pageview&k=pk_live_1"');
    // Under BASE_PATH every URL keeps the prefix.
    const prefixed = await tenant("duck-snippet", "admin", { BASE_PATH: "/ducktail" }).fetch(
      "/ducktail/snippet?k=pk_live_1",
      {},
      "",
    );
    expect(await prefixed.text()).toContain('<script async src="https://ducktail.test/ducktail/duck.js"></script>');
    const bad = await t.fetch("/snippet?k=%3C%2Fscript%3E", {}, "");
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: "bad_request" } });
  });

  it("turns GET /p.gif into an event and answers a GIF whatever the Accept header", async () => {
    const t = tenant("duck-pixel", "write");
    const res = await t.fetch("/p.gif?type=pageview&source=noscript&path=%2Fpricing");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/gif");
    expect(new Uint8Array(await res.arrayBuffer()).slice(0, 3)).toEqual(new Uint8Array([71, 73, 70]));
    expect((await t.fetch("/p.gif", { method: "POST", body: "{}" })).status).toBe(405);
    await tenant("duck-pixel").post("/flush", {});
    const rows = await allRows("duck-pixel");
    expect(rows.map((r) => [r.type, r.source, JSON.parse(r.data as string).path])).toEqual([
      ["pageview", "noscript", "/pricing"],
    ]);
  });

  it("lets pages on other origins POST events as text/plain and read the answer (CORS)", async () => {
    const t = tenant("duck-cors", "write");
    const pre = await t.fetch("/e", {
      method: "OPTIONS",
      headers: {
        origin: PAGE,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization",
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
    expect(pre.headers.get("access-control-allow-headers")).toContain("authorization");

    const res = await t.fetch("/e", {
      method: "POST",
      headers: { origin: PAGE, "content-type": "text/plain;charset=UTF-8" },
      body: JSON.stringify([{ type: "click", source: "browser" }]),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(await res.json()).toMatchObject({ stored: 1 });
    // Errors carry the header too, so the page can read why.
    const refused = await t.fetch("/e", { method: "POST", headers: { origin: PAGE }, body: "{" }, "wrong-key");
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe("*");
    // Without an Origin (servers, curl) nothing is added.
    expect((await t.fetch("/e", { method: "POST", body: "[]" })).headers.has("access-control-allow-origin")).toBe(
      false,
    );
  });
});
