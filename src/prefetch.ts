/**
 * Runs the producer for upcoming entries while the consumer writes the current one, so that reading,
 * quantizing and writing overlap. Entries are consumed strictly in order; production runs one entry
 * ahead always, and further only while the source bytes in flight stay within a budget, which bounds
 * memory by a few tensors.
 */
export class Prefetcher<E, T> {
  private readonly started: Promise<T>[] = [];
  private next = 0;
  private consumed = 0;
  private inflight = 0;

  constructor(
    private readonly entries: readonly E[],
    private readonly size: (e: E) => number,
    private readonly produce: (e: E) => Promise<T>,
    private readonly budgetBytes: number,
  ) {}

  /** The product of entry `e`, which must be the next one in order. */
  get(e: E): Promise<T> {
    const i = this.consumed;
    if (this.entries[i] !== e) throw new Error('Prefetcher: entries must be consumed in order');
    if (i > 0) this.inflight -= this.size(this.entries[i - 1]!); // the previous one has been written
    this.consumed++;
    this.fill();
    return this.started[i]!;
  }

  private fill(): void {
    while (this.next < this.entries.length) {
      const e = this.entries[this.next]!;
      const mustStart = this.next < this.consumed; // the one being asked for
      // One entry beyond it always starts, whatever its size, so that reading and quantizing the next
      // tensor overlaps writing this one; further ones only within the budget.
      const nextOne = this.next === this.consumed;
      if (!mustStart && !nextOne && this.inflight + this.size(e) > this.budgetBytes) break;
      const p = this.produce(e);
      p.catch(() => undefined); // rejections are seen by the consumer, or by drain()
      this.started.push(p);
      this.inflight += this.size(e);
      this.next++;
    }
  }

  /** Waits until no production is running (after a failure, before resources are closed). */
  async drain(): Promise<void> {
    await Promise.allSettled(this.started);
  }
}
