/**
 * `*` globs matched without regular expressions. A regex of `.*` per `*` backtracks
 * catastrophically ("*a*a*a*a*b" against a long run of "a" takes seconds), and filters run on the
 * ingest path of every replica, so a glob is split at `*` into literal segments instead: the first
 * must be a prefix, the last a suffix, and the ones between are found in order with `indexOf`.
 * Taking each middle segment at its leftmost place leaves the most room for the rest, so that
 * greedy choice is correct and nothing is retried: a match costs at most one `indexOf` per segment.
 */
export type StringTest = (s: string) => boolean;

/** Compiles one glob; `*` stands for any run of characters (newlines too), everything else is literal. */
export function compileGlob(glob: string): StringTest {
  const parts = glob.split("*");
  if (parts.length === 1) return (s) => s === glob;
  const prefix = parts[0] as string;
  const suffix = parts[parts.length - 1] as string;
  // Empty segments ("**") say nothing more than one `*`.
  const middle = parts.slice(1, -1).filter((p) => p.length > 0);
  const minLength = prefix.length + suffix.length + middle.reduce((n, p) => n + p.length, 0);
  if (middle.length === 0) {
    if (prefix === "" && suffix === "") return () => true;
    return (s) => s.length >= minLength && s.startsWith(prefix) && s.endsWith(suffix);
  }
  return (s) => {
    if (s.length < minLength || !s.startsWith(prefix) || !s.endsWith(suffix)) return false;
    const end = s.length - suffix.length; // middle segments must end before the suffix starts
    let from = prefix.length;
    for (const segment of middle) {
      const at = s.indexOf(segment, from);
      if (at < 0 || at + segment.length > end) return false;
      from = at + segment.length;
    }
    return true;
  };
}

/** Any of `globs`: exact names through a Set, the rest through `compileGlob`. */
export function compileGlobs(globs: readonly string[]): StringTest {
  const exact = new Set(globs.filter((g) => !g.includes("*")));
  const wild = [...new Set(globs.filter((g) => g.includes("*")))].map(compileGlob);
  if (wild.length === 0) return (s) => exact.has(s);
  return (s) => {
    if (exact.has(s)) return true;
    for (const test of wild) if (test(s)) return true;
    return false;
  };
}
