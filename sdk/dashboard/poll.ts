import { messageOf } from "./dom";

/** A page's refresh loop: runs `load` now and `everyMs` after each run ends, until stopped. */
export class Poller {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly controller = new AbortController();
  private stopped = false;
  private running = false;
  /** Whether runs repeat (auto-refresh); `refresh()` runs once either way. */
  auto = true;

  constructor(
    private readonly everyMs: number,
    private readonly load: (signal: AbortSignal) => Promise<void>,
    /** Called with what a run threw (never after `stop`), and with null once a run succeeds. */
    private readonly failed: (message: string | null) => void,
  ) {}

  /** Runs now (unless a run is in flight), then again every `everyMs` while `auto`. */
  refresh(): void {
    if (this.stopped || this.running) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.running = true;
    this.load(this.controller.signal)
      .then(
        () => {
          if (!this.stopped) this.failed(null);
        },
        (err) => {
          if (!this.stopped) this.failed(messageOf(err));
        },
      )
      .finally(() => {
        this.running = false;
        if (!this.stopped && this.auto) this.timer = setTimeout(() => this.refresh(), this.everyMs);
      });
  }

  /** Turns auto-refresh on (running now) or off. */
  setAuto(on: boolean): void {
    this.auto = on;
    if (on) this.refresh();
    else if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  stop(): void {
    this.stopped = true;
    this.controller.abort();
    if (this.timer !== null) clearTimeout(this.timer);
  }
}
