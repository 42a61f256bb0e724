export interface DashboardContext {
  /** The deployment's base URL (origin + BASE_PATH), e.g. "http://localhost:8787". */
  base: string;
  /** fetch with the read key added (Authorization: Bearer <key>); rejects with a readable Error on a non-2xx answer's DuckTail error body. */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** The read key, for WebSocket URLs and the like. */
  key: string;
  /** Go to another page, e.g. navigate("#/replay/abc?t=123"). */
  navigate(hash: string): void;
}
export interface Page {
  title: string;
  /** Renders into root; returns a function that stops timers/sockets when the page is left. */
  mount(root: HTMLElement, ctx: DashboardContext, params: URLSearchParams): () => void;
}
