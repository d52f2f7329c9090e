/**
 * Many rules' instances, keyed by rule and series, fed the closed windows
 * (and anomaly and trend verdicts) of one partition's series.
 *
 * - Routing. Each series (by the window actor's dense sid) is matched
 *   against every rule's selector once; the list of its rules is cached
 *   until the rules change. A window result then costs one array read per
 *   series plus one comparison per rule of that series whose source window
 *   it is (plan.ts): a result of spec "10s" feeds the rules that read 10 s
 *   windows, directly or folded over their `over`. A result that none of
 *   its series' rules reads (another spec, or an anomaly or trend verdict
 *   no rule of it asks for) stops at a bit mask per series, before its
 *   bindings are touched: at one event a second a series most closed
 *   windows are such results, and walking to their bindings was a few
 *   percent of the pipeline's events/s (bench/rules-pipeline.ts).
 * - Values. direct: the window's own aggregate; `rate` = count / the
 *   window's seconds. rolling: the instance's RollingWindow after the
 *   window is pushed. anomaly(...): true when the severity the caller
 *   passes (the series' open anomaly at that window end, or null) is at
 *   least the rule's, the value being that severity or "none";
 *   trend(...): true when the class equals the rule's, the value being the
 *   class. Their verdicts stand for the window passed ([start, end)).
 * - Instances are created at a series' first evaluation, at most
 *   `instancesPerRuleMax` per rule: past it a new series is refused,
 *   counted in the rule's `refused` and in the return value of the call
 *   (again after a change of the rules, when the cache is rebuilt). quiet()
 *   drops an instance that is inactive or resolved and whose last verdict
 *   no longer stands: it holds no timer and no window that is still inside
 *   its `over`, so nothing is lost.
 * - State machine: instance.ts. Every transition is handed to `emit` as a
 *   RuleTransition (the alert of API.md, `kind: "rule"`), its labels the
 *   series' tags with the rule's labels over them, its advice rendered.
 * - Changing a rule: set() with the same name keeps its instances when the
 *   expression, `for` and `keep_firing_for` are unchanged (labels, advice,
 *   severity, actions may change freely), and starts afresh otherwise.
 * - snapshot() is plain data (instance snapshots by rule name, with each
 *   rule's fingerprint); restore() puts them back into a set holding the
 *   same rules and drops those of a rule that is gone or changed.
 *
 * The evaluation allocates nothing unless a transition happens or an
 * instance is created (and a rolling window grows toward its span).
 *
 * @example
 *   const set = new RuleSet({ windows: { specs: parseWindowSpecs("10s,60s/10s") } });
 *   set.set(parseRule({ name: "slow", expr: "avg(page.load) > 3000", for: "1m" }));
 *   set.evaluate(windowResult, { key, name, tags }, (t) => alerts.push(t)); // 0 refused
 */
import { strict as assert } from "node:assert";
import { limits } from "../../runtime/limits.ts";
import type { TrendClass } from "../trend.ts";
import type { WindowResult } from "../window.ts";
import { type AnomalySeverity, type Comparison, RuleError, selectorMatches } from "./expr.ts";
import {
  type AlertState, type AlertValue, evaluateInstance, type InstanceSnapshot, quietInstance, restoreInstance, RuleInstance,
  snapshotInstance, type Timing,
} from "./instance.ts";
import { planRule, type RulePlan, type RuleWindows } from "./plan.ts";
import { foldedPart, type FoldedAggregate, RollingWindow } from "./rolling.ts";
import { renderAdvice, type Rule, type Severity } from "./rule.ts";

export interface SeriesRef { key: string; name: string; tags: Readonly<Record<string, string>> }

/** One transition as API.md's alert: at /api/v1/alerts, on the `alerts` topic, to the actions. */
export interface RuleTransition {
  kind: "rule";
  rule: string;
  series: string;
  /** "inactive": a pending instance whose condition cleared before `for`. */
  state: AlertState;
  value: AlertValue;
  threshold: number | string;
  ts: number;
  severity: Severity;
  labels: Record<string, string>;
  advice: string | null;
}

