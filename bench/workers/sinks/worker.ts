// Times DuckTail's sinks and hourly compaction inside workerd, against Miniflare's local R2
// (binding EVENTS), on the rows bench/lib/events.mjs generates.
//
//   GET  /flush?rows=N&sinks=K&seq=S&webhook=URL → { rows, sinks, ms, tickMs, objects }: one timed
//        flush of N rows through the first K of [R2ParquetSink, R2NdjsonSink, WebhookSink(URL)]
//   POST /populate?files=F&fileRows=R&replicas=P&duplicateEvery=D → { hour, files, rows, catalog }:
//        empties the compaction tenant, then writes one closed hour of small Parquet files, each
//        flush committed to a fresh catalog (untimed)
//   GET  /compact?hour=H&catalog=C[&maxDecodedBytes=B] → { ms, tickMs, summary, ops }: one timed compactHour
//        (ops: the R2 calls it made, by class)
//   GET  /catalog → commit latencies with 1, 16 and 128 concurrent flush commits, and the catalog's
//        reads and a retention pass over a catalog of 10,000 files (see catalogBench)
//
// A flush is timed as the flusher runs it: `Promise.all(sinks.map((s) => s.write(batch, ctx)))`,
// on an EventBatch over columns built once per size (a replica fills them at ingest). Each run
// gets a fresh EventBatch over the same columns, since a batch caches its Arrow table and rows
// and a real flush builds them once; the objects it wrote are deleted afterwards, untimed.
//
// workerd's clocks stand still while JavaScript runs and only advance across I/O, so the work is
// bracketed by an awaited `scheduler.wait(0)`; an empty bracket (`tickMs`) is timed too and the
// runner subtracts it (see workers/encode/worker.ts).
import "../../../src/columns/wasm";
import { EventBatch } from "../../../src/columns/batch";
import type { DataFileInfo } from "../../../src/columns/stats";
import { type CatalogNamespace, tenantCatalog } from "../../../src/lake/catalog/client";
import { type CompactionOptions, compactHour } from "../../../src/lake/compaction";
import { hourPrefix } from "../../../src/lake/keys";
import type { StoredEvent } from "../../../src/protocol/events";
import { R2NdjsonSink } from "../../../src/sinks/ndjson";
import { R2ParquetSink } from "../../../src/sinks/r2-parquet";
import type { FlushContext, Sink } from "../../../src/sinks/sink";
import { WebhookSink } from "../../../src/sinks/webhook";
import { storedEvent, storedEvents } from "../../lib/events.mjs";

export { LakeCatalog } from "../../../src/lake/catalog/LakeCatalog";

interface Env {
  EVENTS: R2Bucket;
  CATALOG: CatalogNamespace;
}

const HOUR_MS = 3_600_000;
/** The flush rows' tenant and replica (bench/lib/events.mjs defaults). */
const FLUSH_TENANT = "bench";
const FLUSH_REPLICA = "bench-0";
/** Compaction gets a tenant of its own, so flush objects never land in its hour. */
const COMPACT_TENANT = "compact";
/** A duplicate is a client's retry that reached another replica this much later. */
const RETRY_DELAY_MS = 500;

/** Batches by row count, kept across requests: in production the columns are already in memory. */
const held = new Map<number, EventBatch>();

async function now(): Promise<number> {
  await scheduler.wait(0);
  return Date.now();
}

async function timeOnce<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = await now();
  const value = await work();
  return { ms: (await now()) - start, value };
}

