/**
 * The new-series rate limit (WEIR_NEW_SERIES_RATE, issue 19 item 3): a
 * token bucket of `perSec` new series a second, holding at most
 * `perSec × limits.newSeriesBurstSeconds`. A request's new series are
 * checked against what the bucket holds (ingest.ts proposes them) and taken
 * from it only when the request commits, so a refused request spends
 * nothing. Series already known never touch it: a cardinality explosion is
 * refused per event while the known series keep flowing.
 *
 * @example
 *   const b = new SeriesBudget(5_000, 50_000, Date.now());
 *   if (proposedNow < b.available(now)) …; b.take(registered, now);
 */
export class SeriesBudget {
  private tokens: number;

  constructor(readonly perSec: number, readonly burst: number, private lastMs: number) {
    this.tokens = burst;
  }

  /** New series that may be registered at `nowMs`. */
  available(nowMs: number): number {
    this.refill(nowMs);
    return Math.floor(this.tokens);
  }

  /** `n` new series were registered. */
  take(n: number, nowMs: number): void {
    this.refill(nowMs);
    this.tokens = Math.max(0, this.tokens - n);
  }

  private refill(nowMs: number): void {
    if (nowMs > this.lastMs) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.lastMs) / 1000) * this.perSec);
      this.lastMs = nowMs;
    }
  }
}
