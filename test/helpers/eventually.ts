/** Polls `check` until it returns a truthy value (for effects with no event to await: alarms, background flushes). */
export async function eventually<T>(check: () => Promise<T | null | undefined | false> | T, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}