export interface RuleSetOptions {
  windows: RuleWindows;
  /** Default limits.ruleInstancesPerRuleMax. */
  instancesPerRuleMax?: number;
}

export interface InstanceView { series: string; state: AlertState; value: AlertValue; since: number }
export interface RuleSetStats { rules: number; instances: number; refused: number }

export interface RuleSetSnapshot {
  version: 1;
  rules: Array<{ name: string; fingerprint: string; refused: number; instances: InstanceSnapshot[] }>;
}

type Emit = (t: RuleTransition) => void;
interface Binding { entry: Entry; inst: RuleInstance | null; refused: boolean }

const severityRank: Record<AnomalySeverity, number> = { warning: 1, critical: 2 };
const noBindings: Binding[] = [];

/** A rule with what its evaluation needs precomputed. */
class Entry {
  /** The spec label of the windows this rule reads; null for anomaly(...) and trend(...). */
  readonly source: string | null;
  readonly rolling: { agg: FoldedAggregate; overMs: number; sourceMs: number } | null;
  readonly threshold: number | string;
  readonly timing: Timing;
  readonly fingerprint: string;
  instances = new Map<string, RuleInstance>();
  refused = 0;

  constructor(readonly rule: Rule, plan: RulePlan) {
    const e = rule.expr;
    this.source = plan.kind === "signal" ? null : plan.source;
    this.rolling = plan.kind === "rolling" && e.kind === "aggregate"
      ? { agg: e.agg as FoldedAggregate, overMs: plan.overMs, sourceMs: plan.sourceMs }
      : null;
    this.threshold = e.kind === "aggregate" ? e.threshold : e.kind === "anomaly" ? e.severity : e.class;
    this.timing = { forMs: rule.forMs, keepFiringForMs: rule.keepFiringForMs };
    this.fingerprint = fingerprintOf(rule);
  }
}

/** What decides an instance's meaning: changing anything else keeps the instances. */
function fingerprintOf(rule: Rule): string {
  return `${rule.exprText.trim()}\n${rule.forMs}\n${rule.keepFiringForMs}`;
}

export class RuleSet {
  private readonly windows: RuleWindows;
  private readonly instancesPerRuleMax: number;
  private entries: Entry[] = [];
  /** Per sid, the rules whose selector picks that series; rebuilt lazily after a change of rules. */
  private bySid: Array<Binding[] | undefined> = [];
  /** A bit per source some rule reads (a spec label, "anomaly" or "trend"); a source no rule reads has none. */
  private sourceBits = new Map<string, number>();
  /**
   * Per sid, the sources its rules read (sourceBits), set with bySid. Small
   * numbers in a dense array, read before bySid: a window that no rule of
   * its series reads costs one array read, not a walk to its bindings.
   */
  private readsBySid: number[] = [];
  // The transition callback's context, set before each evaluation (one bound function, no closure per call).
  private ctxEntry: Entry | null = null;
  private ctxSeries: SeriesRef | null = null;
  private ctxEmit: Emit | null = null;
  /** Whether the last open() refused a new instance (the first time for its binding). */
  private justRefused = false;
  private readonly onTransition = (inst: RuleInstance, state: AlertState, ts: number, value: AlertValue): void => {
    const e = this.ctxEntry!;
    const s = this.ctxSeries!;
    const labels = { ...s.tags, ...e.rule.labels }; // per transition, not per evaluation
    const advice = e.rule.advice === null
      ? null
      : renderAdvice(e.rule.advice, { value, threshold: e.threshold, series: inst.series, rule: e.rule.name, labels });
    this.ctxEmit!({
      kind: "rule", rule: e.rule.name, series: inst.series, state, value, threshold: e.threshold, ts, severity: e.rule.severity, labels, advice,
    });
  };

  constructor(opts: RuleSetOptions) {
    this.windows = opts.windows;
    this.instancesPerRuleMax = opts.instancesPerRuleMax ?? limits.ruleInstancesPerRuleMax;
  }

