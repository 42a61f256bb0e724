// The tail page is being built on this branch.
import { h } from "../dom";
import type { Page } from "../page";

export const page: Page = {
  title: "tail",
  mount(root) {
    root.append(h("p", { class: "muted" }, "tail: not built yet."));
    return () => {};
  },
};
