// Bench-only build of DuckTail's Worker: the real Worker, coordinator and replica, except that
// the replica's sink discards what it is given. Flushes still run at the production thresholds
// (wrangler.toml), so the buffer stays as small as it would in production; only the Parquet
// encoding and the R2 write are left out, and those are measured on their own (encode.mjs, and
// the "sustained" rows, which use the real sink).

import type { EventBatch } from "../../../src/columns/batch";
import { BufferReplica as DuckTailReplica } from "../../../src/replica/BufferReplica";
import { attach } from "../../../src/replica/sockets";
import type { Sink } from "../../../src/sinks/sink";
// @ts-expect-error plain JS helper shared with the load generator
import { frameBuilder } from "../../lib/frames.mjs";

export { BufferCoordinator } from "../../../src/group/BufferCoordinator";
export { LakeCatalog } from "../../../src/lake/catalog/LakeCatalog";
export { SessionRecording } from "../../../src/recording/SessionRecording";
export { default } from "../../../src/worker";

class DiscardSink implements Sink {
  readonly name = "discard";
  readonly releasesBatch = true;
  async write(batch: EventBatch): Promise<string[]> {
    return [`discarded ${batch.length} rows`];
  }
}

export class BufferReplica extends DuckTailReplica {
  override sinks(): Sink[] {
    return [new DiscardSink()];
  }

  /** `__replay:<frames>:<replica|bare>` (bench/replay.mjs): see {@link replay}; anything else as usual. */
  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer) {
    if (typeof message !== "string" || !message.startsWith("__replay:")) return super.webSocketMessage(ws, message);
    const [, frames, side] = message.split(":");
    return replay(this, Number(frames), side === "bare").then(() => ws.send('{"type":"replayed"}'));
  }
}

// A socket that sends nowhere, with a buffered-mode writer's state: replayed frames are acked into the void.
const nowhere = {
  send() {},
  close() {},
  serializeAttachment() {},
  deserializeAttachment: () => null,
} as unknown as WebSocket;
attach(nowhere, { client: "replay", group: "replay", scope: "admin", storageMode: "buffered", connectedAt: 0 });
let canned: string[] | null = null;

/**
 * Feeds `frames` canned 100-event frames through the replica's real socket path (webSocketMessage
 * → take → buffer, views, flushes), or with `bare` only parses and acks each as the bare DO does,
 * all inside this isolate: no network and no load generator sharing the cores, so the replica's
 * own cost per frame shows with far less noise than the ingest section's throughput. Yields to
 * the event loop every 20 frames so background flushes run as they would between messages.
 */
async function replay(replica: BufferReplica, frames: number, bare: boolean): Promise<void> {
  if (!canned) {
    const build = frameBuilder("buffered");
    canned = Array.from({ length: 1000 }, (_, i) => new TextDecoder().decode(build(`replay-${i}`, 100)));
  }
  for (let i = 0; i < frames; i++) {
    const text = canned[i % canned.length] as string;
    if (bare) {
      const frame = JSON.parse(text);
      nowhere.send(JSON.stringify({ type: "ack", id: frame.id, received: frame.events.length }));
    } else replica.webSocketMessage(nowhere, text);
    if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
