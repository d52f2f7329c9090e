/**
 * The back-test's pure part (src/actors/rules/backtest.ts): which windows it
 * reads, and the transitions it makes over them, against an independent
 * reference (helpers/rule-reference.ts) over seeded random histories with
 * gaps, regime changes, `for` and keep_firing_for.
 */
import { describe, expect, test } from "bun:test";
import { backtest, type BacktestWindows, planBacktest } from "../src/actors/rules/backtest.ts";
import { parseExpr, RuleError } from "../src/actors/rules/expr.ts";
import { parseRule } from "../src/actors/rules/rule.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import { mulberry32 } from "./helpers/prng.ts";
import { recountWindow } from "./helpers/recount.ts";
import { type RefRule, type RefSeries, type RefWindow, referenceTransitions } from "./helpers/rule-reference.ts";

const seed = Number(process.env.BACKTEST_SEED ?? 1505);
console.log(`back-test tests: seed ${seed} (BACKTEST_SEED=… to change)`);

const day = 86_400_000;
const t0 = 1_763_798_400_000; // a whole hour (and day)
const windows: BacktestWindows = {
  specs: parseWindowSpecs("10s,60s/10s"),
  rollups: [{ label: "1m", sizeMs: 60_000 }, { label: "1h", sizeMs: 3_600_000 }],
  keptMs: { "10s": 2 * day, "60s/10s": 2 * day, "1m": 30 * day, "1h": 400 * day },
};

/** A rule form, and how the reference reads it (stated here, not taken from plan.ts). */
interface Template {
  expr: string; agg: RefRule["agg"]; source: string; overMs: number | null;
  /** Window ends are this far apart; each window is sizeMs long. */
  stepMs: number; sizeMs: number;
  /** A typical value of the aggregate, for thresholds that cross it. */
  typical: number;
}
const templates: Template[] = [
  { expr: "avg(bt.x)", agg: "avg", source: "10s", overMs: null, stepMs: 10_000, sizeMs: 10_000, typical: 50 },
  { expr: "rate(bt.x)", agg: "rate", source: "10s", overMs: null, stepMs: 10_000, sizeMs: 10_000, typical: 0.2 },
  { expr: "p95(bt.x) over 60s", agg: "p95", source: "60s/10s", overMs: null, stepMs: 10_000, sizeMs: 60_000, typical: 75 },
  { expr: "max(bt.x) over 1m", agg: "max", source: "60s/10s", overMs: null, stepMs: 10_000, sizeMs: 60_000, typical: 85 },
  { expr: "sum(bt.x) over 30s", agg: "sum", source: "10s", overMs: 30_000, stepMs: 10_000, sizeMs: 10_000, typical: 200 },
  { expr: "count(bt.x) over 2m", agg: "count", source: "10s", overMs: 120_000, stepMs: 10_000, sizeMs: 10_000, typical: 14 },
  { expr: "min(bt.x) over 50s", agg: "min", source: "10s", overMs: 50_000, stepMs: 10_000, sizeMs: 10_000, typical: 25 },
  { expr: "avg(bt.x) over 5m", agg: "avg", source: "10s", overMs: 300_000, stepMs: 10_000, sizeMs: 10_000, typical: 50 },
  { expr: "rate(bt.x) over 40s", agg: "rate", source: "10s", overMs: 40_000, stepMs: 10_000, sizeMs: 10_000, typical: 0.15 },
  { expr: "p50(bt.x) over 1h", agg: "p50", source: "1h", overMs: null, stepMs: 3_600_000, sizeMs: 3_600_000, typical: 50 },
  { expr: "count(bt.x) over 6h", agg: "count", source: "1m", overMs: 6 * 3_600_000, stepMs: 60_000, sizeMs: 60_000, typical: 300 },
];
const ops = [">", ">=", "<", "<="] as const;

