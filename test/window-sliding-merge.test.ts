/**
 * SlidingMerge (src/sketch/quantile.ts), the quantile side of sliding
 * windows, against QuantileSketch.quantilesOfMerge over the same run of
 * sketches: identical answers (Object.is) at every slide, in both forms.
 */
import { describe, expect, test } from "bun:test";
import { limits } from "../src/runtime/limits.ts";
import { QuantileSketch, SlidingMerge } from "../src/sketch/quantile.ts";
import { mulberry32 } from "./helpers/prng.ts";

const qs = [0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1];

function gaussian(rnd: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

const kinds: Array<(rnd: () => number) => number> = [
  (rnd) => Math.round(rnd() * 20 - 10), // duplicates and −0
  (rnd) => Math.exp(3 + 1.5 * gaussian(rnd)),
  (rnd) => 20 + 10 * gaussian(rnd),
  (rnd) => (rnd() < 0.5 ? -0 : 0),
  (rnd) => (rnd() < 0.5 ? -1 : 1) * Math.exp(50 * rnd() - 25), // more than sketchBinsMax buckets apart
];

/** The values each sketch was built from, for rangeOf. */
const valuesOf = new WeakMap<QuantileSketch, number[]>();

function sketchOf(values: number[]): QuantileSketch {
  const s = new QuantileSketch();
  for (const v of values) s.add(v);
  valuesOf.set(s, values);
  return s;
}

/** The answer the window actor gave before runs: every part merged. */
function mergedQuantiles(parts: QuantileSketch[]): Float64Array {
  const out = new Float64Array(qs.length);
  QuantileSketch.quantilesOfMerge(parts, parts.length, qs, out, new QuantileSketch());
  return out;
}

/** The run's min and max, folded in order as the sketches (and the window's panes) fold them. */
function rangeOf(parts: QuantileSketch[]): [number, number] {
  let [min, max] = [Infinity, -Infinity];
  for (const v of parts.flatMap((p) => valuesOf.get(p)!)) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

describe("window-sliding merge", () => {
  test("window-sliding - SlidingMerge answers as quantilesOfMerge over the same run, at every slide, in both forms", () => {
    let [exactSlides, countSlides, refused] = [0, 0, 0];
    for (let seed = 1; seed <= 60; seed++) {
      const rnd = mulberry32(seed);
      const width = 2 + Math.floor(rnd() * 24); // runs longer than sketchMergeExactPartsMax too
      const sizeMax = [8, 40, 100, 300][seed % 4]; // exact parts, or binned ones
      const kind = kinds[Math.floor(rnd() * kinds.length)];
      const parts = Array.from({ length: 60 }, () => sketchOf(Array.from({ length: 1 + Math.floor(rnd() * sizeMax) }, () => kind(rnd))));
      const m = new SlidingMerge();
      let from = 0;
      let live = false;
      for (let to = 1; to <= parts.length; to++) {
        const run = parts.slice(Math.max(0, to - width), to);
        const exact = run.length <= limits.sketchMergeExactPartsMax && run.every((p) => p.isExact);
        if (!live || m.exact !== exact) {
          m.reset(exact);
          from = to - run.length;
          live = run.every((p) => m.add(p));
        } else {
          for (; from < to - run.length; from++) m.remove(parts[from]);
          live = m.add(parts[to - 1]);
        }
        if (!live) {
          expect(exact).toBe(false); // only the counts form refuses
          refused++;
          continue;
        }
        expect(m.count).toBe(run.reduce((n, p) => n + p.count, 0));
        // Up to sketchExactMax values quantilesOfMerge stays exact; the window actor merges those itself.
        if (!exact && m.count <= limits.sketchExactMax) continue;
        const got = new Float64Array(qs.length);
        const [min, max] = rangeOf(run);
        m.quantiles(qs, got, min, max);
        const want = mergedQuantiles(run);
        expect([...got].map((v, i) => Object.is(v, want[i]))).toEqual(qs.map(() => true));
        if (exact) exactSlides++;
        else countSlides++;
      }
    }
    expect(exactSlides).toBeGreaterThan(100);
    expect(countSlides).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(0);
  });

  test("window-sliding - the exact form puts −0 and 0 where the sorted merge does, after removals too", () => {
    const parts = [[0, -0, 1], [-0, 0, -0], [0, 0, -1], [-0, -0, 0], [0, -0, -0]].map(sketchOf);
    const every = Array.from({ length: 12 }, (_, k) => (k + 1) / 12);
    const m = new SlidingMerge();
    m.reset(true);
    parts.slice(0, 4).forEach((p) => m.add(p));
    m.remove(parts[0]);
    m.add(parts[4]); // holds parts 1..4: twelve values, ten of them ±0
    const got = new Float64Array(every.length);
    m.quantiles(every, got, -1, 0);
    const want = new Float64Array(every.length);
    QuantileSketch.quantilesOfMerge(parts.slice(1), 4, every, want, new QuantileSketch());
    expect([...got].map((v) => Object.is(v, -0))).toEqual([...want].map((v) => Object.is(v, -0)));
    expect([...got]).toEqual([...want]);
  });

  test("window-sliding - mergeUnfolded refuses keys that would fold; unmerge takes a merge back exactly", () => {
    const ones = sketchOf(Array.from({ length: 300 }, (_, i) => 1 + i)); // binned, buckets 0..~1,140
    const other = sketchOf(Array.from({ length: 150 }, (_, i) => (i % 2 === 0 ? -i : 1000 + i))); // binned, both signs and −0
    const acc = new QuantileSketch();
    expect(acc.mergeUnfolded(ones)).toBe(true);
    const before = new Float64Array(qs.length);
    acc.quantilesWithin(qs, before, 1, 300);
    expect(acc.mergeUnfolded(other)).toBe(true);
    acc.unmerge(other);
    const after = new Float64Array(qs.length);
    acc.quantilesWithin(qs, after, 1, 300);
    expect(acc.count).toBe(300);
    expect([...after]).toEqual([...before]);

    // 1e-12 lies ~5,500 buckets under 1: merged, it would fold.
    expect(acc.mergeUnfolded(sketchOf([1e-12]))).toBe(false);
    const foldedAlone = sketchOf([1e-12, ...Array.from({ length: 200 }, () => 2)]); // folded into its own 2,048 buckets
    expect(new QuantileSketch().mergeUnfolded(foldedAlone)).toBe(true);
    const fresh = new QuantileSketch();
    expect(fresh.mergeUnfolded(ones)).toBe(true);
    expect(fresh.mergeUnfolded(foldedAlone)).toBe(false);
  });
});
