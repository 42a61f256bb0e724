// The one string hash: HyperLogLog and error fingerprints (src/views), routing by shard key
// (src/worker.ts) and the split of an hour too big to compact in memory (src/lake/split.ts).

/**
 * MurmurHash3 (x86, 32-bit) over the string's UTF-16 code units, two per block, so hashing
 * needs no UTF-8 encoding and allocates nothing. Stable across replicas and releases: partials
 * persisted today must merge with partials computed tomorrow. An unsigned 32-bit integer.
 */
export function hash32(value: string, seed = 0): number {
  return hash32i(value, seed) >>> 0;
}

/**
 * {@link hash32}'s bits as a signed 32-bit integer, for hot paths. Half of all unsigned hashes
 * are at least 2^31, past V8's small integers: returned from a call that is not inlined, each
 * is boxed on the heap, and in workerd that made a HyperLogLog add cost four times its hashing.
 */
export function hash32i(value: string, seed = 0): number {
  let h = seed | 0;
  const length = value.length;
  const pairs = length & ~1;
  let i = 0;
  for (; i < pairs; i += 2) {
    let k = value.charCodeAt(i) | (value.charCodeAt(i + 1) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < length) {
    let k = value.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= length * 2;
  // fmix32: every input bit reaches every output bit, which HLL's leading-zero count relies on.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