function intParam(url: URL, name: string, min: number, max: number): number {
  const n = Number(url.searchParams.get(name));
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in ${min}..${max}`);
  return n;
}

/** The first `count` sinks of the flush configurations. */
function sinksOf(count: number, bucket: R2Bucket, webhook: string | null): Sink[] {
  const all: (() => Sink)[] = [
    () => new R2ParquetSink(bucket),
    () => new R2NdjsonSink(bucket),
    () => {
      if (!webhook) throw new Error("webhook=URL is required with 3 sinks");
      return new WebhookSink({ url: webhook });
    },
  ];
  return all.slice(0, count).map((make) => make());
}

async function flush(url: URL, env: Env): Promise<Response> {
  const rows = intParam(url, "rows", 1, 1_000_000);
  const count = intParam(url, "sinks", 1, 3);
  const seq = intParam(url, "seq", 0, Number.MAX_SAFE_INTEGER);
  let buffered = held.get(rows);
  if (!buffered) {
    buffered = EventBatch.from(storedEvents(rows));
    held.set(rows, buffered);
  }
  const batch = new EventBatch(buffered.parts);
  const { from, to } = batch.receivedRange();
  const ctx: FlushContext = { tenant: FLUSH_TENANT, replica: FLUSH_REPLICA, seq, from, to, attempt: 0 };
  const sinks = sinksOf(count, env.EVENTS, url.searchParams.get("webhook"));

  const tick = await timeOnce(async () => {});
  const timed = await timeOnce(() => Promise.all(sinks.map((s) => s.write(batch, ctx))));

  // Untimed: what each R2 sink wrote, then remove it so the local bucket stays small.
  const objects: { sink: string; key: string; bytes: number }[] = [];
  for (const [i, keys] of timed.value.entries()) {
    const sink = sinks[i] as Sink;
    for (const key of keys) {
      if (sink instanceof WebhookSink) {
        objects.push({ sink: sink.name, key, bytes: 0 }); // the runner's receiver counts the body
        continue;
      }
      const head = await env.EVENTS.head(key);
      objects.push({ sink: sink.name, key, bytes: head?.size ?? -1 });
      await env.EVENTS.delete(key);
    }
  }
  return Response.json({ rows, sinks: sinks.map((s) => s.name), ms: timed.ms, tickMs: tick.ms, objects });
}

/** Deletes every object under `prefix`. */
async function clear(bucket: R2Bucket, prefix: string): Promise<void> {
  for (;;) {
    const page = await bucket.list({ prefix });
    if (page.objects.length === 0) return;
    await bucket.delete(page.objects.map((o) => o.key));
  }
}

/**
 * One closed hour as `replicas` replicas flush it: event i reaches replica i % replicas, and
 * every `duplicateEvery`-th event is also retried to the next replica, so the hour holds
 * `files × fileRows` rows of which 1 in (duplicateEvery + 1) is a duplicate. Each replica's rows
 * are in seq order and cut into files of `fileRows`, written by R2ParquetSink as its flushes would.
 */
async function populate(url: URL, env: Env): Promise<Response> {
  const files = intParam(url, "files", 1, 1000);
  const fileRows = intParam(url, "fileRows", 1, 1_000_000);
  const replicas = intParam(url, "replicas", 1, 16);
  const duplicateEvery = intParam(url, "duplicateEvery", 1, 1_000_000);
  const distinct = Math.round((files * fileRows * duplicateEvery) / (duplicateEvery + 1));
  const names = Array.from({ length: replicas }, (_, r) => `${COMPACT_TENANT}-${r}`);
  const streams = names.map(() => [] as StoredEvent[]);
  for (let i = 0; i < distinct; i++) {
    const r = i % replicas;
    streams[r]?.push(storedEvent(i, COMPACT_TENANT, names[r]));
    if (i % duplicateEvery === 0) {
      const other = (r + 1) % replicas;
      const retry = storedEvent(i, COMPACT_TENANT, names[other]);
      retry.receivedAt += RETRY_DELAY_MS;
      streams[other]?.push(retry);
    }
  }

  await clear(env.EVENTS, `events/tenant=${COMPACT_TENANT}/`);
  await clear(env.EVENTS, `rollups/tenant=${COMPACT_TENANT}/`);
  // A fresh catalog per population: the previous run's snapshots list objects just deleted.
  const name = `${COMPACT_TENANT}/${crypto.randomUUID()}`;
  const catalog = tenantCatalog(env.CATALOG, COMPACT_TENANT, name);
  const ops: OpCounts = { classA: 0, classB: 0 };
  const sink = new R2ParquetSink(counting(env.EVENTS, ops), "events", {
    commitFlush: (_tenant, flush, files) => catalog.commit({ change: "insert", add: files, flush }),
  });
  const hours = new Set<number>();
  let written = 0;
  let rows = 0;
  for (const [r, stream] of streams.entries()) {
    stream.forEach((e, seq) => {
      e.seq = seq;
    });
    for (let start = 0, flushSeq = 0; start < stream.length; start += fileRows, flushSeq++) {
      const batch = EventBatch.from(stream.slice(start, start + fileRows));
      const { from, to } = batch.receivedRange();
      hours.add(Math.floor(from / HOUR_MS) * HOUR_MS).add(Math.floor(to / HOUR_MS) * HOUR_MS);
      const ctx = { tenant: COMPACT_TENANT, replica: names[r] as string, seq: flushSeq, from, to, attempt: 0 };
      written += (await sink.write(batch, ctx)).length;
      rows += batch.length;
    }
  }
  if (hours.size !== 1) throw new Error(`the generated rows span ${hours.size} hours, not one`);
  return Response.json({ hour: [...hours][0], files: written, rows, distinct, catalog: name, ops });
}

/** R2 calls by class, as Cloudflare bills them (delete is free; list and put are class A; get and head class B). */
interface OpCounts {
  classA: number;
  classB: number;
}

function counting(bucket: R2Bucket, ops: OpCounts): R2Bucket {
  return new Proxy(bucket, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (prop === "put" || prop === "list" || prop === "createMultipartUpload") ops.classA++;
        if (prop === "get" || prop === "head") ops.classB++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** A flush object's record, as R2ParquetSink commits it (statistics of five columns). */
function fileInfo(tenant: string, hour: number, n: number): DataFileInfo {
  return {
    key: `${hourPrefix("events", tenant, hour)}${tenant}-0-${n}.parquet`,
    hour,
    rows: 1000,
    bytes: 60_000,
    footerBytes: 4000,
    columns: ["id", "source", "type", "user_id", "anonymous_id"].map((column) => ({
      column,
      valueCount: 1000,
      nullCount: 0,
      min: `${column}-${n}-a`,
      max: `${column}-${n}-z`,
    })),
  };
}

const CATALOG_FILES = 10_000;
const CONCURRENCY = [1, 16, 128];
const COMMIT_ROUNDS = 20;

/**
 * The catalog's costs: (1) commit latency per flush, as each of N replicas sees it when N commit
 * at once (fresh catalog per N; COMMIT_ROUNDS rounds); (2) over a catalog of 10,000 files (one
 * per hour, committed in batches, untimed): the read of one hour at a snapshot by id (what
 * /events?snapshot= asks of the catalog), of every file at it, a page of GET /snapshots, and a
 * retention pass of 30 days (removing ~9,300 files in one snapshot).
 */
async function catalogBench(env: Env): Promise<Response> {
  const commits: { replicas: number; samplesMs: number[] }[] = [];
  for (const replicas of CONCURRENCY) {
    const name = `commit-${replicas}-${crypto.randomUUID()}`;
    const catalog = tenantCatalog(env.CATALOG, "bench", name);
    await catalog.read({});
    const hour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
    const samplesMs: number[] = [];
    for (let round = 0; round < COMMIT_ROUNDS; round++) {
      const start = await now();
      const ends = await Promise.all(
        Array.from({ length: replicas }, async (_, r) => {
          await catalog.commit({
            change: "insert",
            flush: { replica: `bench-${r}`, seq: round },
            add: [fileInfo("bench", hour, round * 1000 + r)],
          });
          return Date.now();
        }),
      );
      for (const end of ends) samplesMs.push(end - start);
    }
    commits.push({ replicas, samplesMs });
  }

  const catalog = tenantCatalog(env.CATALOG, "bench", `big-${crypto.randomUUID()}`);
  const last = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - HOUR_MS;
  for (let n = 0; n < CATALOG_FILES; n += 500) {
    const add = Array.from({ length: 500 }, (_, k) => fileInfo("bench", last - (n + k) * HOUR_MS, n + k));
    await catalog.commit({ change: "insert", add, flush: { replica: "bench-0", seq: n } });
  }
  const head = await catalog.read({});
  const snapshot = "snapshot" in head ? head.snapshot : 0;
  const time = async <T>(work: () => Promise<T>, rounds = 9) => {
    const samplesMs: number[] = [];
    let value: T | undefined;
    for (let i = 0; i < rounds; i++) {
      const t = await timeOnce(work);
      samplesMs.push(t.ms);
      value = t.value;
    }
    return { samplesMs, value };
  };
  const hourRead = await time(() => catalog.read({ snapshot, from: last - 50 * HOUR_MS, to: last - 49 * HOUR_MS }));
  const allRead = await time(() => catalog.read({ snapshot }));
  const snapshots = await time(() => catalog.snapshots(100));
  await catalog.setRetention(30);
  const retention = await time(() => catalog.retain(), 1);
  return Response.json({
    commits,
    files: CATALOG_FILES,
    hourReadMs: hourRead.samplesMs,
    allReadMs: allRead.samplesMs,
    snapshotsMs: snapshots.samplesMs,
    retentionMs: retention.samplesMs,
    retention: retention.value,
  });
}

async function compact(url: URL, env: Env): Promise<Response> {
  const hour = intParam(url, "hour", 0, Number.MAX_SAFE_INTEGER);
  const options: CompactionOptions = {};
  if (url.searchParams.has("maxDecodedBytes")) {
    options.maxDecodedBytes = intParam(url, "maxDecodedBytes", 1, Number.MAX_SAFE_INTEGER);
  }
  const tick = await timeOnce(async () => {});
  const catalog = tenantCatalog(env.CATALOG, COMPACT_TENANT, url.searchParams.get("catalog") ?? COMPACT_TENANT);
  const ops: OpCounts = { classA: 0, classB: 0 };
  const timed = await timeOnce(() => compactHour(counting(env.EVENTS, ops), catalog, hour, options));
  return Response.json({ ms: timed.ms, tickMs: tick.ms, summary: timed.value, ops });
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url);
    try {
      if (url.pathname === "/flush") return await flush(url, env);
      if (url.pathname === "/populate" && req.method === "POST") return await populate(url, env);
      if (url.pathname === "/compact") return await compact(url, env);
      if (url.pathname === "/catalog") return await catalogBench(env);
      return new Response("not found", { status: 404 });
    } catch (e) {
      return new Response(`${(e as Error).stack ?? e}`, { status: 500 });
    }
  },
};
