/**
 * Group commit for the catalog: requests arriving within `windowMs` of the first one waiting are
 * committed together, in one call of `run` (one transaction, one storage round trip), and each
 * caller gets its own result. A burst of 128 replicas flushing at once costs a few rounds, not
 * 128 serial transactions.
 */
export class CommitQueue<Req, Res> {
  private waiting: { req: Req; resolve: (r: Res) => void; reject: (e: unknown) => void }[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Rounds run and requests committed since start-up (stats). */
  rounds = 0;
  requests = 0;

  /**
   * @param run commits a round; returns one result per request, in order (throwing fails the round)
   * @param windowMs how long the first request of a round waits for others
   * @param maxBatch a round this full runs at once
   */
  constructor(
    private readonly run: (batch: Req[]) => Res[],
    private readonly windowMs: number,
    private readonly maxBatch = 512,
  ) {}

  submit(req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.waiting.push({ req, resolve, reject });
      if (this.waiting.length >= this.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.windowMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.waiting;
    this.waiting = [];
    if (batch.length === 0) return;
    this.rounds++;
    this.requests += batch.length;
    try {
      const results = this.run(batch.map((w) => w.req));
      for (const [i, w] of batch.entries()) w.resolve(results[i] as Res);
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  }
}
