// A placeholder until the explorer page's own branch is merged (it replaces this file).
import { h } from "../dom";
import type { Page } from "../page";

export const page: Page = {
  title: "Explorer",
  mount(root) {
    root.append(h("p", { class: "muted" }, "Explorer: not built yet."));
    return () => {};
  },
};
