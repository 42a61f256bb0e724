// The errors page is being built on this branch.
import { h } from "../dom";
import type { Page } from "../page";

export const page: Page = {
  title: "errors",
  mount(root) {
    root.append(h("p", { class: "muted" }, "errors: not built yet."));
    return () => {};
  },
};