  /**
   * Adds a rule or replaces the one of that name (see the module comment); throws a RuleError if the windows cannot answer it or the set is full.
   * @example set.set(parseRule(body, { windows }))
   */
  set(rule: Rule): void {
    const entry = new Entry(rule, planRule(rule.expr, this.windows));
    const at = this.entries.findIndex((e) => e.rule.name === rule.name);
    if (at < 0 && this.entries.length >= limits.rulesMax) throw new RuleError(`rules: ${this.entries.length} already, at most ${limits.rulesMax}`);
    const old = at < 0 ? undefined : this.entries[at];
    if (old !== undefined && old.fingerprint === entry.fingerprint) {
      entry.instances = old.instances;
      entry.refused = old.refused;
    }
    if (at < 0) this.entries.push(entry);
    else this.entries[at] = entry;
    this.renumber();
  }

  /** @example set.delete("slow") // true if it was there */
  delete(name: string): boolean {
    const at = this.entries.findIndex((e) => e.rule.name === name);
    if (at < 0) return false;
    this.entries.splice(at, 1);
    this.renumber();
    return true;
  }

  rules(): Rule[] {
    return this.entries.map((e) => e.rule);
  }

  /**
   * One closed window of a series: every rule reading windows of its spec is judged. Returns the instances refused (full rules).
   * @example set.evaluate(w, registry.info(w.sid), emit)
   */
  evaluate(w: WindowResult, series: SeriesRef, emit: Emit): number {
    if (!this.reads(w.sid, w.spec)) return 0;
    const bs = this.bySid[w.sid] ?? this.bind(w.sid, series);
    let refused = 0;
    for (let i = 0; i < bs.length; i++) {
      const b = bs[i];
      const e = b.entry;
      if (e.source !== w.spec) continue;
      const inst = b.inst ?? this.open(b, series.key);
      if (inst === null) {
        if (this.justRefused) refused++;
        continue;
      }
      const expr = e.rule.expr;
      if (expr.kind !== "aggregate" || w.end <= inst.seenTo) continue;
      let value: number;
      let holdMs: number;
      if (e.rolling !== null) {
        inst.window!.push(w.end, w.count, foldedPart(e.rolling.agg, w));
        value = inst.window!.value();
        holdMs = e.rolling.overMs;
      } else {
        value = pick(expr.agg, w);
        holdMs = w.end - w.start;
      }
      this.judge(e, series, emit, inst, w.end, holdMs, compare(expr.op, value, expr.threshold), value);
    }
    return refused;
  }

  /**
   * The series' anomaly state at the end of a closed window [start, end): the severity of its open anomaly, or null.
   * @example set.anomaly({ sid, start: w.start, end: w.end, severity: anomaly.openAnomaly(st, sid)?.severity ?? null }, series, emit)
   */
  anomaly(a: { sid: number; start: number; end: number; severity: AnomalySeverity | null }, series: SeriesRef, emit: Emit): number {
    return this.signal("anomaly", a.sid, a.start, a.end, a.severity, series, emit);
  }

  /**
   * A closed trend window of a series and its class.
   * @example set.trend(trendResult, series, emit)
   */
  trend(t: { sid: number; start: number; end: number; class: TrendClass }, series: SeriesRef, emit: Emit): number {
    return this.signal("trend", t.sid, t.start, t.end, t.class, series, emit);
  }

  /**
   * The series' watermark passed `at` and closed no window since its last: no data (instance.ts, rule 2).
   * @example set.quiet(sid, series, closedBefore, emit)
   */
  quiet(sid: number, series: SeriesRef, at: number, emit: Emit): void {
    const bs = this.bySid[sid] ?? this.bind(sid, series);
    for (const b of bs) {
      const inst = b.inst;
      if (inst === null) continue;
      this.ctxEntry = b.entry;
      this.ctxSeries = series;
      this.ctxEmit = emit;
      quietInstance(inst, b.entry.timing, at, this.onTransition);
      if ((inst.state === "inactive" || inst.state === "resolved") && at >= inst.holdTo) {
        b.entry.instances.delete(inst.series);
        b.inst = null;
      }
    }
  }