/** Events of one series: a slot every stepMs, high and low regimes, now and then a gap of up to twice the rule's hold. */
function randomEvents(rng: () => number, t: Template, slots: number): Array<{ ts: number; value: number }> {
  const events: Array<{ ts: number; value: number }> = [];
  const holdSlots = (t.overMs ?? t.sizeMs) / t.stepMs;
  const presence = 0.5 + rng() * 0.5;
  let high = rng() < 0.5;
  for (let i = 0; i < slots; i++) {
    if (rng() < 0.06) {
      i += 1 + Math.floor(rng() * 2 * holdSlots); // a gap
      continue;
    }
    if (rng() < 0.1) high = !high;
    if (rng() > presence) continue;
    const n = 1 + Math.floor(rng() * 3);
    for (let k = 0; k < n; k++) {
      events.push({ ts: t0 + i * t.stepMs + Math.floor(rng() * t.stepMs), value: (high ? 55 : 0) + Math.floor(rng() * 46) });
    }
  }
  return events.sort((a, b) => a.ts - b.ts);
}

/** The windows of the template's source that hold an event, recounted from the events, oldest first. */
function windowsOf(t: Template, events: ReadonlyArray<{ ts: number; value: number }>): RefWindow[] {
  const ends = new Set<number>();
  for (const e of events) {
    const firstEnd = Math.floor(e.ts / t.stepMs) * t.stepMs + t.stepMs;
    for (let end = firstEnd; end - t.sizeMs <= e.ts; end += t.stepMs) ends.add(end);
  }
  return [...ends].sort((a, b) => a - b).map((end) => recountWindow(events, end - t.sizeMs, end) as unknown as RefWindow);
}

function randomDuration(rng: () => number, stepMs: number): number {
  const r = rng();
  if (r < 0.3) return 0;
  if (r < 0.45) return Math.floor(rng() * 3 * stepMs); // off the step: a transition lands between window ends
  return stepMs * [1, 2, 3, 5, 8][Math.floor(rng() * 5)];
}

