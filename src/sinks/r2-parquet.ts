import type { StoredEvent } from "../protocol/events";
import { encodeParquet } from "./parquet";
import type { FlushContext, Sink } from "./sink";

const HOUR_MS = 3_600_000;

/** `events/tenant=<t>/dt=<YYYY-MM-DD>/hour=<HH>/<replica>-<seq>.parquet`, by UTC hour of receipt. */
export function objectKey(prefix: string, tenant: string, hourStart: number, replica: string, seq: number): string {
  const iso = new Date(hourStart).toISOString();
  return `${prefix}/tenant=${tenant}/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/${replica}-${seq}.parquet`;
}

/** Splits a batch by the UTC hour of `receivedAt`, oldest hour first. */
export function byHour(events: readonly StoredEvent[]): [number, StoredEvent[]][] {
  const hours = new Map<number, StoredEvent[]>();
  for (const e of events) {
    const h = e.receivedAt - (e.receivedAt % HOUR_MS);
    const list = hours.get(h);
    if (list) list.push(e);
    else hours.set(h, [e]);
  }
  return [...hours.entries()].sort((a, b) => a[0] - b[0]);
}

/** The default sink: one ZSTD Parquet object per UTC hour in the batch, at a key the retry reuses. */
export class R2ParquetSink implements Sink {
  readonly name = "r2-parquet";
  constructor(
    private readonly bucket: R2Bucket,
    private readonly prefix = "events",
  ) {}

  async write(events: readonly StoredEvent[], ctx: FlushContext): Promise<string[]> {
    const parts = byHour(events);
    return Promise.all(
      parts.map(async ([hour, rows]) => {
        const key = objectKey(this.prefix, ctx.tenant, hour, ctx.replica, ctx.seq);
        // After a crash the memory-held part of a batch is gone; an object an earlier try
        // wrote holds it, so a retry keeps that object rather than overwrite it with less.
        if (ctx.attempt > 0 && (await this.bucket.head(key))) return key;
        await this.bucket.put(key, encodeParquet(rows), {
          httpMetadata: { contentType: "application/vnd.apache.parquet" },
          customMetadata: { rows: String(rows.length), replica: ctx.replica, seq: String(ctx.seq) },
        });
        return key;
      }),
    );
  }
}
