/**
 * A mergeable quantile sketch: exact for small sets, a DDSketch beyond.
 *
 * Up to limits.sketchExactMax values are kept raw, so the answer is the exact
 * nearest-rank value (rank = ceil(q·n), 1-based, over the sorted values). A
 * merge whose total stays within that bound stays exact. Past it, the values
 * move into a DDSketch (Masson, Rim & Lee, VLDB 2019): value v > 0 counts in
 * bucket i = ceil(log_γ v), with γ = (1 + α)/(1 − α) and α =
 * limits.sketchRelativeAccuracy, and the answer for rank r is the
 * representative 2γ^i/(γ + 1) of the bucket holding r, which lies within α of
 * every value in that bucket. Negative values count by |v| in a second store,
 * zeros in a counter. The answer is clamped to the observed [min, max], which
 * can only move it closer to the true value.
 *
 * Each store is a dense run of bins that grows by offset. It never spans more
 * than limits.sketchBinsMax buckets (a value range of about e^20 at α = 0.5 %):
 * past that, the lowest bins are folded into the lowest kept one. In the
 * positive store those are the smallest values, in the negative store (kept
 * under key −i) the most negative ones, so collapsing only degrades the lowest
 * quantiles of each sign; for all-positive data, the lowest quantiles. The
 * folded result does not depend on the order of adds and merges.
 *
 * Values must be finite (validated upstream). add() allocates only when the
 * raw buffer or a store has to grow; clear() keeps both for reuse.
 *
 * SlidingMerge holds the merge of a run of sketches that slides (the panes of
 * a sliding window): the newest enters, the oldest leaves, and its quantiles
 * are those quantilesOfMerge gives for the same run, bit for bit.
 *
 * @example
 *   const s = new QuantileSketch();
 *   for (const v of [3, 1, 2]) s.add(v);
 *   s.quantile(0.5); // 2 (exact: 3 values)
 *   const copy = QuantileSketch.restore(s.snapshot());
 */
import { strict as assert } from "node:assert";
import { limits } from "../runtime/limits.ts";
import { copyFloat64Slices, runSlices } from "../runtime/slices.ts";

const alpha = limits.sketchRelativeAccuracy;
const gamma = (1 + alpha) / (1 - alpha);
const invLnGamma = 1 / Math.log(gamma);
const lnGamma = Math.log(gamma);
const representativeFactor = 2 / (gamma + 1);
const exactMax = limits.sketchExactMax;
const binsMax = limits.sketchBinsMax;
/** First raw buffer; most windows of a quiet series hold a handful of values. */
const rawInitial = 16;
/** First bin run; doubles up to binsMax as the value range widens. */
const binsInitial = 64;
const noBins = new Float64Array(0);
/** quantile(q) is quantiles([q]); these spare it an allocation per call. */
const oneQ = [0];
const oneOut = new Float64Array(1);

/** Plain data for QuantileSketch.restore(); MessagePack turns Float64Array into bytes, both are accepted. */
export interface SketchSnapshot {
  n: number;
  min: number;
  max: number;
  zero: number;
  /** The raw values while the sketch is exact, else null. */
  raw: Float64Array | Uint8Array | null;
  neg: StoreSnapshot | null;
  pos: StoreSnapshot | null;
}
export interface StoreSnapshot { lo: number; bins: Float64Array | Uint8Array }

/**
 * Many sketches as plain data in two columns: `head` holds sketchHeadFields
 * numbers per sketch (n, min, max, zero, raw length or −1 when binned, the
 * negative store's lowest key and length, the positive store's), `values`
 * their raw values or bins back to back, in that order.
 */
export interface SketchColumns { head: Float64Array | Uint8Array; values: Float64Array | Uint8Array }
export const sketchHeadFields = 9;

/** Sketches held by columns. */
export function sketchCount(c: SketchColumns): number {
  return c.head.byteLength / 8 / sketchHeadFields;
}

function storeLength(store: BinStore): number {
  return store.lo > store.hi ? 0 : store.hi - store.lo + 1;
}

