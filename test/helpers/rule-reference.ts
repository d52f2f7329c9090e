/**
 * The back-test's reference: what an aggregate rule does over one series'
 * windows, restated from API.md and instance.ts's contract without their
 * code. Values are recounted from the windows inside each span; the
 * condition is written out as a timeline (each evaluation's verdict stands
 * for [end, end + hold), no verdict is false), and the runs `for` and
 * keep_firing_for measure are found by walking back along it.
 *
 * @example
 *   const want = referenceTransitions(rule, { source: "10s", overMs: 30_000 }, series, quietAt);
 */

export interface RefWindow {
  start: number; end: number; count: number; sum: number; min: number; max: number; avg: number; p50: number; p95: number; p99: number; first: number; last: number;
}
export interface RefSeries { key: string; tags: Record<string, string>; windows: RefWindow[] }
export interface RefRule {
  name: string;
  agg: "count" | "sum" | "min" | "max" | "avg" | "p50" | "p95" | "p99" | "rate";
  op: ">" | ">=" | "<" | "<=" | "==" | "!=";
  threshold: number;
  forMs: number;
  keepMs: number;
  severity: "info" | "warning" | "critical";
  labels: Record<string, string>;
  advice: string | null;
}
type State = "inactive" | "pending" | "firing" | "resolved";
/** How the rule reads its windows: folded over `overMs` (stepMs apart), or each window as it is (overMs null). */
export interface RefReading { overMs: number | null; stepMs: number }
export interface RefTransition {
  kind: "rule"; rule: string; series: string; state: State; value: number | null; threshold: number; ts: number;
  severity: RefRule["severity"]; labels: Record<string, string>; advice: string | null;
}

interface Evaluation { end: number; hold: number; cond: boolean; value: number }

/** Every series' transitions, ordered by ts, then series key, then as made. */
export function referenceTransitions(rule: RefRule, reading: RefReading, series: RefSeries[], quietAt: number): RefTransition[] {
  const all = series.flatMap((s) => seriesTransitions(rule, reading, s, quietAt));
  return all.sort((a, b) => a.ts - b.ts || (a.series < b.series ? -1 : a.series > b.series ? 1 : 0));
}

function seriesTransitions(rule: RefRule, reading: RefReading, s: RefSeries, quietAt: number): RefTransition[] {
  const evals: Evaluation[] = s.windows.map((w) => {
    const value = reading.overMs === null ? own(rule.agg, w) : folded(rule.agg, s.windows.filter((x) => x.end <= w.end && x.end > w.end - reading.overMs!), reading.overMs);
    return { end: w.end, hold: reading.overMs ?? w.end - w.start, cond: holds(rule.op, value, rule.threshold), value };
  });
  /** The verdict at instant x: that of the latest evaluation at or before x while it stands; else no data (false). */
  const c = (x: number): boolean => {
    let lo = 0;
    let hi = evals.length; // the first evaluation after x
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (evals[mid].end <= x) lo = mid + 1;
      else hi = mid;
    }
    const e = evals[lo - 1];
    return e !== undefined && x < e.end + e.hold && e.cond;
  };
  /** The earliest x with the verdict `v` throughout [x, t] (every run starts and ends on the step). */
  const runStart = (t: number, v: boolean): number => {
    let x = t;
    while (x - reading.stepMs >= evals[0].end && c(x - reading.stepMs) === v) x -= reading.stepMs;
    return x;
  };
  const out: RefTransition[] = [];
  let state: State = "inactive";
  const to = (st: State, ts: number, value: number | null) => {
    state = st;
    out.push(transition(rule, s, st, ts, value));
  };
  /** No data from holdTo to t (t > holdTo): pending ends where the data ended; firing ends once false for keep_firing_for. */
  const gap = (holdTo: number, t: number) => {
    if (state === "pending") to("inactive", holdTo, null);
    else if (state === "firing") {
      const falseFrom = runStart(holdTo, false);
      if (t - falseFrom >= rule.keepMs) to("resolved", falseFrom + rule.keepMs, null);
    }
  };
  evals.forEach((e, k) => {
    if (k > 0 && e.end > evals[k - 1].end + evals[k - 1].hold) gap(evals[k - 1].end + evals[k - 1].hold, e.end);
    if (e.cond) {
      if (state === "inactive" || state === "resolved") to(rule.forMs === 0 ? "firing" : "pending", e.end, e.value);
      else if (state === "pending" && e.end - runStart(e.end, true) >= rule.forMs) to("firing", e.end, e.value);
    } else if (state === "pending") to("inactive", e.end, e.value);
    else if (state === "firing" && e.end - runStart(e.end, false) >= rule.keepMs) to("resolved", e.end, e.value);
  });
  const last = evals[evals.length - 1];
  if (last !== undefined && quietAt > last.end + last.hold) gap(last.end + last.hold, quietAt);
  return out;
}

function own(agg: RefRule["agg"], w: RefWindow): number {
  return agg === "rate" ? w.count / ((w.end - w.start) / 1000) : w[agg];
}

/** An aggregate of the windows of a span, recounted (sums oldest first, as floats add in that order). */
function folded(agg: RefRule["agg"], ws: RefWindow[], overMs: number): number {
  const count = ws.reduce((n, w) => n + w.count, 0);
  const sum = ws.reduce((n, w) => n + w.sum, 0);
  switch (agg) {
    case "count": return count;
    case "sum": return sum;
    case "avg": return sum / count;
    case "min": return Math.min(...ws.map((w) => w.min));
    case "max": return Math.max(...ws.map((w) => w.max));
    case "rate": return count / (overMs / 1000);
    default: throw new Error(`${agg} does not fold`);
  }
}

function holds(op: RefRule["op"], v: number, t: number): boolean {
  return { ">": v > t, ">=": v >= t, "<": v < t, "<=": v <= t, "==": v === t, "!=": v !== t }[op];
}

function transition(rule: RefRule, s: RefSeries, state: State, ts: number, value: number | null): RefTransition {
  const labels = { ...s.tags, ...rule.labels };
  const shown = (v: number | null) => (v === null ? "no data" : Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6))));
  const advice = rule.advice === null ? null : rule.advice.replace(/\{\{\s*([a-z.A-Z_0-9]+)\s*\}\}/g, (_, f: string) => {
    if (f === "value") return shown(value);
    if (f === "threshold") return shown(rule.threshold);
    if (f === "series") return s.key;
    if (f === "rule") return rule.name;
    return labels[f.slice("labels.".length)] ?? "";
  });
  return { kind: "rule", rule: rule.name, series: s.key, state, value, threshold: rule.threshold, ts, severity: rule.severity, labels, advice };
}
