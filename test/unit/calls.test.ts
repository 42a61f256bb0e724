import { describe, expect, it } from "vitest";
import { CoordinatorCalls, ReplicaCalls, type Stub } from "../../src/protocol/calls";
import { DuckTailError } from "../../src/protocol/errors";
import { Header, InternalRoute } from "../../src/protocol/routes";

/** A stub that records each request and answers with `answer`. */
function stub(answer: () => Response): Stub & { seen: Request[] } {
  const seen: Request[] = [];
  return {
    seen,
    fetch: async (input, init) => {
      seen.push(new Request(input as RequestInfo, init));
      return answer();
    },
  };
}

describe("internal calls", () => {
  it("names the replica on every call and decodes the route's answer", async () => {
    const s = stub(() => Response.json({ files: ["a.parquet"], rows: 3 }));
    const answer = await new ReplicaCalls(s, "acme", 2).flush();
    expect(answer).toEqual({ files: ["a.parquet"], rows: 3 });
    const req = s.seen[0] as Request;
    expect(new URL(req.url).pathname).toBe(InternalRoute.flush);
    expect(req.method).toBe("POST");
    expect(req.headers.get(Header.tenant)).toBe("acme");
    expect(req.headers.get(Header.shard)).toBe("2");
  });

  it("throws the callee's error with its code and details", async () => {
    const body = { error: { code: "flush_failed", message: "sink down", sinks: [{ sink: "r2", error: "503" }] } };
    const s = stub(() => Response.json(body, { status: 502 }));
    const err = await new ReplicaCalls(s, "acme", 0).flush().catch((e) => e);
    expect(err).toBeInstanceOf(DuckTailError);
    expect(err).toMatchObject({ code: "flush_failed", message: "sink down", details: { sinks: body.error.sinks } });
  });

  it("turns an answer that is not an error body into an internal error naming the status", async () => {
    const s = stub(() => new Response("gateway", { status: 504 }));
    const err = await new CoordinatorCalls(s, "acme").routing().catch((e) => e);
    expect(err).toMatchObject({ code: "internal", message: "coordinator answered 504" });
  });

  it("passes an ingest answer on with its status, and throws a refusal such as durable_pending", async () => {
    const rejected = {
      received: 1,
      stored: 0,
      rejected: [{ index: 0, code: "invalid_field" }],
      storageMode: "buffered",
    };
    const refused = stub(() => Response.json(rejected, { status: 400 }));
    const calls = new ReplicaCalls(refused, "acme", 1);
    expect(await calls.events("[{}]", { dedup: true, storageMode: "durable" })).toEqual({
      status: 400,
      answer: rejected,
    });
    const url = new URL((refused.seen[0] as Request).url);
    expect(url.searchParams.get("dedup")).toBe("1");
    expect(url.searchParams.get("storageMode")).toBe("durable");

    const pending = { error: { code: "durable_pending", message: "not in R2 yet", pending: { from: 1, to: 4 } } };
    const waiting = stub(() => Response.json(pending, { status: 202 }));
    const err = await new ReplicaCalls(waiting, "acme", 1).events("[{}]").catch((e) => e);
    expect(err).toMatchObject({ code: "durable_pending", details: { pending: { from: 1, to: 4 } } });
  });

  it("names no shard for a replica dog placed", async () => {
    const s = stub(() => new Response(null));
    await new ReplicaCalls(s, "acme", null).socket("?client=c", { [Header.scope]: "read" });
    const req = s.seen[0] as Request;
    expect(new URL(req.url).pathname).toBe(InternalRoute.ws);
    expect(new URL(req.url).search).toBe("?client=c");
    expect(req.headers.get(Header.shard)).toBeNull();
    expect(req.headers.get(Header.scope)).toBe("read");
    expect(req.headers.get("upgrade")).toBe("websocket");
  });
});
