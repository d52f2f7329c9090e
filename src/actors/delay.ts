/**
 * How far behind the wall clock a series (or a whole partition) arrives:
 * the estimate the window actor's quiet rule waits for before it closes the
 * windows of a series that has stopped sending (src/actors/window.ts).
 *
 * A delay sample is receive time − event time, floored at 0 (a producer
 * whose clock runs ahead is treated as real-time). Samples fall into
 * periods of `periodMs` of the series' own event time, a clock that only
 * moves forward with the data; a sample older than the current period
 * counts in the current one.
 * The estimate is taken over the current and the previous period (the last
 * two that held samples):
 *
 *   estimate = max + (max − min)
 *
 * so a steady delay is waited for exactly, and a delay that jitters is
 * waited for with as much again as it has been seen to vary: 30 s steady →
 * 30 s; anywhere in 20–40 s → 60 s. It forgets a backlog one to two periods
 * after its delays were seen, and it changes only when a sample arrives (never
 * on the wall clock), so replaying the same batches gives the same estimates.
 *
 * @example
 *   const d = new RecentDelay();
 *   d.observe(30_000, ts, limits.delayPeriodMs); // a sample of 30 s
 *   d.ms; // 30_000
 */
export class RecentDelay {
  curMax = -Infinity;
  curMin = Infinity;
  prevMax = -Infinity;
  prevMin = Infinity;
  /** Where the current period ends on the clock the samples are placed by. */
  periodEnd = -Infinity;
  /** The estimate in ms: 0 until the first sample. */
  ms = 0;
  /** The largest delay of the two periods: with a few samples only, 2 × this is the cautious estimate. */
  maxMs = 0;

  /** Adds one sample taken at `atMs` (event or receive time). */
  observe(delayMs: number, atMs: number, periodMs: number): void {
    const d = delayMs > 0 ? delayMs : 0;
    if (atMs >= this.periodEnd) {
      this.prevMax = this.curMax;
      this.prevMin = this.curMin;
      this.curMax = d;
      this.curMin = d;
      this.periodEnd = (Math.floor(atMs / periodMs) + 1) * periodMs;
    } else if (d > this.curMax) this.curMax = d;
    else if (d < this.curMin) this.curMin = d;
    else return; // inside what the period has seen: the estimate stays
    const max = this.curMax > this.prevMax ? this.curMax : this.prevMax;
    const min = this.curMin < this.prevMin ? this.curMin : this.prevMin;
    this.maxMs = max;
    this.ms = 2 * max - min;
  }

  /** Writes its numbers for a snapshot into `out` from `o`: curMax, curMin, prevMax, prevMin, periodEnd, ms, maxMs. */
  writeRow(out: { [i: number]: number }, o: number): void {
    out[o] = this.curMax;
    out[o + 1] = this.curMin;
    out[o + 2] = this.prevMax;
    out[o + 3] = this.prevMin;
    out[o + 4] = this.periodEnd;
    out[o + 5] = this.ms;
    out[o + 6] = this.maxMs;
  }

  /** Restores from writeRow()'s numbers starting at `o`. */
  fromRow(r: ArrayLike<number>, o: number): this {
    this.curMax = r[o];
    this.curMin = r[o + 1];
    this.prevMax = r[o + 2];
    this.prevMin = r[o + 3];
    this.periodEnd = r[o + 4];
    this.ms = r[o + 5];
    this.maxMs = r[o + 6];
    return this;
  }
}

/** Numbers RecentDelay.writeRow() writes. */
export const recentDelayFields = 7;
