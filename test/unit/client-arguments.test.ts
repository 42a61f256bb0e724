// ducktail/client's URL forms and the TypeErrors a wrong call throws at once, before any network.
import { describe, expect, it } from "vitest";
import { DuckTailClient, DuckTailWSClient, endpoints } from "../../sdk/index";

describe("client URL normalisation", () => {
  it.each([
    ["http://127.0.0.1:8787", "http://127.0.0.1:8787", "ws://127.0.0.1:8787/ws", "http://127.0.0.1:8787/e"],
    ["http://127.0.0.1:8787/", "http://127.0.0.1:8787", "ws://127.0.0.1:8787/ws", "http://127.0.0.1:8787/e"],
    ["ws://127.0.0.1:8787/ws", "http://127.0.0.1:8787", "ws://127.0.0.1:8787/ws", "http://127.0.0.1:8787/e"],
    ["ws://127.0.0.1:8787", "http://127.0.0.1:8787", "ws://127.0.0.1:8787/ws", "http://127.0.0.1:8787/e"],
    ["http://127.0.0.1:8787/ws/", "http://127.0.0.1:8787", "ws://127.0.0.1:8787/ws", "http://127.0.0.1:8787/e"],
    [
      "https://d.example.workers.dev",
      "https://d.example.workers.dev",
      "wss://d.example.workers.dev/ws",
      "https://d.example.workers.dev/e",
    ],
    [
      "wss://d.example.workers.dev/ws",
      "https://d.example.workers.dev",
      "wss://d.example.workers.dev/ws",
      "https://d.example.workers.dev/e",
    ],
    [
      "https://example.com/ducktail",
      "https://example.com/ducktail",
      "wss://example.com/ducktail/ws",
      "https://example.com/ducktail/e",
    ],
    [
      "https://example.com/ducktail//",
      "https://example.com/ducktail",
      "wss://example.com/ducktail/ws",
      "https://example.com/ducktail/e",
    ],
    [
      "wss://example.com/ducktail/ws",
      "https://example.com/ducktail",
      "wss://example.com/ducktail/ws",
      "https://example.com/ducktail/e",
    ],
    ["https://example.com/a/b/ws/", "https://example.com/a/b", "wss://example.com/a/b/ws", "https://example.com/a/b/e"],
    ["https://example.com/news", "https://example.com/news", "wss://example.com/news/ws", "https://example.com/news/e"],
    [
      "  HTTPS://Example.COM:443/ducktail  ",
      "https://example.com/ducktail",
      "wss://example.com/ducktail/ws",
      "https://example.com/ducktail/e",
    ],
  ])("reads %j", (url, base, socket, ingest) => {
    expect(endpoints(url)).toEqual({ base, socket, ingest });
  });

  it("takes the key from ?key= (the original's socket URLs carried it there)", () => {
    expect(endpoints("wss://h.example/ws?key=pk_1")).toEqual({
      base: "https://h.example",
      socket: "wss://h.example/ws",
      ingest: "https://h.example/e",
      key: "pk_1",
    });
  });

  it.each([
    ["localhost:8787", /"localhost:8787" has the protocol "localhost:"/],
    ["127.0.0.1:8787", /is not a URL/],
    ["ftp://h.example", /has the protocol "ftp:"/],
    ["not a url", /is not a URL/],
    ["", /got an empty string/],
    ["https://user:pw@h.example", /user or password/],
    ["https://h.example/#x", /#fragment/],
    ["https://h.example/ws?storageMode=durable", /query parameters \(storageMode\)/],
  ])("refuses %j with a TypeError naming it and the accepted forms", (url, why) => {
    const call = () => endpoints(url);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(why);
    expect(call).toThrow(/http\(s\):\/\/host or ws\(s\):\/\/host/);
  });
});

describe("DuckTailClient arguments", () => {
  const client = () => new DuckTailClient({ url: "http://127.0.0.1:9" });

  it("throws a TypeError at construction for a bad url, naming it and the accepted forms", () => {
    expect(() => new DuckTailClient({ url: "localhost:8787" })).toThrow(
      /DuckTailClient: url "localhost:8787" has the protocol "localhost:"; use http\(s\):\/\/host or ws\(s\):\/\/host/,
    );
    expect(() => new DuckTailClient({ url: "ftp://x" })).toThrow(TypeError);
    expect(() => new DuckTailClient({} as never)).toThrow(/url must be the DuckTail Worker's URL.*got undefined/);
    expect(() => new DuckTailClient("https://h.example" as never)).toThrow(/options must be an object like \{ url/);
    expect(() => new DuckTailClient({ url: "https://h", storageMode: "safe" as never })).toThrow(
      /storageMode must be one of fire-and-forget, buffered, confirmed, durable; got a string \("safe"\)/,
    );
    expect(() => new DuckTailClient({ url: "https://h", transport: "sse" as never })).toThrow(
      /transport must be one of/,
    );
  });

  it("exposes the normalised base URL", () => {
    expect(new DuckTailClient({ url: "wss://example.com/ducktail/ws/" }).baseUrl).toBe("https://example.com/ducktail");
  });

  it("throws (not rejects) when an object goes where the type goes, and says what was meant", () => {
    expect(() => client().track({ type: "x" } as never)).toThrow(
      "track(type, data?, options?): type must be a non-empty string; got an object — did you mean track('name', {...})?",
    );
    expect(() => client().track("")).toThrow(/type must be a non-empty string; got an empty string/);
    expect(() => client().track(42 as never)).toThrow(/got a number \(42\)/);
    expect(() => client().track(undefined as never)).toThrow(TypeError);
  });

  it("throws when data or options are not plain objects", () => {
    for (const data of [[1, 2], "text", 7, true]) {
      expect(() => client().track("x", data as never)).toThrow(
        /track\(type, data\?, options\?\): data must be a plain object/,
      );
    }
    expect(() => client().track("x", {}, "high" as never)).toThrow(
      /options must be a plain object \(or left out\); got a string/,
    );
    expect(() => client().identify({ id: 1 } as never)).toThrow(
      /identify\(userId, traits\?\): userId must be a non-empty string/,
    );
    expect(() => client().page("/p", [] as never)).toThrow(
      /page\(path\?, data\?\): data must be a plain object \(or left out\); got an array/,
    );
  });
});

describe("DuckTailWSClient arguments", () => {
  const ws = () => new DuckTailWSClient({ url: "wss://h.example/ws", apiKey: "pk" });

  it("takes the original's options and throws a TypeError for a bad url or two different keys", () => {
    expect(ws().client.baseUrl).toBe("https://h.example");
    expect(() => new DuckTailWSClient({ url: "h.example/ws" })).toThrow(TypeError);
    expect(() => new DuckTailWSClient({ url: "wss://h/ws", apiKey: "a", key: "b" })).toThrow(
      /apiKey and key name the same thing/,
    );
    expect(() => new DuckTailWSClient(undefined as never)).toThrow(/new DuckTailWSClient\(options\): options must be/);
  });

  it("throws (not rejects) for a non-string type or an event that is not { data, importance, … }", () => {
    expect(() => ws().track({ data: {} } as never)).toThrow(
      "track(type, event?): type must be a non-empty string; got an object — did you mean track('name', { data: {...} })?",
    );
    expect(() => ws().track("x", [] as never)).toThrow(/event must be a plain object \(or left out\); got an array/);
    expect(() => ws().track("x", "text" as never)).toThrow(/got a string/);
    expect(() => ws().track("x", { data: 5 } as never)).toThrow(
      /event\.data must be a plain object \(or left out\); got a number/,
    );
    expect(() => ws().track("x", { button: "buy" } as never)).toThrow(
      /event takes data, importance, .*; got "button" — put your own fields in \{ data: \{\.\.\.\} \}/,
    );
  });
});
