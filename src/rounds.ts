/**
 * Work in rounds, one at a time: what is asked for while a round runs joins the next one, which
 * starts when it is done. Under load the rounds grow by themselves (one commit or one gossip for
 * everything that came meanwhile); when idle a request starts its round at once. Rounds run in
 * the order they were opened.
 */
export class Rounds<T, R> {
  private open: { items: T; done: Promise<R> } | null = null;
  private last: Promise<unknown> = Promise.resolve();

  constructor(
    /** A new round's empty contents. */
    private readonly empty: () => T,
    /** Runs a round with what it collected. */
    private readonly run: (items: T) => Promise<R>,
  ) {}

  /** The round that has not started yet (a new one if none): add to `items`, then await `done`. */
  next(): { items: T; done: Promise<R> } {
    if (this.open) return this.open;
    const round = { items: this.empty(), done: Promise.resolve() as Promise<R> };
    round.done = this.last.then(() => {
      if (this.open === round) this.open = null; // what comes later takes the next round
      return this.run(round.items);
    });
    this.open = round;
    this.last = round.done.catch(() => {});
    return round;
  }
}
