import { CoordinatorCalls, type Stub } from "../protocol/calls";
import type { LoadReport } from "../protocol/routes";
import type { ReplicaIdentity } from "./store";

const DEFAULT_REPORT_INTERVAL_MS = 10_000;

/** What a load report reads of its replica. */
export interface ReportHost {
  /** The replica's name, once it has one (an unnamed replica does not report). */
  identity(): ReplicaIdentity | null;
  coordinator(tenant: string): Stub;
  buffered(): { rows: number; bytes: number };
  connections(): number;
  /** The seq of the latest saved view change, when the replica keeps views. */
  viewSeq(): number | undefined;
  waitUntil(p: Promise<unknown>): void;
}

/**
 * Tells the coordinator this shard's request and event rates and buffer fill (at most one report
 * per REPORT_INTERVAL_MS, sent after an ingest or from the alarm, never awaited by an ack). The
 * coordinator sums them into the tenant's rate to pick its tier.
 */
export class LoadReporter {
  /** Requests and events since the last report. */
  private window = { requests: 0, events: 0, since: Date.now() };
  private readonly intervalMs: number;

  constructor(
    private readonly host: ReportHost,
    env: { REPORT_INTERVAL_MS?: string },
  ) {
    this.intervalMs = Number(env.REPORT_INTERVAL_MS ?? DEFAULT_REPORT_INTERVAL_MS);
  }

  /** One ingest request of `events` events; reports when the interval has passed. */
  count(events: number, now: number): void {
    this.window.requests++;
    this.window.events += events;
    if (now - this.window.since >= this.intervalMs) this.host.waitUntil(this.report());
  }

  /** Whether anything happened since the last report (the alarm then reports it). */
  get pending(): boolean {
    return this.window.requests > 0;
  }

  async report(): Promise<void> {
    const id = this.host.identity();
    if (!id) return;
    const now = Date.now();
    const { requests, events, since } = this.window;
    this.window = { requests: 0, events: 0, since: now };
    const buffered = this.host.buffered();
    const report: LoadReport = {
      n: id.shard,
      requests,
      events,
      seconds: Math.max(0.001, (now - since) / 1000),
      bufferedBytes: buffered.bytes,
      bufferedRows: buffered.rows,
      connections: this.host.connections(),
      at: now,
    };
    const viewSeq = this.host.viewSeq();
    if (viewSeq !== undefined) report.viewSeq = viewSeq;
    try {
      await new CoordinatorCalls(this.host.coordinator(id.tenant), id.tenant).report(report);
    } catch (err) {
      console.error("ducktail: load report failed", err);
    }
  }
}
