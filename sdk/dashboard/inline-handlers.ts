/**
 * Recorded pages keep their inline event handlers (`onclick="…"`) as attributes; rrweb's player
 * rebuilds them inside a sandboxed frame without scripts, where Chromium reports each one as a
 * blocked script. They never run in a replay, so they are dropped before it.
 */

interface SerializedNode {
  attributes?: Record<string, unknown>;
  childNodes?: SerializedNode[];
}

interface ReplayEvent {
  type: number;
  data?: unknown;
}

/** rrweb's event types and incremental sources this reads. */
const FULL_SNAPSHOT = 2;
const INCREMENTAL = 3;
const MUTATION = 0;

function dropHandlers(attributes: Record<string, unknown> | undefined): void {
  if (!attributes) return;
  for (const name of Object.keys(attributes)) {
    if (/^on/i.test(name)) delete attributes[name];
  }
}

function walk(node: SerializedNode | undefined): void {
  if (!node) return;
  dropHandlers(node.attributes);
  for (const child of node.childNodes ?? []) walk(child);
}

/** The events with every `on*` attribute removed, in place (snapshots, added nodes, attribute changes). */
export function withoutInlineHandlers<E extends ReplayEvent>(events: E[]): E[] {
  for (const e of events) {
    if (e.type === FULL_SNAPSHOT) walk((e.data as { node?: SerializedNode }).node);
    if (e.type !== INCREMENTAL) continue;
    const data = e.data as {
      source?: number;
      adds?: { node?: SerializedNode }[];
      attributes?: { attributes?: Record<string, unknown> }[];
    };
    if (data.source !== MUTATION) continue;
    for (const add of data.adds ?? []) walk(add.node);
    for (const change of data.attributes ?? []) dropHandlers(change.attributes);
  }
  return events;
}