/**
 * A Float64Array from a snapshot column: a Float64Array (copied) or the bytes
 * MessagePack decodes it to (copied, since a decoded bin may sit at an
 * unaligned offset). Byte order is the platform's, as on the wire.
 * @example float64Of(decode(encode(new Float64Array([1, 2])))) // Float64Array [1, 2]
 */
export function float64Of(x: Float64Array | Uint8Array | readonly number[]): Float64Array<ArrayBuffer> {
  if (x instanceof Float64Array) return x.slice();
  if (x instanceof Uint8Array) {
    if (x.byteLength % 8 !== 0) throw new Error(`snapshot column of ${x.byteLength} bytes is not a Float64Array`);
    const copy = new Uint8Array(x.byteLength);
    copy.set(x);
    return new Float64Array(copy.buffer);
  }
  return Float64Array.from(x);
}

/** Dense counts for keys [offset, offset + bins.length); [lo, hi] is the used range, both ends non-zero. */
class BinStore {
  bins = noBins;
  offset = 0;
  lo = Infinity;
  hi = -Infinity;

  add(key: number, count: number): void {
    const j = key - this.offset;
    if (j >= 0 && j < this.bins.length) {
      // The run never spans more than binsMax keys, so a key inside it needs no collapse.
      this.bins[j] += count;
      if (key < this.lo) this.lo = key;
      if (key > this.hi) this.hi = key;
    } else {
      this.addOutside(key, count);
    }
  }

  /** Adds every bin of another store: its two ends through add() (which widens the run), the rest in one pass. */
  addAll(other: BinStore): void {
    if (other.lo > other.hi) return;
    const src = other.bins;
    const so = other.offset;
    this.add(other.hi, src[other.hi - so]);
    if (other.lo === other.hi) return;
    this.add(other.lo, src[other.lo - so]);
    // The run now spans [max(other.lo, floor), hi]; keys under the floor fold into it.
    const floor = this.hi - binsMax + 1;
    let k = other.lo + 1;
    let folded = 0;
    for (; k < other.hi && k < floor; k++) folded += src[k - so];
    const dst = this.bins;
    const shift = so - this.offset;
    if (folded !== 0) dst[floor - this.offset] += folded;
    for (; k < other.hi; k++) dst[k - so + shift] += src[k - so];
  }

  /** Whether keys lo..hi can join the run without folding (its span stays within binsMax). */
  fits(lo: number, hi: number): boolean {
    return Math.max(this.hi, hi) - Math.min(this.lo, lo) < binsMax;
  }

  /** Takes back every bin of a store added before (addAll, with nothing folded since). */
  subAll(other: BinStore): void {
    const src = other.bins;
    const so = other.offset;
    for (let k = other.lo; k <= other.hi; k++) this.bins[k - this.offset] -= src[k - so];
    this.trim();
  }

  /** Takes back a count added before at a key inside the run; trim() afterwards. */
  sub(key: number, count: number): void {
    this.bins[key - this.offset] -= count;
  }

  /** Narrows [lo, hi] past bins that subtraction emptied, so both ends are non-zero again. */
  trim(): void {
    const b = this.bins;
    while (this.lo <= this.hi && b[this.lo - this.offset] === 0) this.lo++;
    while (this.hi >= this.lo && b[this.hi - this.offset] === 0) this.hi--;
    if (this.lo > this.hi) {
      this.lo = Infinity;
      this.hi = -Infinity;
    }
  }

  clear(): void {
    if (this.lo <= this.hi) this.bins.fill(0, this.lo - this.offset, this.hi - this.offset + 1);
    this.lo = Infinity;
    this.hi = -Infinity;
  }

  /** A key outside the current run: widen it, folding the lowest keys if the span passes binsMax. */
  private addOutside(key: number, count: number): void {
    if (!Number.isFinite(key)) throw new Error("QuantileSketch: values must be finite");
    const hi = Math.max(this.hi, key);
    const floor = hi - binsMax + 1;
    const k = Math.max(key, floor);
    const lo = Math.max(Math.min(this.lo, k), floor);
    this.layout(lo, hi);
    this.bins[k - this.offset] += count;
    this.lo = lo;
    this.hi = hi;
  }

