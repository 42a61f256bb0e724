import "./wasm";
import { tableFromIPC } from "apache-arrow";
import { readParquet } from "parquet-wasm/esm";
import { IMPORTANCE, type Importance, type StoredEvent } from "../protocol/events";

/** The rows of one DuckTail Parquet object (any object with the DESIGN.md columns). */
export function readEvents(bytes: Uint8Array): StoredEvent[] {
  const table = tableFromIPC(readParquet(bytes).intoIPCStream());
  const col = (name: string) => {
    const c = table.getChild(name);
    if (!c) throw new Error(`not a DuckTail events file: no ${name} column`);
    return c;
  };
  const id = col("id");
  const tenant = col("tenant");
  const ts = col("ts");
  const receivedAt = col("received_at");
  const source = col("source");
  const type = col("type");
  const importance = col("importance");
  const userId = col("user_id");
  const anonymousId = col("anonymous_id");
  const sessionId = col("session_id");
  const data = col("data");
  const replica = col("replica");
  const seq = col("seq");
  const out: StoredEvent[] = new Array(table.numRows);
  for (let i = 0; i < table.numRows; i++) {
    const rank = IMPORTANCE.indexOf(importance.get(i) as Importance);
    out[i] = {
      id: id.get(i) as string,
      tenant: tenant.get(i) as string,
      ts: Number(ts.get(i)),
      receivedAt: Number(receivedAt.get(i)),
      source: source.get(i) as string,
      type: type.get(i) as string,
      importance: IMPORTANCE[rank < 0 ? 1 : rank] as Importance,
      userId: (userId.get(i) as string | null) ?? null,
      anonymousId: (anonymousId.get(i) as string | null) ?? null,
      sessionId: (sessionId.get(i) as string | null) ?? null,
      data: data.get(i) as string,
      replica: replica.get(i) as string,
      seq: Number(seq.get(i)),
    };
  }
  return out;
}
