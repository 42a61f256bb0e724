// The cluster page is being built on this branch.
import { h } from "../dom";
import type { Page } from "../page";

export const page: Page = {
  title: "cluster",
  mount(root) {
    root.append(h("p", { class: "muted" }, "cluster: not built yet."));
    return () => {};
  },
};
