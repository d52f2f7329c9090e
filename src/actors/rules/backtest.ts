/**
 * Back-testing an alert rule (POST /api/v1/rules/test): the transitions the
 * rule would have made over stored history, made by the same RuleSet the
 * live path runs, fed each matching series' stored windows in event time.
 *
 * - Which windows. A back-test reads what the live rule reads (plan.ts) as
 *   long as those windows are kept back to `from`. When `from` is older than
 *   their retention (WEIR_RETENTION_WINDOWS, 2 d, for the configured specs),
 *   the rule is planned afresh against the windows kept that long (the 1m
 *   rollup for WEIR_RETENTION_1M, then 1h), and those are read for the
 *   whole range: one resolution throughout, so `for` and keep_firing_for
 *   are judged at one cadence and a rolling `over` never folds windows of
 *   two sizes (a seam would count a coarse window that only partly lies
 *   inside the span). A rule the kept windows cannot answer is a RuleError
 *   saying why: avg(x) without `over` reads 10 s windows only, p95 needs a
 *   window of exactly its `over`.
 * - Which part of the range: the windows with from ≤ start and end ≤ to,
 *   so the rule runs as if created at `from` (its rolling `over` starts
 *   empty, as a new live rule's does) and judges nothing past `to`.
 * - Gaps. A window a series did not emit is no data (instance.ts, rule 2).
 *   The evaluation after a gap notices it and emits what quiet() would have
 *   emitted during the gap: gap transitions take their instant from the
 *   data, not from when the gap was noticed. After a series' last window,
 *   quiet(quietAt) judges the silence up to the end of what is known
 *   (the route passes min(to, now − lateness)).
 * - Order: by ts, then series key; one series' transitions at one instant
 *   keep the order they were made in (a gap's before the evaluation's).
 * - anomaly(...) and trend(...) rules are refused: their verdicts are not
 *   stored window by window (the anomalies table holds anomalies as
 *   events, not the open/closed state at each window end; trends keep only
 *   the latest fit), so a replay would have to invent them.
 *
 * @example
 *   const plan = planBacktest(rule.expr, { specs, rollups, keptMs: { "10s": 2 * 86_400_000 } }, { from, nowMs: Date.now() });
 *   backtest(rule, plan, [{ ref: { key, name, tags }, windows: rowsOldestFirst }], to);
 *   // [{ kind: "rule", rule: "slow", series: key, state: "pending", value: 3412, ts: 1763800060000, ... }]
 */
import { strict as assert } from "node:assert";
import type { WindowResult } from "../window.ts";
import { type Expr, formatDurationMs, RuleError } from "./expr.ts";
import { planRule, type RuleWindows } from "./plan.ts";
import { RuleSet, type RuleTransition, type SeriesRef } from "./rule-set.ts";
import type { Rule } from "./rule.ts";

/** The windows weir closes, and how long each label's are kept. */
export interface BacktestWindows extends RuleWindows {
  /** Retention by label in ms (WEIR_RETENTION_*); a label not listed is kept for good. */
  keptMs: Readonly<Record<string, number>>;
}

export interface BacktestPlan {
  /** The label of the windows to read. */
  source: string;
  /** What the back-test's RuleSet plans against: every window, or only those kept back to `from`. */
  windows: RuleWindows;
}

/** A stored window as the read model lists it. */
export type StoredWindow = Pick<WindowResult, "start" | "end" | "count" | "sum" | "min" | "max" | "avg" | "p50" | "p95" | "p99" | "first" | "last">;

/** One series and its windows of the plan's source label, oldest first. */
export interface BacktestSeries { ref: SeriesRef; windows: Iterable<StoredWindow> }

/**
 * The windows a back-test from `from` reads (see the module comment). Throws
 * a RuleError naming `<path>.expr` (or `from`) when no kept window answers the rule.
 * @example planBacktest(parseExpr("sum(x) over 30m > 5"), windows, { from: Date.now() - 5 * 86_400_000, nowMs: Date.now() }) // { source: "1m", ... }
 */