  /** Makes the run cover [lo, hi], with the spare room split on both sides; keys below lo are folded into lo. */
  private layout(lo: number, hi: number): void {
    const need = hi - lo + 1;
    const old = this.bins;
    const oldOffset = this.offset;
    const len = old.length >= need ? old.length : Math.min(binsMax, Math.max(need + binsInitial, old.length * 2));
    const empty = this.lo > this.hi;
    const spare = len - need;
    // Centred: a distribution that widens on both sides re-lays out rarely.
    const offset = lo - (spare >> 1);
    const keepFrom = Math.max(this.lo, lo);
    let folded = 0;
    for (let key = this.lo; key < keepFrom && key <= this.hi; key++) folded += old[key - oldOffset];
    // Growth allocates; otherwise the run moves in place and is re-zeroed outside the kept keys.
    const bins = len === old.length ? old : new Float64Array(len);
    if (keepFrom <= this.hi) {
      if (bins === old) {
        old.copyWithin(keepFrom - offset, keepFrom - oldOffset, this.hi - oldOffset + 1);
        bins.fill(0, 0, keepFrom - offset);
        bins.fill(0, this.hi - offset + 1);
      } else {
        bins.set(old.subarray(keepFrom - oldOffset, this.hi - oldOffset + 1), keepFrom - offset);
      }
    } else if (!empty && bins === old) {
      bins.fill(0);
    }
    this.bins = bins;
    this.offset = offset;
    if (folded !== 0) bins[lo - offset] += folded;
  }

  snapshot(): StoreSnapshot | null {
    if (this.lo > this.hi) return null;
    return { lo: this.lo, bins: this.bins.slice(this.lo - this.offset, this.hi - this.offset + 1) };
  }

  static restore(snap: StoreSnapshot | null): BinStore {
    const store = new BinStore();
    if (snap === null) return store;
    const bins = float64Of(snap.bins);
    if (bins.length === 0 || bins.length > binsMax || bins[0] === 0 || bins[bins.length - 1] === 0) {
      throw new Error("QuantileSketch: malformed store snapshot");
    }
    store.bins = bins;
    store.offset = snap.lo;
    store.lo = snap.lo;
    store.hi = snap.lo + bins.length - 1;
    return store;
  }
}

/** The 1-based nearest rank ceil(q·n), robust to q·n landing a hair above an integer (0.07 × 100). */
function rankOf(q: number, n: number): number {
  const x = q * n;
  const near = Math.round(x);
  const r = Math.abs(x - near) <= 1e-9 * x ? near : Math.ceil(x);
  return r < 1 ? 1 : r > n ? n : r;
}

/**
 * The bucket of x > 0: ceil(log_γ x). addToBins() calls it for each sign:
 * calling binKey() there cost 3 % of the window actor's events/s (measured
 * on bench/window.ts's stream).
 */
function bucketOf(x: number): number {
  return Math.ceil(Math.log(x) * invLnGamma);
}

/** The store key of v ≠ 0: its bucket, negated for v < 0 (the negative store keeps bucket i under key −i). */
function binKey(v: number): number {
  return v > 0 ? bucketOf(v) : -bucketOf(-v);
}

/** Up to this many raw values, sorting is by insertion. */
const insertionSortMax = 24;
/** Room to merge the raw values of up to limits.sketchMergeExactPartsMax exact parts; allocated once. */
const mergedA = new Float64Array(limits.sketchMergeExactPartsMax * exactMax);
const mergedB = new Float64Array(limits.sketchMergeExactPartsMax * exactMax);

/** Merges sorted a[0 .. na) and b[0 .. nb) into out; returns the length. */
function mergeInto(a: Float64Array, na: number, b: Float64Array, nb: number, out: Float64Array): number {
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < na && j < nb) out[k++] = a[i] <= b[j] ? a[i++] : b[j++];
  while (i < na) out[k++] = a[i++];
  while (j < nb) out[k++] = b[j++];
  return k;
}

