// Bench-only build of DuckTail's Worker: the real Worker, coordinator and replica, except that
// the replica's sink discards what it is given. Flushes still run at the production thresholds
// (wrangler.toml), so the buffer stays as small as it would in production; only the Parquet
// encoding and the R2 write are left out, and those are measured on their own (encode.mjs, and
// the "sustained" rows, which use the real sink).
import { BufferReplica as DuckTailReplica } from "../../../src/replica/BufferReplica";
import type { EventBatch } from "../../../src/sinks/batch";
import type { Sink } from "../../../src/sinks/sink";

export { BufferCoordinator } from "../../../src/group/BufferCoordinator";
export { default } from "../../../src/worker";

class DiscardSink implements Sink {
  readonly name = "discard";
  async write(batch: EventBatch): Promise<string[]> {
    return [`discarded ${batch.length} rows`];
  }
}

export class BufferReplica extends DuckTailReplica {
  override sinks(): Sink[] {
    return [new DiscardSink()];
  }
}
