import { h } from "./dom";
import { RANGES, type Range } from "./views";

/** The 1h / 24h / 48h picker of a page: links to `#/<page>?range=`, the current one pressed. */
export function rangePicker(pageName: string, current: Range): HTMLElement {
  return h(
    "span",
    { class: "ranges", role: "group", "aria-label": "Range" },
    ...(Object.keys(RANGES) as Range[]).map((r) =>
      h("a", { href: `#/${pageName}?range=${r}`, class: "range", "aria-pressed": String(r === current) }, r),
    ),
  );
}