export class QuantileSketch {
  private n = 0;
  private min = Infinity;
  private max = -Infinity;
  private exact = true;
  private sorted = true;
  private raw = new Float64Array(rawInitial);
  private zero = 0;
  private neg = new BinStore();
  private pos = new BinStore();

  /** Values added (including through merges). */
  get count(): number {
    return this.n;
  }

  add(v: number): void {
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    const n = this.n;
    this.n = n + 1;
    if (this.exact) {
      if (n < this.raw.length) {
        this.raw[n] = v;
        this.sorted = false;
        return;
      }
      if (n < exactMax) {
        this.growRaw(n + 1);
        this.raw[n] = v;
        this.sorted = false;
        return;
      }
      this.toBins(n);
    }
    this.addToBins(v, 1);
  }

  /** Adds every value of `other` (unchanged). Exact while the total stays ≤ limits.sketchExactMax. */
  merge(other: QuantileSketch): void {
    const m = other.n;
    if (m === 0) return;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
    const n = this.n;
    this.n = n + m;
    if (this.exact && other.exact && n + m <= exactMax) {
      if (n + m > this.raw.length) this.growRaw(n + m);
      for (let i = 0; i < m; i++) this.raw[n + i] = other.raw[i];
      this.sorted = false;
      return;
    }
    if (this.exact) this.toBins(n);
    if (other.exact) {
      for (let i = 0; i < m; i++) this.addToBins(other.raw[i], 1);
    } else {
      this.zero += other.zero;
      this.neg.addAll(other.neg);
      this.pos.addAll(other.pos);
    }
  }

  /**
   * merge(other), but into the bins whatever the total, and never folding:
   * false when a key of other would take a store past limits.sketchBinsMax
   * buckets (this sketch is then half-merged: clear it). What it merged,
   * unmerge() can take back exactly.
   * @example acc.clear(); if (!acc.mergeUnfolded(a) || !acc.mergeUnfolded(b)) acc.clear();
   */
  mergeUnfolded(other: QuantileSketch): boolean {
    if (this.exact) this.toBins(this.n);
    const m = other.n;
    if (m === 0) return true;
    if (other.exact) {
      for (let i = 0; i < m; i++) if (!this.addToBinsUnfolded(other.raw[i])) return false;
    } else {
      if (!this.neg.fits(other.neg.lo, other.neg.hi) || !this.pos.fits(other.pos.lo, other.pos.hi)) return false;
      this.zero += other.zero;
      this.neg.addAll(other.neg);
      this.pos.addAll(other.pos);
    }
    this.n += m;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
    return true;
  }

  /**
   * Takes back a sketch merged by mergeUnfolded() (and unchanged since).
   * Exact, since bins are integer counts and nothing was folded; min and
   * max cannot be taken back, so they stay as bounds (see quantilesWithin).
   * @example acc.mergeUnfolded(p0); acc.mergeUnfolded(p1); acc.unmerge(p0); // holds p1
   */
  unmerge(other: QuantileSketch): void {
    assert(!this.exact, "unmerge() from a sketch that mergeUnfolded() put in bins");
    const m = other.n;
    if (m === 0) return;
    this.n -= m;
    if (other.exact) {
      for (let i = 0; i < m; i++) {
        const v = other.raw[i];
        if (v > 0) this.pos.sub(binKey(v), 1);
        else if (v < 0) this.neg.sub(binKey(v), 1);
        else this.zero--;
      }
      this.neg.trim();
      this.pos.trim();
    } else {
      this.zero -= other.zero;
      this.neg.subAll(other.neg);
      this.pos.subAll(other.pos);
    }
  }

  /** quantiles(), clamped to the [min, max] the caller knows: after unmerge() the sketch's own are only bounds. */
  quantilesWithin(qs: ArrayLike<number>, out: Float64Array | number[], min: number, max: number): void {
    this.min = min;
    this.max = max;
    this.quantiles(qs, out);
  }