export function planBacktest(expr: Expr, windows: BacktestWindows, at: { from: number; nowMs: number; path?: string }): BacktestPlan {
  const field = at.path === undefined ? "expr" : `${at.path}.expr`;
  if (expr.kind !== "aggregate") {
    throw new RuleError(`${field}: back-testing supports aggregate rules only; ${expr.kind}(...) verdicts are not stored window by window`);
  }
  const keptMs = (label: string) => windows.keptMs[label] ?? Infinity;
  const kept = (label: string) => at.from >= at.nowMs - keptMs(label);
  const live = withField(field, () => planRule(expr, windows));
  assert(live.kind !== "signal", "an aggregate rule reads windows");
  if (kept(live.source)) return { source: live.source, windows };

  const specs = windows.specs.filter((s) => kept(s.label));
  const rollups = (windows.rollups ?? []).filter((r) => kept(r.label));
  const labels = [...specs.map((s) => s.label), ...rollups.map((r) => r.label)];
  if (labels.length === 0) {
    const all = [...windows.specs.map((s) => s.label), ...(windows.rollups ?? []).map((r) => r.label)];
    const list = all.map((l) => `${l} for ${formatDurationMs(keptMs(l))}`).join(", ");
    throw new RuleError(`from: older than every window kept (${list}): back-test a later range`);
  }
  const reads = `it reads the ${live.source} windows, kept for ${formatDurationMs(keptMs(live.source))}, and "from" is older`;
  if (expr.over === null) {
    throw new RuleError(`${field}: without "over" ${reads}: give the rule an "over" that the ${labels.join(" or ")} windows answer, or back-test a later range`);
  }
  const p = withField(`${field}: ${reads}; the windows kept that long (${labels.join(", ")}) cannot answer it`, () => planRule(expr, { specs, rollups }));
  assert(p.kind !== "signal");
  return { source: p.source, windows: { specs, rollups } };
}

/** Runs a planning step whose RuleError messages start "expr: ", putting `field` in place of "expr". */
function withField<T>(field: string, step: () => T): T {
  try {
    return step();
  } catch (e) {
    if (e instanceof RuleError) throw new RuleError(`${field}: ${e.message.replace(/^expr: /, "")}`);
    throw e;
  }
}

/**
 * Runs one rule over stored windows (see the module comment): `series`
 * yields each series' windows of plan.source, oldest first; `quietAt` is
 * the instant up to which every series' data is known.
 * @example backtest(rule, plan, [{ ref, windows }], Math.min(to, Date.now() - latenessMs))
 */
export function backtest(rule: Rule, plan: BacktestPlan, series: Iterable<BacktestSeries>, quietAt: number): RuleTransition[] {
  const set = new RuleSet({ windows: plan.windows });
  set.set(rule);
  const out: RuleTransition[] = [];
  const emit = (t: RuleTransition) => out.push(t);
  // One window object refilled per row: the set keeps none of it.
  const w: WindowResult = {
    kind: "window", sid: 0, spec: plan.source, start: 0, end: 0, count: 0, sum: 0, min: 0, max: 0, avg: 0, p50: 0, p95: 0, p99: 0, first: 0, last: 0,
  };
  let sid = 0;
  for (const s of series) {
    let lastEnd = -Infinity;
    for (const r of s.windows) {
      assert(r.end > lastEnd, `back-test windows of ${s.ref.key} oldest first`);
      w.sid = sid;
      w.start = r.start;
      w.end = r.end;
      w.count = r.count;
      w.sum = r.sum;
      w.min = r.min;
      w.max = r.max;
      w.avg = r.avg;
      w.p50 = r.p50;
      w.p95 = r.p95;
      w.p99 = r.p99;
      w.first = r.first;
      w.last = r.last;
      const refused = set.evaluate(w, s.ref, emit);
      assert(refused === 0, "the caller bounds the series to the instances a rule may hold");
      lastEnd = r.end;
    }
    set.quiet(sid, s.ref, quietAt, emit);
    sid++;
  }
  // Stable: one series' transitions at one instant stay in the order they were made.
  return out.sort((a, b) => a.ts - b.ts || (a.series < b.series ? -1 : a.series > b.series ? 1 : 0));
}
