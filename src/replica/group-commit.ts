interface Queued<T> {
  write: () => T;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for SQLite writes that must be durable before an ack (confirmed and durable
 * storage modes). workerd commits the writes of each event (each socket frame) on their own,
 * one disk sync per frame. Here writes wait `delayMs` on a timer, then all that arrived run in
 * one turn and share one commit; the output gate still holds every ack until that commit is
 * on disk, so an ack never precedes its rows.
 */
export class GroupCommit {
  private queue: Queued<unknown>[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Groups written and writes they carried (stats). */
  groups = 0;
  writes = 0;

  constructor(private readonly delayMs: number) {}

  /** Runs `write` with the next group and resolves with its result (the ack waits for the commit). */
  run<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ write, resolve, reject } as Queued<unknown>);
      this.timer ??= setTimeout(() => this.writeGroup(), this.delayMs);
    });
  }

  private writeGroup(): void {
    this.timer = null;
    const group = this.queue;
    this.queue = [];
    this.groups++;
    this.writes += group.length;
    for (const item of group) {
      try {
        item.resolve(item.write());
      } catch (err) {
        item.reject(err);
      }
    }
  }
}
