/** Events per second over the last `windowMs`, from counts noted as they arrive. */
export class RateMeter {
  private readonly marks: { at: number; n: number }[] = [];
  private total = 0;

  constructor(private readonly windowMs = 5_000) {}

  note(n: number, now: number): void {
    this.marks.push({ at: now, n });
    this.total += n;
    this.trim(now);
  }

  /** Events per second over the last `windowMs`. */
  rate(now: number): number {
    this.trim(now);
    return (this.total * 1000) / this.windowMs;
  }

  private trim(now: number): void {
    while (this.marks.length > 0 && (this.marks[0]?.at ?? now) <= now - this.windowMs) {
      this.total -= this.marks.shift()?.n ?? 0;
    }
  }
}