describe("back-test - transitions against a reference", () => {
  test("back-test - seeded histories: every aggregate, direct and folded, with gaps, for and keep_firing_for", () => {
    const rng = mulberry32(seed);
    let transitions = 0;
    let gapTransitions = 0;
    let quietTransitions = 0;
    for (let run = 0; run < 220; run++) {
      const t = templates[run % templates.length];
      const threshold = Math.round(t.typical * (0.6 + rng() * 0.8) * 100) / 100;
      const ref: RefRule = {
        name: `r${run}`, agg: t.agg, op: ops[Math.floor(rng() * ops.length)], threshold,
        forMs: randomDuration(rng, t.stepMs), keepMs: randomDuration(rng, t.stepMs), severity: run % 2 === 0 ? "critical" : "info",
        labels: run % 3 === 0 ? { owner: "ops", host: "all" } : {}, advice: run % 4 === 0 ? "{{labels.host}} {{rule}} {{value}} vs {{threshold}} on {{series}}" : null,
      };
      const rule = parseRule({
        name: ref.name, expr: `${t.expr} ${ref.op} ${threshold}`, for: `${ref.forMs}ms`, keep_firing_for: `${ref.keepMs}ms`,
        severity: ref.severity, labels: ref.labels, ...(ref.advice === null ? {} : { advice: ref.advice }),
      }, { windows });
      const plan = planBacktest(rule.expr, windows, { from: t0, nowMs: t0 + day });
      expect({ run, source: plan.source }).toEqual({ run, source: t.source });

      const slots = t.source === "1m" ? 1_200 : t.source === "1h" ? 150 : 200;
      const series: RefSeries[] = Array.from({ length: 1 + (run % 3) }, (_, i) => {
        const events = randomEvents(rng, t, slots);
        return { key: `bt.x{host="h${i}"}`, tags: { host: `h${i}` }, windows: windowsOf(t, events) };
      });
      const lastEnd = Math.max(t0, ...series.flatMap((s) => s.windows.map((w) => w.end)));
      const quietAt = lastEnd + Math.floor(rng() * 3 * (t.overMs ?? t.sizeMs));
      const input = series.map((s) => ({ ref: { key: s.key, name: "bt.x", tags: s.tags }, windows: s.windows })).reverse(); // not in key order
      const got = backtest(rule, plan, input, quietAt);
      const want = referenceTransitions(ref, { overMs: t.overMs, stepMs: t.stepMs }, series, quietAt);
      expect({ run, expr: rule.exprText, for: ref.forMs, keep: ref.keepMs, got }).toEqual({ run, expr: rule.exprText, for: ref.forMs, keep: ref.keepMs, got: want });
      transitions += got.length;
      gapTransitions += got.filter((x) => x.value === null).length;
      quietTransitions += got.filter((x) => x.value === null && x.ts > Math.max(...series.flatMap((s) => s.windows.map((w) => w.end)))).length;
    }
    // The histories exercise the machine: many transitions, gaps and silences at the end among them.
    expect(transitions).toBeGreaterThan(3_000);
    expect(gapTransitions).toBeGreaterThan(200);
    expect(quietTransitions).toBeGreaterThan(10);
    console.log(`back-test: ${transitions} transitions, ${gapTransitions} after gaps, ${quietTransitions} in the silence after the last window`);
  });

  test("back-test - a small history, by hand: pending, firing, a gap, and the silence after the last window", () => {
    const rule = parseRule({ name: "hot", expr: "avg(cpu) > 50", for: "20s", keep_firing_for: "15s", advice: "{{value}}" }, { windows });
    const plan = planBacktest(rule.expr, windows, { from: t0, nowMs: t0 });
    const w = (endS: number, avg: number) => ({ start: t0 + endS * 1000 - 10_000, end: t0 + endS * 1000, count: 1, sum: avg, min: avg, max: avg, avg, p50: avg, p95: avg, p99: avg, first: avg, last: avg });
    const rows = [w(10, 60), w(20, 70), w(30, 80), w(40, 20), /* no data from 50 s */ w(90, 90), w(100, 95)];
    const got = backtest(rule, plan, [{ ref: { key: "cpu", name: "cpu", tags: {} }, windows: rows }], t0 + 200_000);
    expect(got.map((x) => [x.state, (x.ts - t0) / 1000, x.value, x.advice])).toEqual([
      ["pending", 10, 60, "60"],
      ["firing", 30, 80, "80"], // true for 20 s
      ["resolved", 55, null, "no data"], // false from 40 s (a false window), 15 s later: the gap's instant, from the data
      ["pending", 90, 90, "90"],
      ["inactive", 110, null, "no data"], // the silence after 100 s: no data from 110 s on
    ]);
    expect(backtest(rule, plan, [{ ref: { key: "cpu", name: "cpu", tags: {} }, windows: rows }], t0 + 110_000).length).toBe(4); // not past 110 s: still pending
  });

  test("back-test - series are merged by ts, then key; one series' transitions at one instant stay in the order made", () => {
    const rule = parseRule({ name: "hot", expr: "avg(cpu) > 50", keep_firing_for: "10s" }, { windows });
    const plan = planBacktest(rule.expr, windows, { from: t0, nowMs: t0 });
    const w = (endS: number, avg: number) => ({ start: t0 + endS * 1000 - 10_000, end: t0 + endS * 1000, count: 1, sum: avg, min: avg, max: avg, avg, p50: avg, p95: avg, p99: avg, first: avg, last: avg });
    const got = backtest(rule, plan, [
      { ref: { key: "cpu{h=\"b\"}", name: "cpu", tags: { h: "b" } }, windows: [w(10, 60), w(30, 60)] }, // no data from 20 s: resolved at 30 s, then firing at 30 s
      { ref: { key: "cpu{h=\"a\"}", name: "cpu", tags: { h: "a" } }, windows: [w(10, 60), w(30, 70)] },
    ], t0 + 30_000);
    expect(got.map((x) => `${x.series} ${x.state}@${(x.ts - t0) / 1000}`)).toEqual([
      'cpu{h="a"} firing@10', 'cpu{h="b"} firing@10',
      'cpu{h="a"} resolved@30', 'cpu{h="a"} firing@30', 'cpu{h="b"} resolved@30', 'cpu{h="b"} firing@30',
    ]);
  });
});

