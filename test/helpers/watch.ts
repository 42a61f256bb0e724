/**
 * What a page did, recorded as it happens by a subclass (through `record`), and `until`, which
 * waits for a condition over it to hold, re-checked after each change, never for a fixed time.
 */
export abstract class PageEvents {
  private readonly checks = new Set<() => void>();
  /** How long `until` waits by default. */
  protected readonly waitMs: number = 10_000;

  /** What the timeout's error says of the state. */
  protected abstract describe(): string;

  /** Applies a change to the recorded state and re-checks every waiting condition. */
  protected record(change: () => void): void {
    change();
    for (const check of this.checks) check();
  }

  until(ready: () => boolean, what: string, ms = this.waitMs): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!ready()) return;
        this.checks.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.checks.delete(check);
        reject(new Error(`timed out waiting for ${what}: ${this.describe()}`));
      }, ms);
      this.checks.add(check);
      check();
    });
  }
}
