// A placeholder until the replay page's own branch is merged (it replaces this file).
import { h } from "../dom";
import type { Page } from "../page";

export const page: Page = {
  title: "Replay",
  mount(root) {
    root.append(h("p", { class: "muted" }, "Replay: not built yet."));
    return () => {};
  },
};
