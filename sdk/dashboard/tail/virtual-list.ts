/**
 * A list of many fixed-height rows, newest first, that keeps only the visible rows in the DOM and
 * redraws at most once per animation frame however fast items arrive. Reading history (scrolled
 * away from the top), the rows in view stay put while new ones arrive above them.
 */
export class VirtualList<T> {
  /** Oldest first; the view shows them reversed. */
  private items: T[] = [];
  private readonly spacer: HTMLElement;
  private readonly pool: HTMLElement[] = [];
  private frame: number | null = null;
  /** Rows that arrived above while the reader was scrolled down: the scroll moves by them at the next draw. */
  private pendingShift = 0;
  private readonly onScroll = () => this.schedule();
  /** Frames drawn, for the benchmark and tests. */
  draws = 0;

  constructor(
    /** A scrolling element (overflow-y: auto) with a fixed height. */
    private readonly viewport: HTMLElement,
    private readonly rowHeight: number,
    private readonly render: (item: T, row: HTMLElement) => void,
    /** Most items kept; older ones are forgotten. */
    private readonly capacity = 10_000,
  ) {
    this.spacer = document.createElement("div");
    this.spacer.className = "vlist-spacer";
    this.spacer.style.position = "relative";
    viewport.append(this.spacer);
    viewport.addEventListener("scroll", this.onScroll, { passive: true });
  }

  get size(): number {
    return this.items.length;
  }

  /** The item shown at row `i` (0 = newest). */
  at(i: number): T | undefined {
    return this.items[this.items.length - 1 - i];
  }

  push(items: readonly T[]): void {
    if (items.length === 0) return;
    for (const item of items) this.items.push(item);
    // Trim in chunks, not per push: an Array shift per event would cost at 1,000 a second. The
    // oldest go, at the bottom of the view, so rows in view move only by what came on top.
    if (this.items.length > this.capacity * 1.25) this.items.splice(0, this.items.length - this.capacity);
    if (this.viewport.scrollTop > 0) this.pendingShift += items.length;
    this.schedule();
  }

  clear(): void {
    this.items = [];
    this.viewport.scrollTop = 0;
    this.schedule();
  }

  destroy(): void {
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.viewport.removeEventListener("scroll", this.onScroll);
  }

  private schedule(): void {
    this.frame ??= requestAnimationFrame(() => {
      this.frame = null;
      this.draw();
    });
  }

  private draw(): void {
    this.draws++;
    const h = this.rowHeight;
    this.spacer.style.height = `${this.items.length * h}px`;
    if (this.pendingShift > 0) {
      this.viewport.scrollTop += this.pendingShift * h;
      this.pendingShift = 0;
    }
    const first = Math.floor(this.viewport.scrollTop / h);
    const count = Math.min(Math.ceil(this.viewport.clientHeight / h) + 1, Math.max(0, this.items.length - first));
    while (this.pool.length < count) {
      const row = document.createElement("div");
      row.className = "vlist-row";
      row.style.position = "absolute";
      row.style.left = "0";
      row.style.right = "0";
      row.style.height = `${h}px`;
      this.spacer.append(row);
      this.pool.push(row);
    }
    this.pool.forEach((row, k) => {
      if (k >= count) {
        row.hidden = true;
        return;
      }
      const i = first + k;
      row.hidden = false;
      row.style.transform = `translateY(${i * h}px)`;
      row.dataset.index = String(i);
      this.render(this.at(i) as T, row);
    });
  }
}
