// The dashboard's shell: sign-in, navigation and hash routing; each page is its own lazily
// loaded chunk (sdk/dashboard/pages/<name>.ts exporting `page`), mounted into <main>.
import "./style.css";
import { ApiError, apiFetcher, baseFrom } from "./api";
import { fill, h, messageOf } from "./dom";
import type { DashboardContext, Page } from "./page";
import { parseRoute } from "./route";
import { checkKey, forgetKey, isOpen, KEY_STORAGE, takeKey } from "./session";

/** Every page by its route name, loaded on first visit. */
export const PAGES: Record<string, () => Promise<{ page: Page }>> = {
  overview: () => import("./pages/overview"),
  errors: () => import("./pages/errors"),
  tail: () => import("./pages/tail"),
  explorer: () => import("./pages/explorer"),
  cluster: () => import("./pages/cluster"),
  replay: () => import("./pages/replay"),
};

/** The navigation, in order: route name and label. */
const NAV: [string, string][] = [
  ["overview", "Overview"],
  ["errors", "Errors"],
  ["tail", "Live tail"],
  ["explorer", "Explorer"],
  ["cluster", "Cluster"],
  ["replay", "Replays"],
];

const base = baseFrom(location);
const app = document.getElementById("app") as HTMLElement;

async function start(): Promise<void> {
  const key = takeKey();
  try {
    if (key !== null) {
      await checkKey(base, key);
      return shell(key);
    }
    if (await isOpen(base)) return shell("");
    signInForm(null);
  } catch (err) {
    // A refused key is forgotten; one that could not be checked (the Worker unreachable) is kept.
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) forgetKey();
    signInForm(messageOf(err));
  }
}

function signInForm(error: string | null): void {
  const input = h("input", {
    id: "key",
    name: "key",
    type: "password",
    autocomplete: "current-password",
    required: true,
    placeholder: "read key",
    "aria-label": "Read key",
  });
  const status = h("p", { class: "error", role: "alert" }, error);
  const form = h(
    "form",
    { class: "sign-in", "aria-label": "Sign in" },
    h("h1", {}, "DuckTail"),
    h("label", { for: "key" }, "A read (or admin) key of your tenant"),
    input,
    h("button", { type: "submit" }, "Sign in"),
    status,
    h("p", { class: "muted" }, `Kept in this tab only (sessionStorage "${KEY_STORAGE}").`),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    fill(status, "Checking…");
    try {
      await checkKey(base, key);
      sessionStorage.setItem(KEY_STORAGE, key);
      shell(key);
    } catch (err) {
      fill(status, messageOf(err));
    }
  });
  fill(app, form);
  input.focus();
}

function shell(key: string): void {
  const ctx: DashboardContext = {
    base,
    key,
    api: apiFetcher(base, key),
    navigate: (hash) => {
      location.hash = hash;
    },
  };
  const links = NAV.map(([name, label]) => h("a", { href: `#/${name}`, "data-page": name }, label));
  const signOut = h("button", { type: "button", class: "sign-out" }, "Sign out");
  signOut.addEventListener("click", () => {
    forgetKey();
    stop();
    location.hash = "";
    signInForm(null);
  });
  const main = h("main", { id: "page", tabindex: -1 });
  fill(
    app,
    h(
      "header",
      {},
      h("a", { class: "brand", href: "#/overview" }, "DuckTail"),
      h("nav", { "aria-label": "Pages" }, ...links),
      signOut,
    ),
    main,
  );

  let unmount: (() => void) | null = null;
  let shown = 0;
  const stop = () => {
    window.removeEventListener("hashchange", show);
    unmount?.();
    unmount = null;
  };
  async function show(): Promise<void> {
    const turn = ++shown;
    const route = parseRoute(location.hash);
    for (const a of links) {
      if (a.dataset.page === route.page) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    unmount?.();
    unmount = null;
    const load = PAGES[route.page];
    if (!load) {
      fill(main, h("p", { class: "error" }, `No page "${route.page}".`));
      return;
    }
    fill(main, h("p", { class: "muted" }, "Loading…"));
    try {
      const { page } = await load();
      if (turn !== shown) return; // left for another page while this one loaded
      document.title = `${page.title} · DuckTail`;
      const root = h("section", { class: `page page-${route.page}`, "aria-label": page.title });
      fill(main, root);
      unmount = page.mount(root, ctx, route.params);
    } catch (err) {
      if (turn === shown) fill(main, h("p", { class: "error" }, `The page failed to load: ${messageOf(err)}`));
    }
  }
  window.addEventListener("hashchange", show);
  void show();
}

void start();
