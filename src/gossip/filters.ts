import { DuckTailError, ErrorCode } from "../protocol/errors";
import { CONTEXT_COLUMNS, type EventContext, IMPORTANCE, type Importance } from "../protocol/events";
import { PREDICATE_OPS, type Predicate, type PredicateOp, type TailEvent, type TailFilter } from "../protocol/tail";
import { compileGlobs } from "./glob";

const FIELDS = new Set([
  "id",
  "ts",
  "receivedAt",
  "source",
  "type",
  "importance",
  "userId",
  "anonymousId",
  "sessionId",
  ...[...CONTEXT_COLUMNS.map(([field]) => field), "bot"].map((field) => `context.${field}`),
]);
const MAX_GLOBS = 32;
const MAX_PREDICATES = 16;

function invalid(message: string): DuckTailError {
  return new DuckTailError(ErrorCode.badRequest, `filter: ${message}`);
}

function globs(v: unknown, name: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || list.length > MAX_GLOBS || list.some((g) => typeof g !== "string" || g.length > 256)) {
    throw invalid(`${name} must be a glob string or a list of 1..${MAX_GLOBS} of them`);
  }
  return list as string[];
}

/** Checks a filter from a client and returns it in canonical form, or throws a `bad_request` naming the problem. */
export function validateFilter(raw: unknown): TailFilter {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== "object" || Array.isArray(raw)) throw invalid("must be an object");
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!["source", "type", "minImportance", "where"].includes(key)) throw invalid(`unknown part "${key}"`);
  }
  const out: TailFilter = {};
  const source = globs(o.source, "source");
  const type = globs(o.type, "type");
  if (source) out.source = source;
  if (type) out.type = type;
  if (o.minImportance !== undefined) {
    if (!IMPORTANCE.includes(o.minImportance as Importance)) {
      throw invalid(`minImportance must be one of ${IMPORTANCE.join(", ")}`);
    }
    out.minImportance = o.minImportance as Importance;
  }
  if (o.where !== undefined) {
    if (!Array.isArray(o.where) || o.where.length > MAX_PREDICATES) {
      throw invalid(`where must be a list of at most ${MAX_PREDICATES} predicates`);
    }
    out.where = o.where.map((p, i) => validatePredicate(p, i));
  }
  return out;
}

function validatePredicate(raw: unknown, i: number): Predicate {
  const p = raw as Partial<Predicate> | null;
  if (!p || typeof p !== "object") throw invalid(`where[${i}] must be {path, op, value}`);
  if (typeof p.path !== "string" || !(FIELDS.has(p.path) || /^data(\.[^.]+)+$/.test(p.path))) {
    throw invalid(`where[${i}].path must be a field (${[...FIELDS].join(", ")}) or data.<path>`);
  }
  if (!PREDICATE_OPS.includes(p.op as PredicateOp))
    throw invalid(`where[${i}].op must be one of ${PREDICATE_OPS.join(", ")}`);
  const v = p.value;
  const ordered = p.op === "gt" || p.op === "gte" || p.op === "lt" || p.op === "lte";
  if (ordered && (typeof v !== "number" || !Number.isFinite(v)))
    throw invalid(`where[${i}].value must be a number for ${p.op}`);
  if (p.op === "prefix" && typeof v !== "string") throw invalid(`where[${i}].value must be a string for prefix`);
  if (!["string", "number", "boolean"].includes(typeof v) && v !== null) {
    throw invalid(`where[${i}].value must be a string, number, boolean or null`);
  }
  return { path: p.path, op: p.op as PredicateOp, value: v as Predicate["value"] };
}

export type Test = (e: TailEvent) => boolean;

function globTest(patterns: string[], get: (e: TailEvent) => string): Test {
  const test = compileGlobs(patterns);
  return (e) => test(get(e));
}

export function getter(path: string): (e: TailEvent) => unknown {
  if (path.startsWith("context.")) {
    const field = path.slice(8) as keyof EventContext;
    return (e) => e.context?.[field] ?? null;
  }
  if (!path.startsWith("data.")) return (e) => e[path as keyof TailEvent];
  const keys = path.slice(5).split(".");
  return (e) => {
    let v: unknown = e.data;
    for (const k of keys) {
      if (v === null || typeof v !== "object") return undefined;
      v = (v as Record<string, unknown>)[k];
    }
    return v;
  };
}

function predicateTest(p: Predicate): Test {
  const get = getter(p.path);
  const v = p.value;
  switch (p.op) {
    case "eq":
      return (e) => get(e) === v;
    case "ne":
      return (e) => get(e) !== v;
    case "prefix":
      return (e) => {
        const x = get(e);
        return typeof x === "string" && x.startsWith(v as string);
      };
    case "gt":
      return (e) => num(get(e)) > (v as number);
    case "gte":
      return (e) => num(get(e)) >= (v as number);
    case "lt":
      return (e) => num(get(e)) < (v as number);
    case "lte":
      return (e) => num(get(e)) <= (v as number);
  }
}

/** Numbers compare; anything else never satisfies an ordering predicate. */
function num(x: unknown): number {
  return typeof x === "number" ? x : Number.NaN;
}

/** Compiles a validated filter once into a predicate over events (no per-event parsing or allocation). */
export function compileFilter(filter: TailFilter): Test {
  const tests: Test[] = [];
  if (filter.source) tests.push(globTest(arr(filter.source), (e) => e.source));
  if (filter.type) tests.push(globTest(arr(filter.type), (e) => e.type));
  if (filter.minImportance) {
    const min = IMPORTANCE.indexOf(filter.minImportance);
    tests.push((e) => IMPORTANCE.indexOf(e.importance) >= min);
  }
  for (const p of filter.where ?? []) tests.push(predicateTest(p));
  if (tests.length === 0) return () => true;
  return (e) => {
    for (const t of tests) if (!t(e)) return false;
    return true;
  };
}

function arr(v: string | string[]): string[] {
  return Array.isArray(v) ? v : [v];
}
