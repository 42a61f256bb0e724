// The live tail filter as text: in the address and in the form's fields (no DOM here).
import { validateFilter } from "../../../src/gossip/filters";
import type { Predicate, TailFilter } from "../../../src/protocol/tail";

/** The filter in the page's params (`#/tail?filter=<json>`), checked as the server checks it. */
export function filterFromParams(params: URLSearchParams): TailFilter {
  const raw = params.get("filter");
  if (raw === null || raw.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error("the filter in the address is not JSON");
  }
  return validateFilter(parsed);
}

/** A glob list as typed: "web-*, api" → ["web-*", "api"]; one → a string; none → undefined. */
export function globs(text: string): string | string[] | undefined {
  const list = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return list.length === 0 ? undefined : list.length === 1 ? list[0] : list;
}

/** A `where` value as typed: numbers, true, false and null as themselves, "quoted" or anything else as text. */
export function predicateValue(text: string): Predicate["value"] {
  const t = text.trim();
  if (t === "true") return true;
  if (t === "false") return false;
  if (t === "null") return null;
  if (t !== "" && Number.isFinite(Number(t))) return Number(t);
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1);
  return text;
}
