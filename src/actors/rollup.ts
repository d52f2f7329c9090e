/**
 * Downsampled history for the window actor: rollups such as "1m" and "1h".
 * A rollup window [start, end) of a series (start a multiple of its size
 * since the epoch) is the merge of that series' base windows inside it, the
 * base being the first tumbling spec whose size is the pane ("10s" by
 * default): count and sum add, min / max, first of the earliest base window,
 * last of the latest, avg = sum / count, and p50 / p95 / p99 from the merge
 * of the base windows' quantile sketches, never an average of percentiles
 * (exact while count ≤ limits.sketchExactMax, else within 1 %).
 *
 * A rollup is incremental: a series holds at most one open RollupWindow per
 * rollup, fed when a base window is emitted (its one pane is merged in), and
 * never keeps a pane for it. So a series' rollups cost at most rollupCount ×
 * (ten numbers + one QuantileSketch), whatever their size: a sketch holds at
 * most limits.sketchExactMax raw values (800 B) or two runs of at most
 * limits.sketchBinsMax bins (16 KB each), about 1–4 KB for ordinary data.
 * When and in which order they close is the window actor's business
 * (src/actors/window.ts).
 *
 * @example
 *   const base = rollupBaseOf(parseWindowSpecs("10s,60s/10s"), [{ label: "1m", sizeMs: 60_000 }]); // 0: "10s"
 *   const w = new RollupWindow();
 *   w.reset(0, 60_000);
 *   w.feed(pane); // each closing 10 s pane of [0, 60 s), in order
 */
import { limits } from "../runtime/limits.ts";
import { QuantileSketch } from "../sketch/quantile.ts";
import { paneMsOf, type WindowSpec } from "./window-spec.ts";

/** A rollup as the engine asks for it: `{ label: "1m", sizeMs: 60_000 }`. */
export interface RollupOption { label: string; sizeMs: number }

/** What a rollup reads of a closing base window: its one pane's aggregate. */
export interface PaneAggregate {
  count: number;
  sum: number;
  min: number;
  max: number;
  first: number;
  firstTs: number;
  last: number;
  lastTs: number;
  sketch: QuantileSketch;
}

/** Numbers per open rollup window in a snapshot: sid, rollup index, then RollupWindow.row(). */
export const rollupFields = 12;

/**
 * Count, sum, min, max, first/last (by event time) and a quantile sketch of
 * the values in [start, end): a pane of the window actor, or an open rollup.
 */
export class Aggregate {
  start = 0;
  end = 0;
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  first = 0;
  firstTs = Infinity;
  last = 0;
  lastTs = -Infinity;
  sketch = new QuantileSketch();

  reset(start: number, end: number): void {
    this.start = start;
    this.end = end;
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
    this.firstTs = Infinity;
    this.lastTs = -Infinity;
    this.sketch.clear();
  }
}

/** One open rollup window of one series: the merge of the base windows fed so far. */
export class RollupWindow extends Aggregate implements PaneAggregate {
  /** Merges one base window. Base windows are disjoint, so first / last come from the earliest / latest of them. */
  feed(p: PaneAggregate): void {
    this.count += p.count;
    this.sum += p.sum;
    if (p.min < this.min) this.min = p.min;
    if (p.max > this.max) this.max = p.max;
    if (p.firstTs < this.firstTs) {
      this.firstTs = p.firstTs;
      this.first = p.first;
    }
    if (p.lastTs >= this.lastTs) {
      this.lastTs = p.lastTs;
      this.last = p.last;
    }
    this.sketch.merge(p.sketch);
  }

  /** The numbers snapshot() keeps (rollupFields − 2 of them); fromRow() reads them back. */
  row(): number[] {
    return [this.start, this.end, this.count, this.sum, this.min, this.max, this.first, this.firstTs, this.last, this.lastTs];
  }

  fromRow(row: ArrayLike<number>, sketch: QuantileSketch): void {
    [this.start, this.end, this.count, this.sum, this.min, this.max, this.first, this.firstTs, this.last, this.lastTs] = Array.from(row);
    this.sketch = sketch;
  }
}

/**
 * Checks the rollups against the specs and returns the index of their base
 * spec (−1 when there are no rollups). Throws a plain Error naming the
 * problem: no tumbling spec of the pane size, a size that is not a multiple
 * of the base size above it, a label already taken, more than
 * limits.rollupsMax rollups.
 * @example rollupBaseOf(parseWindowSpecs("10s,60s/10s"), [{ label: "1h", sizeMs: 3_600_000 }]) // 0
 */
export function rollupBaseOf(specs: readonly WindowSpec[], rollups: readonly RollupOption[]): number {
  if (rollups.length === 0) return -1;
  const pane = paneMsOf(specs);
  const base = specs.findIndex((s) => s.sizeMs === s.slideMs && s.sizeMs === pane);
  const names = specs.map((s) => s.label).join(",");
  if (base < 0) {
    throw new Error(`rollups need a tumbling window spec of the pane size (${pane} ms) to merge from; windows ${names} have none`);
  }
  if (rollups.length > limits.rollupsMax) throw new Error(`rollups: ${rollups.length} given, at most ${limits.rollupsMax}`);
  const taken = new Set(specs.map((s) => s.label));
  const baseMs = specs[base].sizeMs;
  for (const r of rollups) {
    if (r.label === "" || taken.has(r.label)) throw new Error(`rollup "${r.label}": label empty or already used by ${names} or another rollup`);
    taken.add(r.label);
    const ok = Number.isSafeInteger(r.sizeMs) && r.sizeMs > baseMs && r.sizeMs % baseMs === 0 && r.sizeMs <= limits.rollupSizeMsMax;
    if (!ok) {
      throw new Error(
        `rollup "${r.label}": size ${r.sizeMs} ms must be a multiple of the base window "${specs[base].label}" (${baseMs} ms) above it and at most ${limits.rollupSizeMsMax} ms`,
      );
    }
  }
  return base;
}
