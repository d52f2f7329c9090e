/**
 * Sliding windows answered from pane runs (src/actors/window.ts, slideTo)
 * against a naive merge of all the panes inside each window, as the actor
 * did before runs: count, sum, min and max folded in pane order, the
 * quantiles from QuantileSketch.quantilesOfMerge over the panes' sketches.
 * Every field must be identical (Object.is: −0 is not 0), over seeded streams
 * with late and out-of-order events, gaps, values that make panes exact or
 * binned, −0 beside 0, and ranges too wide for one run of bins; each stream
 * also runs in whole batches and through snapshot → MessagePack → restore.
 */
import { describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { createWindowLogic, type EventBatch, type WindowOutput, type WindowResult, type WindowState } from "../src/actors/window.ts";
import { paneMsOf, parseWindowSpecs } from "../src/actors/window-spec.ts";
import { limits } from "../src/runtime/limits.ts";
import { QuantileSketch } from "../src/sketch/quantile.ts";
import { mulberry32 } from "./helpers/prng.ts";

type Event = [sid: number, ts: number, value: number];
type Step = { batch: Event[]; recvMs: number } | { tick: number };

const t0 = 1_700_000_000_000;
const percentileQs = [0.5, 0.95, 0.99];
const valueKinds = ["ints", "lognormal", "normal", "wide", "zeros"] as const;
type ValueKind = (typeof valueKinds)[number];

function gaussian(rnd: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

function valueOf(kind: ValueKind, rnd: () => number): number {
  switch (kind) {
    case "ints": return Math.round(rnd() * 20 - 10); // duplicates; Math.round(−0.3) is −0
    case "lognormal": return Math.exp(3 + 1.5 * gaussian(rnd));
    case "normal": return Math.round((20 + 10 * gaussian(rnd)) * 100) / 100; // crosses zero
    case "wide": return (rnd() < 0.5 ? -1 : 1) * Math.exp(60 * rnd() - 30); // wider than sketchBinsMax buckets
    case "zeros": return rnd() < 0.5 ? (rnd() < 0.5 ? -0 : 0) : Math.round(rnd() * 6 - 3);
  }
}

/**
 * A seeded stream: each series goes through phases of a rate (1 to 400 events
 * per 10 s, so panes hold a few values, up to sketchExactMax, or more) and a
 * value kind, sometimes with a gap; events arrive jittered, a tenth of them by
 * more than the lateness (late or out of order), in batches of 1 to 60, with
 * quiet ticks between, and a last tick that closes everything.
 */
function streamOf(seed: number, latenessMs: number): Step[] {
  const rnd = mulberry32(seed);
  const arrivals: Array<{ e: Event; at: number }> = [];
  for (let sid = 0; sid < 3; sid++) {
    let t = t0 + Math.floor(rnd() * 20_000);
    for (let phase = 0; phase < 8; phase++) {
      const per10s = [1, 8, 30, 90, 140, 400][Math.floor(rnd() * 6)];
      const kind = valueKinds[Math.floor(rnd() * valueKinds.length)];
      const end = t + 20_000 + Math.floor(rnd() * 70_000);
      for (; t < end; t += (10_000 / per10s) * (0.5 + rnd())) {
        const ts = Math.floor(t);
        const jitter = rnd() < 0.1 ? Math.floor(rnd() * (latenessMs + 4000)) : Math.floor(rnd() * (latenessMs + 1) * 0.8);
        arrivals.push({ e: [sid, ts, valueOf(kind, rnd)], at: ts + jitter });
      }
      if (rnd() < 0.3) t += 30_000 + Math.floor(rnd() * 400_000);
    }
  }
  arrivals.sort((a, b) => a.at - b.at || a.e[0] - b.e[0]);
  const steps: Step[] = [];
  for (let i = 0; i < arrivals.length; ) {
    const batch = arrivals.slice(i, i + 1 + Math.floor(rnd() * 60));
    i += batch.length;
    const recvMs = batch[batch.length - 1].at;
    steps.push({ batch: batch.map((a) => a.e), recvMs });
    if (rnd() < 0.1) steps.push({ tick: recvMs + Math.floor(rnd() * 5000) });
  }
  steps.push({ tick: t0 + 1e10 });
  return steps;
}

function toBatch(events: Event[], recvMs: number): EventBatch {
  return {
    n: events.length, recvMs,
    sid: Uint32Array.from(events, (e) => e[0]), ts: Float64Array.from(events, (e) => e[1]), value: Float64Array.from(events, (e) => e[2]),
  };
}

/** One pane of the model: the pane rules restated (first / last by ts, ties by arrival). */
class ModelPane {
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  first = 0;
  firstTs = Infinity;
  last = 0;
  lastTs = -Infinity;
  /** The smallest and largest |v| of each sign, for the bucket span (pathOf). */
  readonly pos = [Infinity, 0];
  readonly neg = [Infinity, 0];
  readonly sketch = new QuantileSketch();

  add(ts: number, v: number): void {
    const side = v > 0 ? this.pos : v < 0 ? this.neg : null;
    if (side !== null) [side[0], side[1]] = [Math.min(side[0], Math.abs(v)), Math.max(side[1], Math.abs(v))];
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (ts < this.firstTs) [this.firstTs, this.first] = [ts, v];
    if (ts >= this.lastTs) [this.lastTs, this.last] = [ts, v];
    this.sketch.add(v);
  }
}

/** What a window should be: the naive merge of every model pane inside it. */
function naiveWindow(panes: Map<number, ModelPane>, w: WindowResult): WindowResult {
  const inside = [...panes.entries()].filter(([start]) => start >= w.start && start < w.end).sort(([a], [b]) => a - b).map(([, p]) => p);
  let [count, sum, min, max] = [0, 0, Infinity, -Infinity];
  for (const p of inside) {
    count += p.count;
    sum += p.sum;
    if (p.min < min) min = p.min;
    if (p.max > max) max = p.max;
  }
  const q = new Float64Array(3);
  QuantileSketch.quantilesOfMerge(inside.map((p) => p.sketch), inside.length, percentileQs, q, new QuantileSketch());
  return {
    kind: "window", sid: w.sid, spec: w.spec, start: w.start, end: w.end, count, sum, min, max, avg: sum / count,
    p50: q[0], p95: q[1], p99: q[2], first: inside[0].first, last: inside[inside.length - 1].last,
  };
}

const gamma = (1 + limits.sketchRelativeAccuracy) / (1 - limits.sketchRelativeAccuracy);
/** Buckets between the smallest and largest |v| of one sign (0 when there are none). */
const bucketSpan = ([lo, hi]: number[]) => (hi === 0 ? 0 : Math.ceil(Math.log(hi) / Math.log(gamma)) - Math.ceil(Math.log(lo) / Math.log(gamma)));

/**
 * The kind of window, for coverage: "direct" (one pane, or few values: merged
 * as before), "exact" (a run's sorted union), "counts" (a run's bins), "wide"
 * (values of one sign over more than sketchBinsMax buckets: the merge folds,
 * so the run gives way to the direct merge, unless a pane folded alone already).
 */
function pathOf(panes: Map<number, ModelPane>, w: WindowResult): "direct" | "exact" | "counts" | "wide" {
  const inside = [...panes.entries()].filter(([start]) => start >= w.start && start < w.end).map(([, p]) => p);
  if (inside.length === 1 || w.count <= limits.sketchExactMax) return "direct";
  if (inside.length <= limits.sketchMergeExactPartsMax && inside.every((p) => p.sketch.isExact)) return "exact";
  const joined = (side: "pos" | "neg") => [Math.min(...inside.map((p) => p[side][0])), Math.max(...inside.map((p) => p[side][1]))];
  return Math.max(bucketSpan(joined("pos")), bucketSpan(joined("neg"))) >= limits.sketchBinsMax ? "wide" : "counts";
}

/**
 * Runs the actor one event at a time (so each late event is known) beside
 * the model, and checks every window it emits against the naive merge.
 */
function checkAgainstNaive(specs: string, latenessMs: number, steps: Step[]) {
  const logic = createWindowLogic({ specs: parseWindowSpecs(specs), latenessMs, seriesMax: 4 });
  const st = logic.init();
  const paneMs = paneMsOf(parseWindowSpecs(specs));
  const model = new Map<number, Map<number, ModelPane>>();
  const out: WindowOutput[] = [];
  const problems: string[] = [];
  const paths = { direct: 0, exact: 0, counts: 0, wide: 0 };
  const check = (o: WindowOutput) => {
    out.push(o);
    if (o.kind !== "window") return;
    const panes = model.get(o.sid)!;
    const want = naiveWindow(panes, o);
    paths[pathOf(panes, o)]++;
    for (const f of Object.keys(want) as Array<keyof WindowResult>) {
      if (!Object.is(o[f], want[f])) problems.push(`${specs} ${o.spec} [${o.start}, ${o.end}) sid ${o.sid}: ${f} ${o[f]}, naive ${want[f]}`);
    }
  };
  for (const step of steps) {
    if ("tick" in step) {
      logic.tick(st, step.tick, check);
      continue;
    }
    for (const e of step.batch) {
      let late = false;
      logic.handle(st, toBatch([e], step.recvMs), (o) => {
        if (o.kind === "late") late = true;
        check(o);
      });
      if (late) continue;
      const [sid, ts, v] = e;
      const panes = model.get(sid) ?? model.set(sid, new Map()).get(sid)!;
      const start = Math.floor(ts / paneMs) * paneMs;
      const p = panes.get(start) ?? panes.set(start, new ModelPane()).get(start)!;
      p.add(ts, v);
    }
  }
  return { out, problems, paths, state: st };
}

/** The same stream in whole batches, through snapshot → MessagePack → restore before every `restoreEvery`-th step (0: never). */
function runBatches(specs: string, latenessMs: number, steps: Step[], restoreEvery: number): WindowOutput[] {
  const logic = createWindowLogic({ specs: parseWindowSpecs(specs), latenessMs, seriesMax: 4 });
  let st = logic.init();
  const out: WindowOutput[] = [];
  steps.forEach((step, i) => {
    if (restoreEvery > 0 && i % restoreEvery === 0) st = logic.restore(decode(encode(logic.snapshot(st))));
    if ("tick" in step) logic.tick(st, step.tick, (o) => out.push(o));
    else logic.handle(st, toBatch(step.batch, step.recvMs), (o) => out.push(o));
  });
  return out;
}

/** Field-by-field Object.is over two output lists (toEqual would not tell −0 from 0 everywhere); the mismatches as lines. */
function differences(a: WindowOutput[], b: WindowOutput[]): string[] {
  if (a.length !== b.length) return [`${a.length} outputs against ${b.length}`];
  const problems: string[] = [];
  a.forEach((x, k) => {
    const y = b[k] as unknown as Record<string, unknown>;
    for (const [f, v] of Object.entries(x)) if (!Object.is(v, y[f])) problems.push(`#${k} ${f}: ${String(v)} against ${String(y[f])}`);
  });
  return problems;
}

const cases: Array<[specs: string, latenessMs: number]> = [
  ["10s,60s/10s", 0], ["10s,60s/10s", 2000], ["1m/10s,5m/1m", 0], ["1m/10s,5m/1m", 2000], ["30s/10s,20s/5s,10s", 2000],
];
const seedsPerCase = 12;

describe("window-sliding", () => {
  for (const [specs, latenessMs] of cases) {
    test(`window-sliding - ${specs}, lateness ${latenessMs} ms: every window equals the naive merge of its panes, ${seedsPerCase} seeds`, () => {
      const paths = { direct: 0, exact: 0, counts: 0, wide: 0 };
      let late = 0;
      for (let seed = 1; seed <= seedsPerCase; seed++) {
        const steps = streamOf(seed * 7919 + latenessMs, latenessMs);
        const r = checkAgainstNaive(specs, latenessMs, steps);
        expect({ seed, problems: r.problems.slice(0, 5) }).toEqual({ seed, problems: [] });
        for (const k of Object.keys(paths) as Array<keyof typeof paths>) paths[k] += r.paths[k];
        late += r.out.filter((o) => o.kind === "late").length;
        // Batching and restores change nothing: the runs are rebuilt from the panes.
        expect(differences(runBatches(specs, latenessMs, steps, 0), r.out)).toEqual([]);
        expect(differences(runBatches(specs, latenessMs, steps, 7), r.out)).toEqual([]);
      }
      // Each path was taken, and events came late.
      expect(Object.values(paths).every((n) => n > 0)).toBe(true);
      expect(late).toBeGreaterThan(0);
    });
  }

  test("window-sliding - runs go back to the pool once their panes are dropped; the pool holds no more than the peak", () => {
    const steps = streamOf(5, 2000);
    const { state } = checkAgainstNaive("10s,60s/10s", 2000, steps);
    const inUse = (st: WindowState) => st.series.reduce((n, s) => n + (s?.runs?.filter((r) => r !== null).length ?? 0), 0);
    expect(inUse(state)).toBe(0); // the last tick closed everything
    expect(state.freeRuns.length).toBeGreaterThan(0);
    expect(state.freeRuns.length).toBeLessThanOrEqual(state.seriesCount); // one sliding spec: at most one run per series
  });

  test("window-sliding - a snapshot carries no run: the same with runs built or not", () => {
    const logic = createWindowLogic({ specs: parseWindowSpecs("10s,60s/10s"), latenessMs: 2000, seriesMax: 4 });
    const steps = streamOf(9, 2000);
    const a = logic.init();
    steps.slice(0, 400).forEach((step) => {
      if ("tick" in step) logic.tick(a, step.tick, () => {});
      else logic.handle(a, toBatch(step.batch, step.recvMs), () => {});
    });
    expect(a.series.some((s) => s?.runs?.some((r) => r !== null))).toBe(true);
    const b = logic.restore(decode(encode(logic.snapshot(a))));
    expect(b.series.some((s) => s?.runs?.some((r) => r !== null))).toBe(false);
    expect(encode(logic.snapshot(b))).toEqual(encode(logic.snapshot(a)));
  });
});
