// The live tail's filter builder: source and type globs, the least importance, `where` conditions.
import { validateFilter } from "../../../src/gossip/filters";
import { IMPORTANCE } from "../../../src/protocol/events";
import { PREDICATE_OPS, type Predicate, type TailFilter } from "../../../src/protocol/tail";
import { h } from "../dom";
import { globs, predicateValue } from "./filter-text";

const show = (v: Predicate["value"]) =>
  typeof v === "string" && (v === "" || predicateValue(v) !== v) ? JSON.stringify(v) : String(v);

/** The form; `read()` builds the filter it shows and checks it (throws the server's message for a bad one). */
export function filterForm(initial: TailFilter): { el: HTMLElement; read: () => TailFilter } {
  const list = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(", ") : (v ?? ""));
  const source = h("input", { id: "tail-source", value: list(initial.source), placeholder: "web-*, api", size: 14 });
  const type = h("input", { id: "tail-type", value: list(initial.type), placeholder: "pageview, error", size: 14 });
  const importance = h(
    "select",
    { id: "tail-importance" },
    h("option", { value: "" }, "any"),
    ...IMPORTANCE.map((i) => h("option", { value: i, selected: initial.minImportance === i }, `${i}+`)),
  );
  const conditions = h("div", { class: "conditions" });
  const addCondition = (p: Partial<Predicate> = {}) => {
    const path = h("input", { value: p.path ?? "", placeholder: "data.status", "aria-label": "Field", size: 14 });
    const op = h(
      "select",
      { "aria-label": "Operator" },
      ...PREDICATE_OPS.map((o) => h("option", { value: o, selected: p.op === o }, o)),
    );
    const value = h("input", {
      value: p.value === undefined ? "" : show(p.value),
      placeholder: "500",
      "aria-label": "Value",
      size: 10,
    });
    const remove = h("button", { type: "button", "aria-label": "Remove condition" }, "×");
    const row = h("div", { class: "condition" }, path, op, value, remove);
    remove.addEventListener("click", () => row.remove());
    conditions.append(row);
  };
  for (const p of initial.where ?? []) addCondition(p);
  const add = h("button", { type: "button" }, "+ where");
  add.addEventListener("click", () => addCondition());

  const el = h(
    "div",
    { class: "filter-form" },
    h("label", { for: "tail-source" }, "source ", source),
    h("label", { for: "tail-type" }, "type ", type),
    h("label", { for: "tail-importance" }, "importance ", importance),
    conditions,
    add,
  );
  const read = (): TailFilter => {
    const where: Predicate[] = [...conditions.querySelectorAll(".condition")].map((row) => {
      const [path, op, value] = row.querySelectorAll<HTMLInputElement | HTMLSelectElement>("input, select");
      return {
        path: (path?.value ?? "").trim(),
        op: op?.value as Predicate["op"],
        value: predicateValue(value?.value ?? ""),
      };
    });
    const filter: TailFilter = {
      ...(globs(source.value) !== undefined && { source: globs(source.value) }),
      ...(globs(type.value) !== undefined && { type: globs(type.value) }),
      ...(importance.value !== "" && { minImportance: importance.value as TailFilter["minImportance"] }),
      ...(where.length > 0 && { where }),
    };
    return validateFilter(filter);
  };
  return { el, read };
}