describe("back-test - which windows it reads", () => {
  const now = t0 + 1000 * day;
  const plan = (expr: string, from: number) => planBacktest(parseExpr(expr), windows, { from, nowMs: now, path: "rule" });
  const fails = (expr: string, from: number) => {
    try {
      plan(expr, from);
    } catch (e) {
      expect(e).toBeInstanceOf(RuleError);
      return (e as Error).message;
    }
    throw new Error(`${expr} from ${from}: planned`);
  };

  test("back-test - within their retention, the windows the live rule reads", () => {
    expect(plan("sum(x) over 30m > 1", now - day)).toEqual({ source: "10s", windows });
    expect(plan("p95(x) over 60s > 1", now - 2 * day)).toEqual({ source: "60s/10s", windows }); // exactly the retention: still kept
    expect(plan("avg(x) over 1h > 1", now - 300 * day)).toEqual({ source: "1h", windows }); // the live rule reads 1h windows
  });

  test("back-test - past the 10 s windows' retention, the rollups kept back to from, one resolution for the whole range", () => {
    const rollupsOnly = { specs: [], rollups: windows.rollups };
    expect(plan("sum(x) over 30m > 1", now - 2 * day - 1)).toEqual({ source: "1m", windows: rollupsOnly });
    expect(plan("p95(x) over 60s > 1", now - 3 * day)).toEqual({ source: "1m", windows: rollupsOnly }); // the 1m rollup is exactly 60 s
    expect(plan("count(x) over 2h > 1", now - 31 * day)).toEqual({ source: "1h", windows: { specs: [], rollups: [windows.rollups![1]] } });
  });

  test("back-test - a rule the kept windows cannot answer, or a range older than every window, is refused naming why", () => {
    expect(fails("avg(x) > 1", now - 3 * day)).toBe(
      'rule.expr: without "over" it reads the 10s windows, kept for 2d, and "from" is older: give the rule an "over" that the 1m or 1h windows answer, or back-test a later range',
    );
    expect(fails("p95(x) over 60s > 1", now - 31 * day)).toBe(
      'rule.expr: it reads the 60s/10s windows, kept for 2d, and "from" is older; the windows kept that long (1h) cannot answer it: "over 60s": p95 needs a configured window of that length (1h); count, sum, min, max, avg and rate take any multiple of a tumbling window',
    );
    expect(fails("p95(x) over 30m > 1", now)).toBe( // the live rule cannot be planned either
      'rule.expr: "over 30m": p95 needs a configured window of that length (10s, 60s/10s, 1m, 1h); count, sum, min, max, avg and rate take any multiple of a tumbling window',
    );
    expect(fails("sum(x) over 90s > 1", now - 3 * day)).toBe(
      'rule.expr: it reads the 10s windows, kept for 2d, and "from" is older; the windows kept that long (1m, 1h) cannot answer it: "over 90s": must be a multiple of a tumbling window (1m, 1h)',
    );
    expect(fails("sum(x) over 30m > 1", now - 401 * day)).toBe("from: older than every window kept (10s for 2d, 60s/10s for 2d, 1m for 30d, 1h for 400d): back-test a later range");
  });

  test("back-test - anomaly(...) and trend(...) rules are refused: their verdicts are not stored window by window", () => {
    expect(fails("anomaly(x) >= warning", now)).toBe("rule.expr: back-testing supports aggregate rules only; anomaly(...) verdicts are not stored window by window");
    expect(fails("trend(x) == rising", now)).toBe("rule.expr: back-testing supports aggregate rules only; trend(...) verdicts are not stored window by window");
  });
});