  /** Whether the values are still held raw (count ≤ limits.sketchExactMax). */
  get isExact(): boolean {
    return this.exact;
  }

  /**
   * The raw values in ascending order, sorted in place once (as
   * quantilesOfMerge sorts them); read [0, count). Only while isExact.
   * @example const raw = s.sortedRaw(); const lowest = raw[0];
   */
  sortedRaw(): Float64Array {
    assert(this.exact, "sortedRaw() of an exact sketch");
    this.sortRaw();
    return this.raw;
  }

  /**
   * The nearest-rank q-quantile (0 ≤ q ≤ 1): exact while count ≤
   * limits.sketchExactMax, else within limits.sketchRelativeAccuracy of it.
   * NaN when empty.
   */
  quantile(q: number): number {
    oneQ[0] = q;
    this.quantiles(oneQ, oneOut);
    return oneOut[0];
  }

  /**
   * Several quantiles in one pass over the buckets: out[i] = quantile(qs[i]),
   * for qs in ascending order.
   * @example s.quantiles([0.5, 0.95, 0.99], out) // out: Float64Array(3)
   */
  quantiles(qs: ArrayLike<number>, out: Float64Array | number[]): void {
    const n = this.n;
    const m = qs.length;
    if (n === 0 || this.exact) {
      this.sortRaw();
      for (let i = 0; i < m; i++) out[i] = n === 0 ? NaN : this.raw[rankOf(qs[i], n) - 1];
      return;
    }
    this.fromBins(qs, out);
  }

  /**
   * Quantiles of the merge of parts[0 .. count). When every part is exact
   * and there are at most limits.sketchMergeExactPartsMax, their sorted raw
   * values are merged and the answer is exact, whatever the total (sorting
   * reorders a part's raw values, nothing else). Otherwise the parts are
   * merged into `scratch` (cleared first), which answers.
   * @example QuantileSketch.quantilesOfMerge(paneSketches, 6, [0.5, 0.99], out, scratch);
   */
  static quantilesOfMerge(
    parts: readonly QuantileSketch[], count: number, qs: ArrayLike<number>, out: Float64Array | number[], scratch: QuantileSketch,
  ): void {
    if (count === 1) return parts[0].quantiles(qs, out);
    let total = 0;
    let exact = count <= limits.sketchMergeExactPartsMax;
    for (let p = 0; p < count && exact; p++) {
      exact = parts[p].exact;
      total += parts[p].n;
    }
    if (!exact || total === 0) {
      scratch.clear();
      for (let p = 0; p < count; p++) scratch.merge(parts[p]);
      return scratch.quantiles(qs, out);
    }
    for (let p = 0; p < count; p++) parts[p].sortRaw();
    QuantileSketch.mergeSorted(parts, count, total, qs, out);
  }

  /** Merges the sorted raw values of the parts, one part at a time, and reads the ranks off the result. */
  private static mergeSorted(
    parts: readonly QuantileSketch[], count: number, total: number, qs: ArrayLike<number>, out: Float64Array | number[],
  ): void {
    let acc = parts[0].raw;
    let len = parts[0].n;
    for (let p = 1; p < count; p++) {
      const into = p % 2 === 1 ? mergedA : mergedB; // never the buffer acc is in
      len = mergeInto(acc, len, parts[p].raw, parts[p].n, into);
      acc = into;
    }
    for (let i = 0; i < qs.length; i++) out[i] = acc[rankOf(qs[i], total) - 1];
  }

  /** Sorts the raw values in place, once: a frozen part is sorted for every window that reads it. */
  private sortRaw(): void {
    if (this.sorted) return;
    const n = this.n;
    const raw = this.raw;
    if (n <= insertionSortMax) {
      // Few values: an insertion sort beats the native sort and its subarray() view.
      for (let i = 1; i < n; i++) {
        const v = raw[i];
        let j = i - 1;
        for (; j >= 0 && raw[j] > v; j--) raw[j + 1] = raw[j];
        raw[j + 1] = v;
      }
    } else {
      (n === raw.length ? raw : raw.subarray(0, n)).sort();
    }
    this.sorted = true;
  }

