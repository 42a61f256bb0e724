// The overview page is being built on this branch.
import { h } from "../dom";
import type { Page } from "../page";

export const page: Page = {
  title: "overview",
  mount(root) {
    root.append(h("p", { class: "muted" }, "overview: not built yet."));
    return () => {};
  },
};
