/**
 * One view window's aggregate for one group: count, sum, min, max, the
 * first and last value by event time, a quantile sketch when the view asks
 * for percentiles, and a distinct counter when it asks for count_distinct.
 * Mergeable: a partition's part and the parts of the other partitions (and
 * of later checkpoints) fold into the same result in any order — the
 * percentiles through the same sketch as the series' windows, count_distinct
 * through DistinctCounter. first/last take the earliest and the latest event
 * time; between equal times, the smaller and the larger value, so the
 * result does not depend on the order of merges either.
 *
 * @example
 *   const a = new ViewAgg(true, false);
 *   a.add(1_000, 5, null); a.add(2_000, 7, null);
 *   a.merge(otherPartitionsPart);
 *   a.result(); // { count, sum, min, max, avg, p50, p95, p99, first, last, distinct }
 */
import { QuantileSketch, type SketchSnapshot } from "../../sketch/quantile.ts";
import { DistinctCounter, type DistinctSnapshot } from "./distinct.ts";
import type { ClosedPane } from "../window.ts";

export interface ViewAggSnapshot {
  n: number; sum: number; min: number; max: number; ft: number; f: number; lt: number; l: number;
  q: SketchSnapshot | null; d: DistinctSnapshot | null;
}

export interface ViewResult {
  count: number; sum: number; min: number; max: number; avg: number;
  p50: number | null; p95: number | null; p99: number | null; first: number; last: number; distinct: number | null;
}

/** A view aggregate's value in a result (count_distinct is `distinct`). */
export function resultValue(r: ViewResult, agg: string): number | null {
  return agg === "count_distinct" ? r.distinct : (r as unknown as Record<string, number | null>)[agg] ?? null;
}

const qs = [0.5, 0.95, 0.99];

export class ViewAgg {
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  firstTs = Infinity;
  first = NaN;
  lastTs = -Infinity;
  last = NaN;
  readonly sketch: QuantileSketch | null;
  readonly distinct: DistinctCounter | null;

  constructor(sketch: boolean, distinct: boolean) {
    this.sketch = sketch ? new QuantileSketch() : null;
    this.distinct = distinct ? new DistinctCounter() : null;
  }

  add(ts: number, v: number, distinctValue: string | null): void {
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    this.takeFirst(ts, v);
    this.takeLast(ts, v);
    this.sketch?.add(v);
    if (this.distinct !== null && distinctValue !== null) this.distinct.add(distinctValue);
  }

  /**
   * The accepted events of one series' pane (its window actor's aggregate):
   * as if each were added (first / last: the pane's own, which on equal
   * times keeps the earliest / latest arrival rather than the smaller /
   * larger value). `distinctValue`: the series' tag, one for all its events.
   */
  addPane(p: ClosedPane, distinctValue: string | null): void {
    if (p.count === 0) return;
    this.fold(p);
    this.sketch?.merge(p.sketch);
    if (this.distinct !== null && distinctValue !== null) this.distinct.add(distinctValue);
  }

  merge(o: ViewAgg): void {
    if (o.count === 0) return;
    this.fold(o);
    if (this.sketch !== null && o.sketch !== null) this.sketch.merge(o.sketch);
    if (this.distinct !== null && o.distinct !== null) this.distinct.merge(o.distinct);
  }

  /** Count, sum, min, max, first and last of another part (a pane or an aggregate). */
  private fold(o: Pick<ViewAgg, "count" | "sum" | "min" | "max" | "firstTs" | "first" | "lastTs" | "last">): void {
    this.count += o.count;
    this.sum += o.sum;
    if (o.min < this.min) this.min = o.min;
    if (o.max > this.max) this.max = o.max;
    this.takeFirst(o.firstTs, o.first);
    this.takeLast(o.lastTs, o.last);
  }

  result(): ViewResult {
    let p50: number | null = null;
    let p95: number | null = null;
    let p99: number | null = null;
    if (this.sketch !== null && this.count > 0) {
      const out = new Float64Array(3);
      this.sketch.quantilesWithin(qs, out, this.min, this.max);
      [p50, p95, p99] = [out[0], out[1], out[2]];
    }
    return {
      count: this.count, sum: this.sum, min: this.min, max: this.max, avg: this.sum / this.count, p50, p95, p99,
      first: this.first, last: this.last, distinct: this.distinct?.estimate() ?? null,
    };
  }

  snapshot(): ViewAggSnapshot {
    return {
      n: this.count, sum: this.sum, min: this.min, max: this.max, ft: this.firstTs, f: this.first, lt: this.lastTs, l: this.last,
      q: this.sketch?.snapshot() ?? null, d: this.distinct?.snapshot() ?? null,
    };
  }

  static restore(s: ViewAggSnapshot): ViewAgg {
    const a = new ViewAgg(s.q !== null, s.d !== null);
    a.count = s.n;
    a.sum = s.sum;
    a.min = s.min;
    a.max = s.max;
    a.firstTs = s.ft;
    a.first = s.f;
    a.lastTs = s.lt;
    a.last = s.l;
    if (s.q !== null) a.sketch!.merge(QuantileSketch.restore(s.q));
    if (s.d !== null) a.distinct!.merge(DistinctCounter.restore(s.d));
    return a;
  }

  private takeFirst(ts: number, v: number): void {
    if (ts < this.firstTs || (ts === this.firstTs && v < this.first)) {
      this.firstTs = ts;
      this.first = v;
    }
  }

  private takeLast(ts: number, v: number): void {
    if (ts > this.lastTs || (ts === this.lastTs && v > this.last)) {
      this.lastTs = ts;
      this.last = v;
    }
  }
}
