/**
 * HTTP Range (RFC 9110 §14) for one object of a known size: a pure function of the header.
 * Several ranges in one header are coalesced into the one range that covers them (§14.2 lets a
 * server do so), answered as a single 206: Parquet readers ask for nearby column chunks, and one
 * part is simpler for every client than multipart/byteranges.
 */

/** The bytes to send: `offset` and `length` within the object. */
export interface ByteRange {
  offset: number;
  length: number;
}

/**
 * The range a `Range` header asks of an object of `size` bytes: `null` when there is no header
 * (or a unit other than bytes, which §14.2 says to ignore: the whole object), `"unsatisfiable"`
 * for a malformed header or one no byte of the object satisfies (416).
 */
export function requestedRange(header: string | null, size: number): ByteRange | null | "unsatisfiable" {
  if (header === null) return null;
  const m = /^\s*([A-Za-z]+)\s*=\s*(.*)$/.exec(header);
  if (!m) return "unsatisfiable";
  if ((m[1] as string).toLowerCase() !== "bytes") return null;
  let first = Number.POSITIVE_INFINITY;
  let last = -1;
  for (const spec of (m[2] as string).split(",")) {
    const part = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(spec);
    if (!part || (part[1] === "" && part[2] === "")) return "unsatisfiable";
    let start: number;
    let end: number;
    if (part[1] === "") {
      // Suffix: the last n bytes (all of them when n exceeds the size).
      const n = Number(part[2]);
      if (n === 0) continue;
      start = Math.max(0, size - n);
      end = size - 1;
    } else {
      start = Number(part[1]);
      end = part[2] === "" ? size - 1 : Math.min(Number(part[2]), size - 1);
      if (part[2] !== "" && Number(part[2]) < start) return "unsatisfiable";
      if (start >= size) continue;
    }
    first = Math.min(first, start);
    last = Math.max(last, end);
  }
  if (last < first) return "unsatisfiable";
  return { offset: first, length: last - first + 1 };
}

/** `Content-Range` of a 206 (`bytes a-b/size`) or of a 416 (`bytes *\/size`). */
export function contentRange(range: ByteRange | "unsatisfiable", size: number): string {
  if (range === "unsatisfiable") return `bytes */${size}`;
  return `bytes ${range.offset}-${range.offset + range.length - 1}/${size}`;
}
