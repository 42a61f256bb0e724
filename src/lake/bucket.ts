// The R2 calls every step of compaction makes: paged listings, batched deletes, the rollup write.

// R2 deletes at most 1,000 keys per call.
const DELETE_BATCH = 1000;

/** Content type of the compacted objects. */
export const PARQUET = "application/vnd.apache.parquet";

/** Every page of a listing. */
export async function listAll(
  bucket: R2Bucket,
  options: R2ListOptions,
): Promise<{ objects: R2Object[]; prefixes: string[] }> {
  const objects: R2Object[] = [];
  const prefixes: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ ...options, cursor });
    objects.push(...page.objects);
    prefixes.push(...page.delimitedPrefixes);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return { objects, prefixes };
}

export async function deleteAll(bucket: R2Bucket, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += DELETE_BATCH) await bucket.delete(keys.slice(i, i + DELETE_BATCH));
}
