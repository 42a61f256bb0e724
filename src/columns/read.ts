import "./wasm";
import { CONTEXT_COLUMNS, type EventContext, IMPORTANCE, type Importance, type StoredEvent } from "../protocol/events";
import { readTable } from "./parquet";

/**
 * The rows of one DuckTail Parquet object (any object with the columns of `EVENT_SCHEMA`); the
 * context columns are optional, as files written before they existed have none.
 */
export function readEvents(bytes: Uint8Array): StoredEvent[] {
  const table = readTable(bytes);
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
  const contextColumns = CONTEXT_COLUMNS.map(([field, name]) => [field, table.getChild(name)] as const);
  const bot = table.getChild("is_bot");
  const hasContext = bot !== null || contextColumns.some(([, c]) => c !== null);
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
    if (hasContext) {
      const context = { bot: (bot?.get(i) as boolean | null) ?? null } as EventContext;
      let known = context.bot !== null;
      for (const [field, c] of contextColumns) {
        const v = (c?.get(i) as string | null) ?? null;
        context[field] = v;
        if (v !== null) known = true;
      }
      if (known) (out[i] as StoredEvent).context = context;
    }
  }
  return out;
}