  clear(): void {
    this.n = 0;
    this.min = Infinity;
    this.max = -Infinity;
    this.exact = true;
    this.sorted = true;
    this.zero = 0;
    this.neg.clear();
    this.pos.clear();
  }

  snapshot(): SketchSnapshot {
    return {
      n: this.n,
      min: this.min,
      max: this.max,
      zero: this.zero,
      raw: this.exact ? this.raw.slice(0, this.n) : null,
      neg: this.exact ? null : this.neg.snapshot(),
      pos: this.exact ? null : this.pos.snapshot(),
    };
  }

  /**
   * Many sketches as two columns (see SketchColumns), so a checkpoint
   * encodes two bins instead of one object per sketch: 3,500 sketches a
   * checkpoint of a 500-series partition in the side by side's shape.
   * @example const c = QuantileSketch.columnsOf(sketches); QuantileSketch.fromColumns(c)[0].quantile(0.5);
   */
  static columnsOf(sketches: readonly QuantileSketch[]): SketchColumns {
    let total = 0;
    for (const s of sketches) total += s.exact ? s.n : storeLength(s.neg) + storeLength(s.pos);
    const head = new Float64Array(sketches.length * sketchHeadFields);
    const values = new Float64Array(total);
    let v = 0;
    for (let k = 0; k < sketches.length; k++) {
      const s = sketches[k];
      const o = k * sketchHeadFields;
      head[o] = s.n;
      head[o + 1] = s.min;
      head[o + 2] = s.max;
      head[o + 3] = s.zero;
      if (s.exact) {
        head[o + 4] = s.n;
        const raw = s.raw;
        for (let i = 0; i < s.n; i++) values[v++] = raw[i]; // a loop: set() of a subarray costs more for these few values
        continue;
      }
      head[o + 4] = -1;
      for (const [store, at] of [[s.neg, o + 5], [s.pos, o + 7]] as const) {
        const len = storeLength(store);
        head[at] = len === 0 ? 0 : store.lo;
        head[at + 1] = len;
        const bins = store.bins;
        for (let i = store.lo - store.offset, end = i + len; i < end; i++) values[v++] = bins[i];
      }
    }
    return { head, values };
  }

  /** The sketches of columnsOf(), in order; throws on columns that do not add up. */
  static fromColumns(c: SketchColumns): QuantileSketch[] {
    return runSlices(QuantileSketch.fromColumnsSlices(c, Infinity));
  }

  /** fromColumns() in slices of `perSlice` sketches, yielding between them (a partition worker beats there while it restores). */
  static *fromColumnsSlices(c: SketchColumns, perSlice: number): Generator<void, QuantileSketch[]> {
    const head = yield* copyFloat64Slices(c.head);
    const values = yield* copyFloat64Slices(c.values);
    if (head.length % sketchHeadFields !== 0) throw new Error("QuantileSketch: malformed sketch columns");
    const out: QuantileSketch[] = [];
    let v = 0;
    for (let o = 0; o < head.length; o += sketchHeadFields) {
      const rawLen = head[o + 4];
      const snap: SketchSnapshot = { n: head[o], min: head[o + 1], max: head[o + 2], zero: head[o + 3], raw: null, neg: null, pos: null };
      if (rawLen >= 0) {
        snap.raw = values.subarray(v, v + rawLen);
        v += rawLen;
      } else {
        for (const [at, side] of [[o + 5, "neg"], [o + 7, "pos"]] as const) {
          const len = head[at + 1];
          if (len > 0) snap[side] = { lo: head[at], bins: values.subarray(v, v + len) };
          v += len;
        }
      }
      if (v > values.length) throw new Error("QuantileSketch: malformed sketch columns");
      out.push(QuantileSketch.restore(snap));
      if (out.length % perSlice === 0) yield;
    }
    if (v !== values.length) throw new Error("QuantileSketch: malformed sketch columns");
    return out;
  }

