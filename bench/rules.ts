/**
 * Rule evaluation cost: RuleSet.evaluate() over the closed 10 s windows of
 * 1,000 series (one window per series per round, as the window actor emits
 * them), with 0, 100 and 1,000 rule instances. Each series' average sits
 * near 100 and for 3 minutes in every 10 near 140, so instances go pending,
 * fire and resolve (the transitions are counted and printed).
 * Filling the window results is not timed; only the loop over them is.
 *
 * The baseline, in the same run over the same results (interleaved round by
 * round): the same loop with no rules, reading each result's average. The
 * ratio says what the routing, the state machines and the transitions cost
 * on top of handing a result to a loop. Configurations:
 *
 *   0 instances          a RuleSet holding no rules (the cost of the call and the per-series lookup)
 *   0 instances, 1 rule  a rule whose selector matches no series
 *   100 instances        avg(bench.latency{grp="0"}) > 130 for 30s, keep_firing_for 20s (read from the 10 s window)
 *   1,000 instances      the same over every series
 *   1,000, over 5m       avg(bench.latency) over 5m > 120 for 30s: each instance folds its 30 last windows
 *
 * Prints figures; asserts nothing on time.
 *
 * @example bun bench/rules.ts
 *          RULES_BENCH_ROUNDS=500 bun bench/rules.ts
 */
import { RuleSet, type SeriesRef } from "../src/actors/rules/rule-set.ts";
import { parseRule } from "../src/actors/rules/rule.ts";
import type { WindowResult } from "../src/actors/window.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import { seriesKey } from "../src/runtime/series.ts";
import { createPrng } from "../src/sim/prng.ts";

const seriesCount = 1000;
const roundsDefault = 3000;
const warmupRounds = 100;
const t0 = Date.UTC(2025, 10, 22, 8, 0, 0);
const windowMs = 10_000;
const windows = { specs: parseWindowSpecs("10s,60s/10s") };

interface Config { name: string; rules: Array<Record<string, unknown>> }
const configs: Config[] = [
  { name: "0 instances", rules: [] },
  { name: "0 instances, 1 rule", rules: [{ name: "none", expr: "avg(other.metric) > 130" }] },
  { name: "100 instances", rules: [{ name: "hot", expr: 'avg(bench.latency{grp="0"}) > 130', for: "30s", keep_firing_for: "20s", advice: "{{series}} at {{value}}" }] },
  { name: "1,000 instances", rules: [{ name: "hot", expr: "avg(bench.latency) > 130", for: "30s", keep_firing_for: "20s", advice: "{{series}} at {{value}}" }] },
  { name: "1,000, over 5m", rules: [{ name: "hot", expr: "avg(bench.latency) over 5m > 120", for: "30s", advice: "{{series}} at {{value}}" }] },
];

export interface RulesBenchRow { name: string; nsPerEvaluation: number; ratio: number; instances: number; transitions: number }

/**
 * Runs every configuration and the baseline over the same rounds of window results.
 * @example const rows = benchRules({ rounds: 1000 });
 */
export function benchRules(opts: { rounds?: number } = {}): { baselineNs: number; rows: RulesBenchRow[] } {
  const rounds = opts.rounds ?? roundsDefault;
  const series: SeriesRef[] = Array.from({ length: seriesCount }, (_, i) => {
    const tags = { host: `h${String(i).padStart(3, "0")}`, grp: String(i % 10) };
    return { key: seriesKey("bench.latency", tags), name: "bench.latency", tags };
  });
  const results: WindowResult[] = series.map((_, sid) => ({
    kind: "window", sid, spec: "10s", start: 0, end: 0, count: 0, sum: 0, min: 0, max: 0, avg: 0, p50: 0, p95: 0, p99: 0, first: 0, last: 0,
  }));
  const sets = configs.map((c) => {
    const set = new RuleSet({ windows });
    for (const r of c.rules) set.set(parseRule(r, { windows }));
    return set;
  });
  const ms = new Float64Array(configs.length);
  const transitions = new Float64Array(configs.length);
  let baselineMs = 0;
  let sink = 0;
  const rng = createPrng(11);
  for (let round = 0; round < rounds + warmupRounds; round++) {
    fill(results, round, rng);
    const timed = round >= warmupRounds;
    const b0 = performance.now();
    for (let i = 0; i < seriesCount; i++) sink += results[i].avg;
    if (timed) baselineMs += performance.now() - b0;
    for (let c = 0; c < sets.length; c++) {
      const set = sets[c];
      const emit = () => {
        transitions[c]++;
      };
      const t1 = performance.now();
      for (let i = 0; i < seriesCount; i++) set.evaluate(results[i], series[i], emit);
      if (timed) ms[c] += performance.now() - t1;
    }
  }
  if (Number.isNaN(sink)) throw new Error("baseline sum is NaN"); // keeps the baseline loop's result alive
  const evaluations = rounds * seriesCount;
  const baselineNs = (baselineMs * 1e6) / evaluations;
  const rows = configs.map((c, i) => {
    const ns = (ms[i] * 1e6) / evaluations;
    return { name: c.name, nsPerEvaluation: ns, ratio: ns / baselineNs, instances: sets[i].stats().instances, transitions: transitions[i] };
  });
  return { baselineNs, rows };
}

/** Round r's closed window of every series: mean near 100, and for 3 minutes in every 10 (staggered by series) near 140. */
function fill(results: WindowResult[], round: number, rng: { next(): number }): void {
  const end = t0 + (round + 1) * windowMs;
  for (let sid = 0; sid < results.length; sid++) {
    const w = results[sid];
    const hot = (round + sid * 7) % 60 < 18;
    const count = 5 + Math.floor(rng.next() * 10);
    const avg = (hot ? 140 : 100) + (rng.next() - 0.5) * 20;
    w.start = end - windowMs;
    w.end = end;
    w.count = count;
    w.sum = avg * count;
    w.avg = avg;
    w.min = avg - 10;
    w.max = avg + 10;
    w.p50 = w.p95 = w.p99 = w.first = w.last = avg;
  }
}

if (import.meta.main) {
  const rounds = Number(process.env.RULES_BENCH_ROUNDS ?? roundsDefault);
  const { baselineNs, rows } = benchRules({ rounds });
  console.log(`rules: ${rounds} rounds × ${seriesCount} series of closed 10 s windows, one evaluate() per window`);
  console.log(`${"baseline (no rules)".padEnd(22)} ${baselineNs.toFixed(1).padStart(7)} ns/evaluation`);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(22)} ${r.nsPerEvaluation.toFixed(1).padStart(7)} ns/evaluation  ${r.ratio.toFixed(1).padStart(6)}× baseline  ` +
        `${String(r.instances).padStart(5)} instances  ${r.transitions} transitions`,
    );
  }
}
