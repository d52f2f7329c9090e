import { describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { QuantileSketch, type SketchColumns, sketchCount, type SketchSnapshot } from "../src/sketch/quantile.ts";
import { limits } from "../src/runtime/limits.ts";
import { mulberry32 as prng } from "./helpers/prng.ts";


function gaussian(rnd: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

/** Exact nearest rank over sorted values: rank = ceil(q·n), 1-based; q given in thousandths to keep it integer. */
function nearestRank(sorted: number[], permille: number): number {
  const n = sorted.length;
  const r = Math.max(1, Math.floor((n * permille + 999) / 1000));
  return sorted[r - 1];
}

const permilles = [0, 1, 10, 50, 100, 250, 333, 500, 667, 750, 900, 950, 990, 999, 1000];

function relErr(a: number, e: number): number {
  return e === 0 ? Math.abs(a) : Math.abs(a - e) / Math.abs(e);
}

/** The worst relative error of the sketch over the quantile grid, against the exact nearest rank. */
function worstError(s: QuantileSketch, values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.max(...permilles.map((p) => relErr(s.quantile(p / 1000), nearestRank(sorted, p))));
}

function sketchOf(values: number[]): QuantileSketch {
  const s = new QuantileSketch();
  for (const v of values) s.add(v);
  return s;
}

const distributions: Record<string, (rnd: () => number) => number> = {
  uniform: (rnd) => rnd() * 1000,
  lognormal: (rnd) => Math.exp(3 + 1.5 * gaussian(rnd)),
  negative: (rnd) => -Math.exp(2 * gaussian(rnd)),
  zeros: (rnd) => (rnd() < 0.4 ? 0 : rnd() * 10),
  mixed: (rnd) => {
    const u = rnd();
    return u < 0.1 ? 0 : u < 0.4 ? -rnd() * 50 : u < 0.9 ? 20 + 5 * gaussian(rnd) : Math.exp(10 * rnd());
  },
  "normal across zero": (rnd) => 20 + 10 * gaussian(rnd),
};

function draw(name: string, n: number, seed: number): number[] {
  const rnd = prng(seed);
  return Array.from({ length: n }, () => distributions[name](rnd));
}

describe("sketch", () => {
  test("sketch - exact nearest rank up to sketchExactMax values", () => {
    const rnd = prng(11);
    for (let n = 1; n <= limits.sketchExactMax; n++) {
      const values = Array.from({ length: n }, () => Math.round(rnd() * 200 - 100) / 4); // with duplicates
      const s = sketchOf(values);
      const sorted = [...values].sort((a, b) => a - b);
      for (const p of permilles) expect(s.quantile(p / 1000)).toBe(nearestRank(sorted, p));
      expect(s.quantile(0.95)).toBe(sorted[Math.ceil((95 * n) / 100) - 1]);
      expect(s.count).toBe(n);
    }
  });

  test("sketch - q·n a hair above an integer still gives rank ceil(q·n)", () => {
    const s = sketchOf(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(0.07 * 100).toBeGreaterThan(7); // 7.000000000000001 in binary floating point
    expect(s.quantile(0.07)).toBe(7);
    expect(s.quantile(0.29)).toBe(29);
  });

  for (const name of Object.keys(distributions)) {
    test(`sketch - ${name} values within 1 % of the exact nearest rank`, () => {
      for (const [n, seed] of [[101, 1], [1_000, 2], [100_000, 3]]) {
        const values = draw(name, n, seed);
        expect(worstError(sketchOf(values), values)).toBeLessThanOrEqual(0.01);
      }
    });
  }

  test("sketch - merge equals adding everything, within 1 %", () => {
    for (const name of Object.keys(distributions)) {
      const values = draw(name, 20_000, 7);
      // Parts of every size: exact ones (≤ 100), ones past it, and merges of merges.
      const cuts = [0, 3, 60, 100, 250, 1_000, 1_050, 9_000, 20_000];
      const parts = cuts.slice(1).map((end, i) => sketchOf(values.slice(cuts[i], end)));
      const merged = new QuantileSketch();
      const inner = new QuantileSketch();
      parts.forEach((p, i) => (i % 2 ? inner : merged).merge(p));
      merged.merge(inner);
      const whole = sketchOf(values);
      expect(merged.count).toBe(values.length);
      expect(worstError(merged, values)).toBeLessThanOrEqual(0.01);
      for (const p of permilles) expect(relErr(merged.quantile(p / 1000), whole.quantile(p / 1000))).toBeLessThanOrEqual(0.01);
      expect(parts[0].count).toBe(3); // merge leaves its argument alone
    }
  });

  test("sketch - a merge whose total stays within sketchExactMax stays exact", () => {
    const values = draw("lognormal", limits.sketchExactMax, 5);
    const a = sketchOf(values.slice(0, 40));
    a.merge(sketchOf(values.slice(40)));
    const sorted = [...values].sort((x, y) => x - y);
    for (const p of permilles) expect(a.quantile(p / 1000)).toBe(nearestRank(sorted, p));
    expect(a.snapshot().raw).not.toBeNull();
    a.add(1);
    expect(a.snapshot().raw).toBeNull();
    const b = sketchOf(values.slice(0, 60));
    b.merge(sketchOf(values.slice(0, 41))); // 101: past the bound, so into the buckets
    expect(b.snapshot().raw).toBeNull();
  });

  test("sketch - snapshot → MessagePack → restore answers and continues identically", () => {
    for (const n of [0, 7, limits.sketchExactMax, 5_000]) {
      const values = draw("mixed", n, 13);
      const s = sketchOf(values);
      const unsorted = QuantileSketch.restore(decode(encode(s.snapshot())) as SketchSnapshot); // before s sorts its raw values
      for (const p of permilles) expect(unsorted.quantile(p / 1000)).toBe(s.quantile(p / 1000));
      s.add(values[0] ?? 1);
      values.push(values[0] ?? 1);
      const copy = QuantileSketch.restore(decode(encode(s.snapshot())) as SketchSnapshot);
      expect(copy.count).toBe(n + 1);
      for (const p of permilles) expect(copy.quantile(p / 1000)).toBe(s.quantile(p / 1000));
      const more = draw("mixed", 300, 14);
      for (const v of more) {
        s.add(v);
        copy.add(v);
      }
      for (const p of permilles) expect(copy.quantile(p / 1000)).toBe(s.quantile(p / 1000));
      const merged = new QuantileSketch();
      merged.merge(copy);
      expect(worstError(merged, [...values, ...more])).toBeLessThanOrEqual(0.01);
    }
  });

  test("sketch - empty gives NaN; clear empties and the sketch is reusable", () => {
    const s = new QuantileSketch();
    expect(s.quantile(0.5)).toBeNaN();
    expect(s.count).toBe(0);
    for (const v of draw("mixed", 5_000, 21)) s.add(v);
    s.clear();
    expect(s.quantile(0.99)).toBeNaN();
    const values = draw("mixed", 2_000, 22);
    for (const v of values) s.add(v);
    expect(worstError(s, values)).toBeLessThanOrEqual(0.01);
    const out = new Float64Array(3);
    new QuantileSketch().quantiles([0.5, 0.95, 0.99], out);
    expect([...out].every(Number.isNaN)).toBe(true);
  });

  test("sketch - quantiles() in one pass equals quantile() one by one", () => {
    const values = draw("mixed", 10_000, 31);
    const s = sketchOf(values);
    const qs = permilles.map((p) => p / 1000);
    const out = new Float64Array(qs.length);
    s.quantiles(qs, out);
    expect([...out]).toEqual(qs.map((q) => s.quantile(q)));
  });

  test("sketch - quantilesOfMerge: exact over exact parts, within 1 % otherwise, parts unchanged", () => {
    const qs = permilles.map((p) => p / 1000);
    const out = new Float64Array(qs.length);
    const scratch = new QuantileSketch();
    for (const sizes of [[7], [60, 1, 40], [100, 100, 100, 100, 100, 100], [30, 250, 5]]) {
      const values = draw("mixed", sizes.reduce((a, b) => a + b, 0), sizes.length);
      let at = 0;
      const parts = sizes.map((n) => sketchOf(values.slice(at, (at += n))));
      QuantileSketch.quantilesOfMerge(parts, parts.length, qs, out, scratch);
      const sorted = [...values].sort((a, b) => a - b);
      const allExact = sizes.every((n) => n <= limits.sketchExactMax);
      permilles.forEach((p, i) => {
        if (allExact) expect(out[i]).toBe(nearestRank(sorted, p));
        else expect(relErr(out[i], nearestRank(sorted, p))).toBeLessThanOrEqual(0.01);
      });
      expect(parts.map((s) => s.count)).toEqual(sizes);
    }
  });

  test("sketch - past sketchBinsMax buckets only the lowest quantiles degrade, in any order", () => {
    // 1e-12 … 1e12 spans about 5,500 buckets at 0.5 %; the top 2,048 reach down to about e^7 ≈ 1,300, below which all fold.
    const rnd = prng(41);
    const values = Array.from({ length: 50_000 }, () => 10 ** (24 * rnd() - 12));
    const up = sketchOf([...values].sort((a, b) => a - b));
    const down = sketchOf([...values].sort((a, b) => b - a));
    const sorted = [...values].sort((a, b) => a - b);
    for (const p of [700, 750, 900, 990, 1000]) {
      expect(relErr(up.quantile(p / 1000), nearestRank(sorted, p))).toBeLessThanOrEqual(0.01);
    }
    for (const p of [10, 500]) expect(relErr(up.quantile(p / 1000), nearestRank(sorted, p))).toBeGreaterThan(0.01);
    for (const p of permilles) expect(down.quantile(p / 1000)).toBe(up.quantile(p / 1000));
    expect(up.snapshot().pos!.bins.length).toBeLessThanOrEqual(limits.sketchBinsMax);
    // Merging collapsed parts folds the same way: the result is that of adding everything.
    const merged = new QuantileSketch();
    for (let i = 0; i < values.length; i += 7_000) {
      const part = sketchOf(values.slice(i, i + 7_000).map((v, k) => (k % 2 ? v : v * 1e6)));
      merged.merge(part);
    }
    const whole = sketchOf(values.map((v, k) => (k % 2 ? v : v * 1e6)));
    for (const p of permilles) expect(merged.quantile(p / 1000)).toBe(whole.quantile(p / 1000));
  });

  test("sketch - many sketches as two columns: exact, binned on both sides of zero, empty; the same answers after MessagePack; malformed columns throw", () => {
    const rnd = prng(7);
    const sketches: QuantileSketch[] = [];
    for (const n of [0, 1, 5, 100, 101, 5000]) {
      for (const spread of [1, 1e6]) {
        const s = new QuantileSketch();
        for (let i = 0; i < n; i++) s.add((rnd() - 0.3) * spread * (i % 7 === 0 ? 0 : 1));
        sketches.push(s);
      }
    }
    const back = QuantileSketch.fromColumns(decode(encode(QuantileSketch.columnsOf(sketches))) as SketchColumns);
    const qs = [0, 0.01, 0.5, 0.95, 0.99, 1];
    expect(back.map((s) => [s.count, ...qs.map((q) => s.quantile(q))])).toEqual(sketches.map((s) => [s.count, ...qs.map((q) => s.quantile(q))]));
    expect(back.map((s) => s.snapshot())).toEqual(sketches.map((s) => s.snapshot()));
    expect(sketchCount(QuantileSketch.columnsOf(sketches))).toBe(sketches.length);
    const c = QuantileSketch.columnsOf(sketches);
    expect(() => QuantileSketch.fromColumns({ head: c.head, values: (c.values as Float64Array).subarray(1) })).toThrow(/QuantileSketch: malformed/);
    expect(() => QuantileSketch.fromColumns({ head: (c.head as Float64Array).subarray(1), values: c.values })).toThrow(/QuantileSketch: malformed/);
  });
});