  /** @example const s = QuantileSketch.restore(decode(encode(sketch.snapshot())) as SketchSnapshot); */
  static restore(snap: SketchSnapshot): QuantileSketch {
    const s = new QuantileSketch();
    s.n = snap.n;
    s.min = snap.min;
    s.max = snap.max;
    s.zero = snap.zero;
    if (snap.raw !== null) {
      const raw = float64Of(snap.raw);
      if (raw.length !== snap.n || snap.n > exactMax) throw new Error("QuantileSketch: malformed raw snapshot");
      s.raw = new Float64Array(Math.max(rawInitial, raw.length));
      s.raw.set(raw);
      s.sorted = false;
      return s;
    }
    s.exact = false;
    s.neg = BinStore.restore(snap.neg);
    s.pos = BinStore.restore(snap.pos);
    return s;
  }

  private growRaw(needed: number): void {
    // Allocation on growth only; the buffer is kept across clear().
    const raw = new Float64Array(Math.min(exactMax, Math.max(needed, this.raw.length * 2)));
    raw.set(this.raw);
    this.raw = raw;
  }

  /** Leaves exact mode: the first n raw values move into the bins. */
  private toBins(n: number): void {
    this.exact = false;
    for (let i = 0; i < n; i++) this.addToBins(this.raw[i], 1);
  }

  private addToBins(v: number, c: number): void {
    if (v > 0) this.pos.add(bucketOf(v), c);
    else if (v < 0) this.neg.add(-bucketOf(-v), c);
    else this.zero += c;
  }

  /** addToBins(v, 1), unless v's key would make its store fold: then false and nothing added. */
  private addToBinsUnfolded(v: number): boolean {
    if (v === 0) {
      this.zero++;
      return true;
    }
    const store = v > 0 ? this.pos : this.neg;
    const key = binKey(v);
    if (!store.fits(key, key)) return false;
    store.add(key, 1);
    return true;
  }

  /** One walk over the buckets in value order (most negative first), answering each rank as it passes. */
  private fromBins(qs: ArrayLike<number>, out: Float64Array | number[]): void {
    const n = this.n;
    const m = qs.length;
    let i = 0;
    let r = rankOf(qs[0], n);
    let seen = 0;
    const neg = this.neg;
    for (let k = neg.lo; k <= neg.hi && i < m; k++) {
      seen += neg.bins[k - neg.offset];
      while (i < m && seen >= r) {
        out[i++] = this.clamp(-representativeFactor * Math.exp(-k * lnGamma));
        if (i < m) r = rankOf(qs[i], n);
      }
    }
    seen += this.zero;
    while (i < m && seen >= r) {
      out[i++] = this.clamp(0);
      if (i < m) r = rankOf(qs[i], n);
    }
    const pos = this.pos;
    for (let k = pos.lo; k <= pos.hi && i < m; k++) {
      seen += pos.bins[k - pos.offset];
      while (i < m && seen >= r) {
        out[i++] = this.clamp(representativeFactor * Math.exp(k * lnGamma));
        if (i < m) r = rankOf(qs[i], n);
      }
    }
    for (; i < m; i++) out[i] = this.max; // unreachable while the counts add up to n
  }

  private clamp(v: number): number {
    return v < this.min ? this.min : v > this.max ? this.max : v;
  }
}

/** The most values SlidingMerge's exact form holds: as many exact parts as quantilesOfMerge merges exactly. */
const slidingExactMax = limits.sketchMergeExactPartsMax * exactMax;