  /**
   * The silences: every instance whose last verdict no longer stands at its
   * series' frontier (`frontierOf`: the instant before which the series has
   * all its data, or null if unknown) is judged by quiet() there; those left
   * inactive or resolved are dropped. Answers the instances dropped.
   * `frontierMax`, when the caller knows one, is a bound no series'
   * frontier passes: an instance whose verdict stands at least that long
   * is skipped without asking frontierOf (most of them, on live series).
   * @example set.sweep((key) => frontierOfKey(key), (key) => seriesOfKey(key), emit, nowMs - latenessMs)
   */
  sweep(frontierOf: (key: string) => number | null, seriesOf: (key: string) => SeriesRef | null, emit: Emit, frontierMax = Infinity): number {
    let dropped = 0;
    this.ctxEmit = emit;
    for (const e of this.entries) {
      for (const inst of e.instances.values()) {
        if (inst.holdTo >= frontierMax) continue; // its frontier cannot pass holdTo: not asked
        const at = frontierOf(inst.series);
        if (at === null || at <= inst.holdTo) continue;
        const series = seriesOf(inst.series);
        if (series === null) continue;
        this.ctxEntry = e;
        this.ctxSeries = series;
        quietInstance(inst, e.timing, at, this.onTransition);
        if (inst.state === "inactive" || inst.state === "resolved") {
          e.instances.delete(inst.series);
          dropped++;
        }
      }
    }
    if (dropped > 0) this.unbind(); // bindings hold instances: bound afresh
    return dropped;
  }

  /**
   * Whether a rule of series `sid` reads `source` (a spec label, "anomaly"
   * or "trend"); for a series not bound yet, whether any rule does. Lets the
   * caller skip preparing a verdict that no rule of the series asks for.
   * @example if (set.reads(w.sid, "anomaly")) set.anomaly({ sid: w.sid, start: w.start, end: w.end, severity }, series, emit)
   */
  reads(sid: number, source: string): boolean {
    const bit = this.sourceBits.get(source);
    if (bit === undefined) return false;
    const mask = this.readsBySid[sid];
    return mask === undefined || (mask & bit) !== 0;
  }

  /** Whether any rule holds an instance (a sweep has something to do). */
  get hasInstances(): boolean {
    for (const e of this.entries) if (e.instances.size > 0) return true;
    return false;
  }

  /** @example set.instancesOf("slow") // [{ series: 'page.load{page="/"}', state: "firing", value: 3412, since: 1763800060000 }] */
  instancesOf(name: string): InstanceView[] {
    const e = this.entries.find((x) => x.rule.name === name);
    if (e === undefined) return [];
    return [...e.instances.values()].map((i) => ({ series: i.series, state: i.state, value: i.value, since: i.stateSince }));
  }

  stats(): RuleSetStats {
    let instances = 0;
    let refused = 0;
    for (const e of this.entries) {
      instances += e.instances.size;
      refused += e.refused;
    }
    return { rules: this.entries.length, instances, refused };
  }

  snapshot(): RuleSetSnapshot {
    return {
      version: 1,
      rules: this.entries.map((e) => ({
        name: e.rule.name, fingerprint: e.fingerprint, refused: e.refused, instances: [...e.instances.values()].map(snapshotInstance),
      })),
    };
  }

  /**
   * Puts a snapshot's instances back into the rules of the same name and fingerprint; answers how many were restored and dropped.
   * @example set.restore(decode(bytes) as RuleSetSnapshot) // { restored: 12, dropped: 0 }
   */
  restore(snap: RuleSetSnapshot): { restored: number; dropped: number } {
    if (snap.version !== 1) throw new Error(`rule set snapshot: unknown version ${String(snap.version)}`);
    let restored = 0;
    let dropped = 0;
    for (const r of snap.rules) {
      const e = this.entries.find((x) => x.rule.name === r.name);
      if (e === undefined || e.fingerprint !== r.fingerprint) {
        dropped += r.instances.length;
        continue;
      }
      e.instances = new Map(r.instances.map((s) => [s.series, restoreInstance(s, this.windowOf(e))]));
      e.refused = r.refused;
      restored += r.instances.length;
    }
    this.unbind();
    return { restored, dropped };
  }

