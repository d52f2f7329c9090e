/**
 * The quiet rule's delay (src/actors/delay.ts and window.ts "Delay"),
 * restated as naively as possible for the reference models of the window
 * and rollup tests: every sample is kept with the period it counts in, and
 * the estimate is recomputed from the list each time.
 */
import { limits } from "../../src/runtime/limits.ts";

/** One estimate: samples counted in the newest period seen so far. */
export class NaiveDelay {
  private readonly samples: Array<{ period: number; d: number }> = [];
  private newest = -Infinity;

  constructor(private readonly periodMs = limits.delayPeriodMs) {}

  observe(delayMs: number, atMs: number): void {
    this.newest = Math.max(this.newest, Math.floor(atMs / this.periodMs));
    this.samples.push({ period: this.newest, d: Math.max(0, delayMs) });
  }

  /** The samples of the last two periods that hold any. */
  private recent(): number[] {
    const periods = [...new Set(this.samples.map((x) => x.period))].sort((a, b) => b - a).slice(0, 2);
    return this.samples.filter((x) => periods.includes(x.period)).map((x) => x.d);
  }

  /** max + (max − min) of the recent samples; 0 with none. */
  ms(): number {
    const ds = this.recent();
    return ds.length === 0 ? 0 : 2 * Math.max(...ds) - Math.min(...ds);
  }

  /** The largest recent sample; 0 with none. */
  maxMs(): number {
    const ds = this.recent();
    return ds.length === 0 ? 0 : Math.max(...ds);
  }
}

/** Each series' delay: delayOf(sid) is what the quiet rule waits for (2 × the largest delay while it warms up). */
export class NaiveDelays {
  private readonly series = new Map<number, { own: NaiveDelay; seen: number }>();

  constructor(private readonly periodMs = limits.delayPeriodMs) {}

  observe(sid: number, ts: number, recvMs: number): void {
    let s = this.series.get(sid);
    if (!s) this.series.set(sid, (s = { own: new NaiveDelay(this.periodMs), seen: 0 }));
    s.own.observe(recvMs - ts, ts);
    s.seen++;
  }

  delayOf(sid: number): number {
    const s = this.series.get(sid)!;
    return s.seen < limits.delayWarmupEvents ? 2 * s.own.maxMs() : s.own.ms();
  }
}
