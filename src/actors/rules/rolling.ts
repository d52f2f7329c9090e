/**
 * One rule instance's own aggregate over `over` (plan.ts, "rolling"): the
 * closed tumbling windows of its series inside [end − over, end), each kept
 * as (end, count, v) where v is what the aggregate folds (the window's sum
 * for sum and avg, its min for min, its max for max; unused for count and
 * rate). A window that held no event was never emitted and is simply not
 * there, which is what count, sum, min and max of the whole span need.
 *
 * The ring is a Float64Array that grows by doubling up to `over / source
 * size` windows (at most limits.ruleWindowPanesMax), so a sparse series
 * keeps little. The aggregate is folded afresh at each push, in window
 * order: exact (no running float sum to drift), at most
 * ruleWindowPanesMax adds, no allocation unless the ring grows.
 *
 * @example
 *   const r = new RollingWindow("avg", 30_000, 10_000);
 *   r.push(10_000, 4, 40); // a 10 s window: 4 events summing to 40
 *   r.push(20_000, 1, 20);
 *   r.value(); // 12: (40 + 20) / 5
 */
import { strict as assert } from "node:assert";
import type { Aggregate } from "./expr.ts";
import { float64Of } from "../../sketch/quantile.ts";

export type FoldedAggregate = Exclude<Aggregate, "p50" | "p95" | "p99">;

const fields = 3; // end, count, v
const entriesInitial = 4;

export class RollingWindow {
  private ring: Float64Array;
  private head = 0; // index of the oldest entry
  private size = 0;
  private readonly capacityMax: number;

  constructor(readonly agg: FoldedAggregate, readonly overMs: number, sourceMs: number) {
    assert(overMs % sourceMs === 0, "over is a multiple of its source window");
    this.capacityMax = overMs / sourceMs;
    this.ring = new Float64Array(Math.min(entriesInitial, this.capacityMax) * fields);
  }

  /** Adds the closed window ending at `end` (later than any before) and drops those no longer inside [end − over, end). */
  push(end: number, count: number, v: number): void {
    const from = end - this.overMs;
    while (this.size > 0 && this.ring[this.head * fields] <= from) {
      this.head = (this.head + 1) % this.capacity();
      this.size--;
    }
    if (this.size === this.capacity()) this.grow();
    assert(this.size < this.capacity(), "ends are distinct multiples of the source size inside over");
    const at = ((this.head + this.size) % this.capacity()) * fields;
    this.ring[at] = end;
    this.ring[at + 1] = count;
    this.ring[at + 2] = v;
    this.size++;
  }

  /** The aggregate over the windows held (at least one: called after push), folded oldest first. */
  value(): number {
    const r = this.ring;
    const wrap = r.length;
    let at = this.head * fields;
    let count = 0;
    let v = this.agg === "min" ? Infinity : this.agg === "max" ? -Infinity : 0;
    for (let i = 0; i < this.size; i++) {
      count += r[at + 1];
      const x = r[at + 2];
      if (this.agg === "min") v = x < v ? x : v;
      else if (this.agg === "max") v = x > v ? x : v;
      else v += x;
      at += fields;
      if (at === wrap) at = 0;
    }
    switch (this.agg) {
      case "count": return count;
      case "rate": return count / (this.overMs / 1000);
      case "avg": return v / count;
      default: return v;
    }
  }

  /** The entries oldest first, `fields` numbers each: plain data for restore(). */
  snapshot(): Float64Array {
    const out = new Float64Array(this.size * fields);
    for (let i = 0; i < this.size; i++) {
      const at = ((this.head + i) % this.capacity()) * fields;
      out.set(this.ring.subarray(at, at + fields), i * fields);
    }
    return out;
  }

  restore(entries: Float64Array | Uint8Array): void {
    const e = float64Of(entries);
    const n = e.length / fields;
    if (!Number.isInteger(n) || n > this.capacityMax) throw new Error(`rule window snapshot: ${e.length} numbers do not fit ${this.capacityMax} windows`);
    this.ring = new Float64Array(Math.max(n, Math.min(entriesInitial, this.capacityMax)) * fields);
    this.ring.set(e);
    this.head = 0;
    this.size = n;
  }

  private capacity(): number {
    return this.ring.length / fields;
  }

  private grow(): void {
    const cap = this.capacity();
    if (cap === this.capacityMax) return;
    const next = new Float64Array(Math.min(cap * 2, this.capacityMax) * fields); // grows to the span once, then stays
    for (let i = 0; i < this.size; i++) {
      const at = ((this.head + i) % cap) * fields;
      next.set(this.ring.subarray(at, at + fields), i * fields);
    }
    this.ring = next;
    this.head = 0;
  }
}

/** The number a closed window contributes as v for an aggregate (see the module comment). */
export function foldedPart(agg: FoldedAggregate, w: { sum: number; min: number; max: number }): number {
  return agg === "min" ? w.min : agg === "max" ? w.max : agg === "sum" || agg === "avg" ? w.sum : 0;
}