  private signal(kind: "anomaly" | "trend", sid: number, start: number, end: number, v: string | null, series: SeriesRef, emit: Emit): number {
    if (!this.reads(sid, kind)) return 0;
    const bs = this.bySid[sid] ?? this.bind(sid, series);
    let refused = 0;
    for (let i = 0; i < bs.length; i++) {
      const b = bs[i];
      const e = b.entry;
      const expr = e.rule.expr;
      if (expr.kind !== kind) continue;
      const inst = b.inst ?? this.open(b, series.key);
      if (inst === null) {
        if (this.justRefused) refused++;
        continue;
      }
      const cond = expr.kind === "anomaly"
        ? v !== null && severityRank[v as AnomalySeverity] >= severityRank[expr.severity]
        : v === expr.class;
      this.judge(e, series, emit, inst, end, end - start, cond, kind === "anomaly" ? v ?? "none" : v);
    }
    return refused;
  }

  private judge(e: Entry, series: SeriesRef, emit: Emit, inst: RuleInstance, end: number, holdMs: number, cond: boolean, value: AlertValue): void {
    this.ctxEntry = e;
    this.ctxSeries = series;
    this.ctxEmit = emit;
    evaluateInstance(inst, e.timing, end, holdMs, cond, value, this.onTransition);
  }

  /** The instance of a binding, created if the rule has room; null (refused, counted once per binding) if not. */
  private open(b: Binding, key: string): RuleInstance | null {
    this.justRefused = false;
    if (b.refused) return null;
    const e = b.entry;
    if (e.instances.size >= this.instancesPerRuleMax) {
      b.refused = true;
      e.refused++;
      this.justRefused = true;
      return null;
    }
    const inst = new RuleInstance(key, this.windowOf(e));
    e.instances.set(key, inst);
    b.inst = inst;
    return inst;
  }

  private windowOf(e: Entry): RollingWindow | null {
    return e.rolling === null ? null : new RollingWindow(e.rolling.agg, e.rolling.overMs, e.rolling.sourceMs);
  }

  private bind(sid: number, series: SeriesRef): Binding[] {
    let out: Binding[] = noBindings;
    let mask = 0;
    for (const e of this.entries) {
      if (!selectorMatches(e.rule.selector, series.name, series.tags)) continue;
      if (out === noBindings) out = [];
      out.push({ entry: e, inst: e.instances.get(series.key) ?? null, refused: false });
      mask |= this.sourceBits.get(sourceOf(e))!;
    }
    this.bySid[sid] = out;
    this.readsBySid[sid] = mask;
    return out;
  }

  /** Every series bound afresh at its next window. */
  private unbind(): void {
    this.bySid = [];
    this.readsBySid = [];
  }

  /** After a change of rules: the sources numbered again, every series bound afresh. */
  private renumber(): void {
    this.sourceBits = new Map();
    for (const e of this.entries) {
      const source = sourceOf(e);
      if (!this.sourceBits.has(source)) this.sourceBits.set(source, 1 << this.sourceBits.size);
    }
    assert(this.sourceBits.size <= 31, "sources fit a 31-bit mask"); // specs + rollups + 2 signals, far fewer
    this.unbind();
  }
}

/** What a rule reads: the spec label of its windows, or its signal. */
function sourceOf(e: Entry): string {
  return e.source ?? e.rule.expr.kind;
}

/** The aggregate of a closed window; rate is per second of the window. */
function pick(agg: string, w: WindowResult): number {
  switch (agg) {
    case "count": return w.count;
    case "sum": return w.sum;
    case "min": return w.min;
    case "max": return w.max;
    case "avg": return w.avg;
    case "p50": return w.p50;
    case "p95": return w.p95;
    case "p99": return w.p99;
    default: return w.count / ((w.end - w.start) / 1000);
  }
}

/** `v <op> threshold`. @example compare(">=", 3, 3) // true */
export function compare(op: Comparison, v: number, threshold: number): boolean {
  switch (op) {
    case ">": return v > threshold;
    case ">=": return v >= threshold;
    case "<": return v < threshold;
    case "<=": return v <= threshold;
    case "==": return v === threshold;
    default: return v !== threshold;
  }
}
