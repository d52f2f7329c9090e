/**
 * Which closed windows feed a rule, and how: a rule's `over` may be any
 * length, and this decides how the windows weir already closes answer it.
 *
 * - Without `over`, an aggregate rule reads the base window: the tumbling
 *   spec of the pane size ("10s" with the default WEIR_WINDOWS).
 * - direct: a configured spec or rollup is exactly `over` long ("over 60s"
 *   with "60s/10s", "over 1h" with the 1h rollup): the rule reads that
 *   window's results as they are, every aggregate included, and is judged
 *   once a slide (for a spec of equal size, the finer slide wins).
 * - rolling: otherwise, for count, sum, min, max, avg and rate, the rule
 *   folds the closed tumbling windows (specs, then rollups) of its series
 *   covering [end − over, end) itself (rolling.ts), from the finest tumbling
 *   window whose size divides `over` into at most limits.ruleWindowPanesMax
 *   windows: "over 30m" folds 180 windows of 10 s, "over 2d" 2,880 of 1 m is
 *   too many and takes 48 of 1 h. It is judged each time one of them closes.
 * - Refused, with a RuleError naming the window: p50 / p95 / p99 over a
 *   length no configured window has (percentiles do not fold from
 *   percentiles, and keeping a sketch per window per instance costs KBs
 *   each); a length no tumbling window divides; a length that spans too
 *   many windows of every one that divides it.
 * - anomaly(...) and trend(...) read the series' anomaly and trend state as
 *   the caller feeds them (rule-set.ts), so they need no window.
 *
 * @example
 *   planRule(parseExpr("avg(x) over 30m > 1"), { specs: parseWindowSpecs("10s,60s/10s") });
 *   // { kind: "rolling", source: "10s", sourceMs: 10000, overMs: 1800000 }
 */
import { limits } from "../../runtime/limits.ts";
import type { RollupOption } from "../rollup.ts";
import { paneMsOf, type WindowSpec } from "../window-spec.ts";
import { type Expr, formatDurationMs, RuleError } from "./expr.ts";

/** The windows weir closes: the configured specs (WEIR_WINDOWS) and the rollups (1m, 1h in the engine). */
export interface RuleWindows { specs: readonly WindowSpec[]; rollups?: readonly RollupOption[] }

export type RulePlan =
  | { kind: "direct"; source: string }
  | { kind: "rolling"; source: string; sourceMs: number; overMs: number }
  | { kind: "signal" };

/** Aggregates that fold from closed windows' count, sum, min and max. */
const foldable = new Set(["count", "sum", "min", "max", "avg", "rate"]);

/**
 * How the windows answer an expression (see the module comment); throws a RuleError naming the window when they cannot.
 * @example planRule(parseExpr("p95(x) over 60s > 1"), { specs: parseWindowSpecs("10s,60s/10s") }) // { kind: "direct", source: "60s/10s" }
 */
export function planRule(expr: Expr, windows: RuleWindows): RulePlan {
  if (expr.kind !== "aggregate") return { kind: "signal" };
  const rollups = windows.rollups ?? [];
  const overMs = expr.over?.ms ?? baseOf(windows.specs).sizeMs;
  const what = expr.over === null ? "the base window" : `"over ${expr.over.text}"`;
  const direct = [...windows.specs]
    .filter((s) => s.sizeMs === overMs)
    .sort((a, b) => a.slideMs - b.slideMs)[0] ?? rollups.find((r) => r.sizeMs === overMs);
  if (direct !== undefined) return { kind: "direct", source: direct.label };
  const names = [...windows.specs.map((s) => s.label), ...rollups.map((r) => r.label)].join(", ");
  if (!foldable.has(expr.agg)) {
    throw new RuleError(`expr: ${what}: ${expr.agg} needs a configured window of that length (${names}); count, sum, min, max, avg and rate take any multiple of a tumbling window`);
  }
  const tumbling = [
    ...windows.specs.filter((s) => s.slideMs === s.sizeMs),
    ...rollups,
  ].sort((a, b) => a.sizeMs - b.sizeMs);
  const dividing = tumbling.filter((t) => overMs % t.sizeMs === 0);
  if (dividing.length === 0) {
    const list = tumbling.map((t) => t.label).join(", ");
    throw new RuleError(`expr: ${what}: must be a multiple of a tumbling window (${list === "" ? "none configured" : list})`);
  }
  const fits = dividing.find((t) => overMs / t.sizeMs <= limits.ruleWindowPanesMax);
  if (fits === undefined) {
    const t = dividing[dividing.length - 1];
    throw new RuleError(
      `expr: ${what}: spans ${overMs / t.sizeMs} windows of ${t.label} (the longest tumbling window that divides it), at most ${limits.ruleWindowPanesMax}`,
    );
  }
  return { kind: "rolling", source: fits.label, sourceMs: fits.sizeMs, overMs };
}

/** The tumbling spec of the pane size, which a rule without `over` reads. */
function baseOf(specs: readonly WindowSpec[]): WindowSpec {
  const pane = paneMsOf(specs);
  const base = specs.find((s) => s.sizeMs === s.slideMs && s.sizeMs === pane);
  if (base === undefined) {
    const names = specs.map((s) => s.label).join(", ");
    throw new RuleError(`expr: without "over" a rule reads the tumbling window of ${formatDurationMs(pane)}, and the windows (${names}) have none: add "over" and a length`);
  }
  return base;
}