/**
 * The merge of a run of sketches that slides, such as the panes of a sliding
 * window: add() the newest, remove() the oldest, read quantiles(). A slide
 * costs two merges, not one per sketch in the run, and the answer is the one
 * QuantileSketch.quantilesOfMerge gives for the same run, bit for bit. Two
 * forms, chosen by reset():
 * - exact, for the runs quantilesOfMerge answers by its sorted merge (at most
 *   limits.sketchMergeExactPartsMax parts, all exact): the sorted union of
 *   the raw values, equal values in the order of their sketches (oldest
 *   first), which is the very array that sorted merge builds, −0 beside 0
 *   included. The oldest sketch's values lead every run of equal values, so
 *   remove() drops them in one pass; add() merges the newest in from the back.
 * - counts: every value in the bins (a sketch's own bins as they are, raw
 *   values by their key), summed and never folded. Counts are integers, so
 *   remove() is exact; and while all the keys fit in limits.sketchBinsMax
 *   buckets, merging the run in any order folds nothing either, so the bins
 *   are those of the merge. add() answers false when a key would not fit:
 *   the caller merges that run itself, and resets this before using it again.
 *   Read it only while it holds more than sketchExactMax values: a smaller
 *   merge of exact sketches stays exact in quantilesOfMerge (and is cheap).
 * Memory: at most slidingExactMax raw values (12.8 KB), or two runs of at
 * most sketchBinsMax bins, kept across reset() for reuse.
 * @example
 *   m.reset(false); m.add(p0); m.add(p1); m.add(p2); m.quantiles([0.5, 0.99], out, min, max);
 *   m.remove(p0); m.add(p3); // now the merge of p1, p2, p3
 */
export class SlidingMerge {
  private n = 0;
  private exactForm = true;
  private values = noBins;
  private readonly counts = new QuantileSketch();

  /** Values held. */
  get count(): number {
    return this.n;
  }

  /** Which form reset() chose. */
  get exact(): boolean {
    return this.exactForm;
  }

  /** Empties the run; the exact form only for exact sketches, at most sketchMergeExactPartsMax of them. */
  reset(exact: boolean): void {
    this.exactForm = exact;
    this.n = 0;
    this.counts.clear();
  }

  /** Adds the newest sketch of the run; false (counts form) when its keys would not fit unfolded. */
  add(s: QuantileSketch): boolean {
    if (!this.exactForm) {
      if (!this.counts.mergeUnfolded(s)) return false;
      this.n += s.count;
      return true;
    }
    const raw = s.sortedRaw();
    const m = s.count;
    const n = this.n;
    if (n + m > this.values.length) this.grow(n + m);
    const values = this.values;
    // From the back, so in place; on equal values the newer sketch's go last, as in mergeInto.
    let i = n - 1;
    let j = m - 1;
    for (let k = n + m - 1; j >= 0; k--) values[k] = i >= 0 && values[i] > raw[j] ? values[i--] : raw[j--];
    this.n = n + m;
    return true;
  }

  /** Removes the oldest sketch of the run (added, unchanged since). */
  remove(s: QuantileSketch): void {
    if (!this.exactForm) {
      this.counts.unmerge(s);
      this.n -= s.count;
      return;
    }
    const raw = s.sortedRaw();
    const m = s.count;
    const values = this.values;
    // Its values come first among equal ones, so the first match of each is its own.
    let j = 0;
    let w = 0;
    for (let i = 0; i < this.n; i++) {
      if (j < m && values[i] === raw[j]) j++;
      else values[w++] = values[i];
    }
    assert(j === m, "remove() a sketch of the run");
    this.n = w;
  }

  /** Quantiles of the run, for qs ascending; min and max are the run's own (the counts form clamps to them). */
  quantiles(qs: ArrayLike<number>, out: Float64Array | number[], min: number, max: number): void {
    if (!this.exactForm) {
      assert(this.n > exactMax, "the counts form answers for more than sketchExactMax values");
      return this.counts.quantilesWithin(qs, out, min, max);
    }
    for (let i = 0; i < qs.length; i++) out[i] = this.n === 0 ? NaN : this.values[rankOf(qs[i], this.n) - 1];
  }

  private grow(needed: number): void {
    assert(needed <= slidingExactMax, "the exact form holds at most sketchMergeExactPartsMax exact sketches");
    // Allocation on growth only (at least a sketch's worth more); the buffer is kept across reset().
    const values = new Float64Array(Math.min(slidingExactMax, Math.max(needed, this.values.length + exactMax)));
    values.set(this.values.subarray(0, this.n));
    this.values = values;
  }
}
