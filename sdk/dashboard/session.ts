import { apiFetcher } from "./api";

/** Where the read key is kept: this tab's sessionStorage, gone when the tab closes. */
export const KEY_STORAGE = "ducktail.key";

/**
 * The key the dashboard starts with: `?key=` in the address (stored, then removed from the
 * address so it is not left in history or shared links), else the stored one, else null.
 */
export function takeKey(): string | null {
  const url = new URL(location.href);
  const given = url.searchParams.get("key");
  if (given !== null) {
    sessionStorage.setItem(KEY_STORAGE, given);
    url.searchParams.delete("key");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
    return given;
  }
  return sessionStorage.getItem(KEY_STORAGE);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY_STORAGE);
}

/** Whether the Worker runs without keys (GET /health says `auth: "open"`): then no sign-in is needed. */
export async function isOpen(base: string): Promise<boolean> {
  const res = await apiFetcher(base, "")("/health");
  return ((await res.json()) as { auth?: string }).auth === "open";
}

/** Resolves when `key` may read the tenant's stats (GET /stats); rejects with the server's reason. */
export async function checkKey(base: string, key: string): Promise<void> {
  await apiFetcher(base, key)("/stats");
}
