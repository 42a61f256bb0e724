import { ClientErrorCode, DuckTailClientError } from "./errors";

export type ErrorListener = (error: DuckTailClientError) => void;

/**
 * Where a client's failures go: `onError`, `on("error")` listeners, and, for an outage or a
 * permanent failure, one console warning. An outage (the Worker unreachable) is reported once
 * until the connection is back, however many retries fail meanwhile.
 */
export class Reporter {
  private readonly listeners = new Set<ErrorListener>();
  private inOutage = false;

  constructor(
    private readonly onError: ErrorListener | undefined,
    private readonly warnings: boolean,
  ) {}

  /** Whether the last attempt failed with no answer since. */
  get outage(): boolean {
    return this.inOutage;
  }

  on(listener: ErrorListener): void {
    this.listeners.add(listener);
  }

  off(listener: ErrorListener): void {
    this.listeners.delete(listener);
  }

  report(err: DuckTailClientError): void {
    for (const listener of [this.onError, ...this.listeners]) {
      try {
        listener?.(err);
      } catch {
        // a throwing handler must not stop the client
      }
    }
  }

  /** A transient failure (`why`); reported and warned only if it starts an outage. */
  unreachable(why: string, held: number): void {
    if (this.inOutage) return;
    this.inOutage = true;
    const events = `${held} event${held === 1 ? "" : "s"}`;
    const err = new DuckTailClientError(ClientErrorCode.unreachable, `${why}; ${events} held, retrying with backoff`);
    this.report(err);
    this.warn(`${err.message} (one warning per outage; { warnings: false } silences it)`);
  }

  /** The server answered: the next failure is a new outage. */
  reachable(): void {
    this.inOutage = false;
  }

  /** A failure no retry fixes: reported once, and warned, since promises nobody awaits say nothing. */
  permanent(err: DuckTailClientError): void {
    this.report(err);
    this.warn(`${err.message}. This client now refuses every event; fix the options and create a new one.`);
  }

  private warn(message: string): void {
    if (this.warnings) console.warn(`ducktail: ${message}`);
  }
}
