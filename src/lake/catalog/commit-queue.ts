/**
 * Group commit for the catalog: a request that finds the queue idle (no round in the last
 * `windowMs`) is committed at once; requests that arrive within `windowMs` of a round wait for the
 * window and are committed together, in one call of `run` (one transaction, one storage round
 * trip), each caller getting its own result. A lone flush pays no wait, and a burst of 128
 * replicas flushing at once costs a few rounds, not 128 serial transactions.
 */
export class CommitQueue<Req, Res> {
  private waiting: { req: Req; resolve: (r: Res) => void; reject: (e: unknown) => void }[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastRoundAt = Number.NEGATIVE_INFINITY;
  /** Rounds run and requests committed since start-up (stats). */
  rounds = 0;
  requests = 0;

  /**
   * @param run commits a round; returns one result per request, in order (throwing fails the round)
   * @param windowMs how long requests following a round wait for others
   * @param maxBatch a round this full runs at once
   * @param now the clock (tests)
   */
  constructor(
    private readonly run: (batch: Req[]) => Res[],
    private readonly windowMs: number,
    private readonly maxBatch = 512,
    private readonly now: () => number = Date.now,
  ) {}

  submit(req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.waiting.push({ req, resolve, reject });
      if (this.waiting.length >= this.maxBatch) this.flush();
      else if (this.timer === null) {
        const idle = this.now() - this.lastRoundAt >= this.windowMs;
        if (idle) this.flush();
        else this.timer = setTimeout(() => this.flush(), this.windowMs);
      }
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
    this.lastRoundAt = this.now();
    try {
      const results = this.run(batch.map((w) => w.req));
      for (const [i, w] of batch.entries()) w.resolve(results[i] as Res);
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  }
}
