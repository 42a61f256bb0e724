// Builds `events` frames for the load generator without letting the client become the
// bottleneck (it shares two cores with workerd): each event's JSON after its id is encoded to
// bytes once, and a frame is assembled by copying those bytes into one Buffer behind fresh ids.
// Every event sent in a run still gets a unique, UUID-shaped id, as a real SDK's would.
// (Building frames as strings with hashed ids cost ~3.6 ms per 1,000-event frame: client-bound.)
import { eventId, eventInput } from "./events.mjs";

const POOL = 4096;
const ID_PREFIX = Buffer.from('{"id":"');
const HEX = Buffer.from("0123456789abcdef");
/** The random-looking 24 characters in front of each id's 12-hex-digit counter. */
const ID_STEM = Buffer.from(eventId(0x5eed).slice(0, 24));
const ID_BYTES = ID_STEM.length + 12;

/** `",` + event i's JSON with the leading `{"id":"…` cut off, as bytes. */
function tail(i) {
  const { id: _id, ...rest } = eventInput(i);
  return Buffer.from(`",${JSON.stringify(rest).slice(1)}`);
}

const tails = Array.from({ length: POOL }, (_, i) => tail(i));

/** Mean serialized size of one event, in bytes (all ASCII). */
export const EVENT_BYTES = Math.round(tails.reduce((n, t) => n + t.length, 0) / POOL + ID_PREFIX.length + ID_BYTES);

/** Writes `n` as 12 lowercase hex digits at `at`. */
function writeHex12(buf, at, n) {
  for (let d = 11; d >= 0; d--) {
    buf[at + d] = HEX[n % 16];
    n = Math.floor(n / 16);
  }
}

/**
 * Returns `(frameId, batch) => Buffer` holding the frame's JSON text (send it as a text frame).
 * `storageMode` is written into every frame (the protocol's per-frame override).
 */
export function frameBuilder(storageMode) {
  let next = 0;
  return (frameId, batch) => {
    const head = Buffer.from(`{"type":"events","id":"${frameId}","storageMode":"${storageMode}","events":[`);
    let size = head.length + 2; // + "]}"
    for (let j = 0; j < batch; j++)
      size += (j > 0 ? 1 : 0) + ID_PREFIX.length + ID_BYTES + tails[(next + j) % POOL].length;
    const buf = Buffer.allocUnsafe(size);
    let at = head.copy(buf, 0);
    for (let j = 0; j < batch; j++) {
      const k = next++;
      if (j > 0) buf[at++] = 0x2c; // ,
      at += ID_PREFIX.copy(buf, at);
      at += ID_STEM.copy(buf, at);
      writeHex12(buf, at, k);
      at += 12;
      at += tails[k % POOL].copy(buf, at);
    }
    buf[at++] = 0x5d; // ]
    buf[at++] = 0x7d; // }
    return buf;
  };
}
