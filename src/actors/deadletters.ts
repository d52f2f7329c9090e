/**
 * The dead-letter list: the newest limits.deadlettersMax rejected and late
 * events with their reason, in a fixed ring in memory. Adding is O(1) and
 * builds nothing: a late event is kept as its numbers, and its JSON is made
 * only when the list is read, so a flood of late events costs the pipeline
 * next to nothing. Older entries are overwritten (the bound is the
 * contract); every one is still counted in weir_events_rejected_total or
 * weir_events_late_total, and every accepted event stays in the raw log.
 * The list does not survive a restart.
 *
 * @example
 *   const dl = new DeadLetters(10_000);
 *   dl.add(Date.now(), "late", () => ({ name: "cpu", ts, value }));
 *   dl.list(0, 100); // [{ ts, reason, event }] newest first
 */
export interface DeadLetter { ts: number; reason: string; event: unknown }

export class DeadLetters {
  private readonly ts: Float64Array;
  private readonly reasons: string[];
  private readonly events: Array<unknown | (() => unknown)>;
  private next = 0;
  private count = 0;

  constructor(readonly max: number) {
    this.ts = new Float64Array(max);
    this.reasons = new Array(max);
    this.events = new Array(max);
  }

  get size(): number {
    return this.count;
  }

  /** `event` may be a function that builds the event when the list is read. */
  add(ts: number, reason: string, event: unknown | (() => unknown)): void {
    this.ts[this.next] = ts;
    this.reasons[this.next] = reason;
    this.events[this.next] = event;
    this.next = (this.next + 1) % this.max;
    if (this.count < this.max) this.count++;
  }

  /** Entries with ts ≥ since, newest first, at most `limit`. */
  list(since: number, limit: number): DeadLetter[] {
    const out: DeadLetter[] = [];
    for (let k = 1; k <= this.count && out.length < limit; k++) {
      const i = (this.next - k + this.max) % this.max;
      if (this.ts[i] < since) continue;
      const e = this.events[i];
      out.push({ ts: this.ts[i], reason: this.reasons[i], event: typeof e === "function" ? (e as () => unknown)() : e });
    }
    return out;
  }
}
