import { describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import {
  type AlertState, type AlertValue, evaluateInstance, type InstanceSnapshot, quietInstance, restoreInstance, RuleInstance, snapshotInstance,
} from "../src/actors/rules/instance.ts";
import { PartitionPipeline, rollupsFor } from "../src/actors/partition-pipeline.ts";
import { RollingWindow } from "../src/actors/rules/rolling.ts";
import { type RuleSetSnapshot, RuleSet, type RuleTransition, type SeriesRef } from "../src/actors/rules/rule-set.ts";
import { parseRule, type RuleInput } from "../src/actors/rules/rule.ts";
import { createWindowLogic, type WindowOutput, type WindowResult } from "../src/actors/window.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import { seriesKey } from "../src/runtime/series.ts";
import { mulberry32 } from "./helpers/prng.ts";

const seed = Number(process.env.RULES_SEED ?? 1515);
console.log(`rules tests: seed ${seed} (RULES_SEED=… to change)`);

type Rec = { state: AlertState; ts: number; value: AlertValue };
type Step =
  | { kind: "eval"; end: number; cond: boolean; value: number }
  | { kind: "quiet"; at: number };
const grid = 1000; // every time in these sequences is a whole second

// ---------------------------------------------------------------------------
// The reference: instance.ts's contract restated over a timeline. The
// condition c(x) is written out second by second as evaluations arrive
// (c = the verdict for [end, end + hold), false where no verdict stands), and
// the runs that `for` and keep_firing_for measure are found by walking back
// along it, instead of being carried as state.

function reference(steps: Step[], forMs: number, keepMs: number, holdMs: number): { recs: Rec[][]; states: AlertState[] } {
  const c = new Uint8Array(steps.length * 200 + 1000);
  let lastEnd = -Infinity;
  let first = Infinity;
  let seenTo = -Infinity;
  let state = "inactive" as AlertState; // widened: `to` assigns it
  const at = (x: number) => c[x / grid] === 1;
  /** The earliest x such that c is `v` on [x, from]. */
  const runStart = (from: number, v: boolean) => {
    let x = from;
    while (x - grid >= first && at(x - grid) === v) x -= grid;
    return x;
  };
  const recs: Rec[][] = [];
  const states: AlertState[] = [];
  for (const s of steps) {
    const out: Rec[] = [];
    const t = s.kind === "eval" ? s.end : s.at;
    const to = (st: AlertState, value: AlertValue, ts = t) => {
      state = st;
      out.push({ state: st, ts, value });
    };
    if (t > seenTo) {
      if (t > lastEnd + holdMs) {
        // [lastEnd + hold, t) had no data: the transitions' instants are where the data ended, and where the false run reached keepMs.
        if (state === "pending") to("inactive", null, lastEnd + holdMs);
        else if (state === "firing" && t - runStart(t - grid, false) >= keepMs) to("resolved", null, runStart(t - grid, false) + keepMs);
      }
      seenTo = t;
      if (s.kind === "eval") {
        c.fill(0, t / grid);
        c.fill(s.cond ? 1 : 0, t / grid, (t + holdMs) / grid);
        lastEnd = t;
        first = Math.min(first, t);
        if (s.cond) {
          if (state === "inactive" || state === "resolved") to(forMs === 0 ? "firing" : "pending", s.value);
          else if (state === "pending" && t - runStart(t, true) >= forMs) to("firing", s.value);
        } else if (state === "pending") to("inactive", s.value);
        else if (state === "firing" && t - runStart(t, false) >= keepMs) to("resolved", s.value);
      }
    }
    recs.push(out);
    states.push(state);
  }
  return { recs, states };
}

/** A random sequence: evaluations 10 s apart with now and then a gap, quiet watermarks, and replays of instants already handled. */
function randomSteps(rng: () => number, n: number): Step[] {
  const steps: Step[] = [];
  const handled: number[] = [];
  let t = 10_000 * (1 + Math.floor(rng() * 10));
  let cond = false;
  for (let i = 0; i < n; i++) {
    const r = rng();
    if (r < 0.1 && handled.length > 0) {
      const end = handled[Math.floor(rng() * handled.length)];
      steps.push({ kind: "eval", end, cond: rng() < 0.5, value: -1 }); // a replay (or an out-of-order window): changes nothing
      continue;
    }
    if (r < 0.16) {
      const at = t + Math.floor(rng() * 12) * 10_000;
      steps.push({ kind: "quiet", at });
      handled.push(at);
      t = Math.max(t, at);
      continue;
    }
    t += r < 0.3 ? 10_000 * (2 + Math.floor(rng() * 8)) : 10_000; // a gap of 20-90 s, or the next window
    if (rng() < 0.3) cond = !cond;
    steps.push({ kind: "eval", end: t, cond, value: i });
    handled.push(t);
  }
  return steps;
}

describe("rules - the state machine against its reference", () => {
  test("rules - seeded sequences with for, keep_firing_for, gaps and replays, through MessagePack at every step", () => {
    const rng = mulberry32(seed);
    let transitions = 0;
    let gaps = 0;
    for (let run = 0; run < 300; run++) {
      const timing = { forMs: [0, 10_000, 20_000, 30_000, 60_000][run % 5], keepFiringForMs: [0, 10_000, 20_000, 40_000][Math.floor(run / 5) % 4] };
      const holdMs = run % 3 === 0 ? 30_000 : 10_000;
      const steps = randomSteps(rng, 200);
      const want = reference(steps, timing.forMs, timing.keepFiringForMs, holdMs);
      let inst = new RuleInstance("x");
      steps.forEach((s, i) => {
        inst = restoreInstance(decode(encode(snapshotInstance(inst))) as InstanceSnapshot, null);
        const got: Rec[] = [];
        const emit = (_: RuleInstance, state: AlertState, ts: number, value: AlertValue) => got.push({ state, ts, value });
        if (s.kind === "eval") evaluateInstance(inst, timing, s.end, holdMs, s.cond, s.value, emit);
        else quietInstance(inst, timing, s.at, emit);
        const ctx = `run ${run} step ${i} ${JSON.stringify(s)} for ${timing.forMs} keep ${timing.keepFiringForMs} hold ${holdMs}`;
        expect({ ctx, got }).toEqual({ ctx, got: want.recs[i] });
        expect({ ctx, state: inst.state }).toEqual({ ctx, state: want.states[i] });
        transitions += got.length;
        gaps += got.filter((g) => g.value === null).length;
      });
    }
    expect(transitions).toBeGreaterThan(5_000); // the sequences exercise the machine, not just sit inactive
    expect(gaps).toBeGreaterThan(200);
  });

  test("rules - for: pending first, firing once the condition has held that long; for 0 fires at once", () => {
    const log: string[] = [];
    const emit = (_: RuleInstance, s: AlertState, ts: number) => log.push(`${s}@${ts / 1000}`);
    const a = new RuleInstance("a");
    for (const end of [10, 20, 30, 40]) evaluateInstance(a, { forMs: 30_000, keepFiringForMs: 0 }, end * 1000, 10_000, true, 1, emit);
    expect(log).toEqual(["pending@10", "firing@40"]);
    log.length = 0;
    const b = new RuleInstance("b");
    evaluateInstance(b, { forMs: 0, keepFiringForMs: 0 }, 10_000, 10_000, true, 1, emit);
    expect(log).toEqual(["firing@10"]);
  });

  test("rules - keep_firing_for: resolves only after the condition has been false that long, judged at evaluations", () => {
    const log: string[] = [];
    const emit = (_: RuleInstance, s: AlertState, ts: number) => log.push(`${s}@${ts / 1000}`);
    const i = new RuleInstance("a");
    const timing = { forMs: 0, keepFiringForMs: 20_000 };
    const ev = (end: number, cond: boolean) => evaluateInstance(i, timing, end * 1000, 10_000, cond, 0, emit);
    ev(10, true);
    ev(20, false);
    ev(30, false);
    ev(40, true); // false for 20 s by then, but judged true: keeps firing
    ev(50, false);
    ev(60, false);
    ev(70, false);
    expect(log).toEqual(["firing@10", "resolved@70"]);
  });

  test("rules - a gap is no data: pending goes inactive, firing resolves once the gap is keep_firing_for long", () => {
    const log: string[] = [];
    const emit = (_: RuleInstance, s: AlertState, ts: number, v: AlertValue) => log.push(`${s}@${ts / 1000}:${v}`);
    const p = new RuleInstance("p");
    evaluateInstance(p, { forMs: 60_000, keepFiringForMs: 0 }, 10_000, 10_000, true, 1, emit);
    evaluateInstance(p, { forMs: 60_000, keepFiringForMs: 0 }, 50_000, 10_000, true, 2, emit); // [20 s, 50 s) had no window
    expect(log).toEqual(["pending@10:1", "inactive@20:null", "pending@50:2"]); // inactive where the data ended, not where the gap was seen
    log.length = 0;
    const f = new RuleInstance("f");
    const timing = { forMs: 0, keepFiringForMs: 30_000 };
    evaluateInstance(f, timing, 10_000, 10_000, true, 1, emit);
    quietInstance(f, timing, 40_000, emit); // no data since 20 s: 20 s < 30 s
    quietInstance(f, timing, 50_000, emit); // 30 s: resolved
    evaluateInstance(f, timing, 50_000, 10_000, true, 3, emit); // at the watermark already handled: a replay
    evaluateInstance(f, timing, 60_000, 10_000, true, 4, emit);
    expect(log).toEqual(["firing@10:1", "resolved@50:null", "firing@60:4"]);
  });

  test("rules - evaluations at or before the last instant change nothing", () => {
    const log: string[] = [];
    const emit = (_: RuleInstance, s: AlertState, ts: number) => log.push(`${s}@${ts / 1000}`);
    const i = new RuleInstance("a");
    const timing = { forMs: 20_000, keepFiringForMs: 0 };
    expect(evaluateInstance(i, timing, 10_000, 10_000, true, 1, emit)).toBe(true);
    expect(evaluateInstance(i, timing, 10_000, 10_000, false, 1, emit)).toBe(false);
    expect(evaluateInstance(i, timing, 5_000, 10_000, false, 1, emit)).toBe(false);
    evaluateInstance(i, timing, 20_000, 10_000, true, 1, emit);
    evaluateInstance(i, timing, 30_000, 10_000, true, 1, emit);
    const before = snapshotInstance(i);
    for (const end of [10_000, 20_000, 30_000]) evaluateInstance(i, timing, end, 10_000, false, 0, emit);
    expect(snapshotInstance(i)).toEqual(before);
    expect(log).toEqual(["pending@10", "firing@30"]);
  });
});

describe("rules - rolling windows", () => {
  test("rules - every aggregate over any span equals a recount of the windows inside it", () => {
    const rng = mulberry32(seed + 1);
    for (const agg of ["count", "sum", "min", "max", "avg", "rate"] as const) {
      for (const spans of [1, 3, 7, 30]) {
        const overMs = spans * 10_000;
        let w = new RollingWindow(agg, overMs, 10_000);
        const all: Array<{ end: number; count: number; sum: number; min: number; max: number }> = [];
        let end = 0;
        for (let i = 0; i < 400; i++) {
          end += 10_000 * (rng() < 0.8 ? 1 : 1 + Math.floor(rng() * spans * 2));
          const count = 1 + Math.floor(rng() * 5);
          const min = rng() * 100 - 50;
          const max = min + rng() * 30;
          const x = { end, count, sum: (min + max) / 2 * count, min, max };
          all.push(x);
          w.push(end, count, agg === "min" ? min : agg === "max" ? max : agg === "sum" || agg === "avg" ? x.sum : 0);
          if (i % 7 === 0) {
            const copy = new RollingWindow(agg, overMs, 10_000);
            copy.restore(decode(encode(w.snapshot())) as Uint8Array);
            w = copy;
          }
          const inside = all.filter((a) => a.end > end - overMs);
          const c = inside.reduce((s, a) => s + a.count, 0);
          const s = inside.reduce((s, a) => s + a.sum, 0);
          const want = { count: c, sum: s, avg: s / c, rate: c / (overMs / 1000), min: Math.min(...inside.map((a) => a.min)), max: Math.max(...inside.map((a) => a.max)) }[agg];
          expect(w.value()).toBe(want);
        }
      }
    }
  });
});

// ---------------------------------------------------------------------------
// The rule set, fed closed windows as the window actor emits them.

const windows = { specs: parseWindowSpecs("10s,60s/10s") };
const seriesOf = (name: string, tags: Record<string, string>): SeriesRef => ({ key: seriesKey(name, tags), name, tags });

function windowResult(sid: number, spec: string, start: number, end: number, values: number[]): WindowResult {
  const sum = values.reduce((a, b) => a + b, 0);
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
  return {
    kind: "window", sid, spec, start, end, count: values.length, sum, min: sorted[0], max: sorted.at(-1)!, avg: sum / values.length,
    p50: q(0.5), p95: q(0.95), p99: q(0.99), first: values[0], last: values.at(-1)!,
  };
}

function ruleSet(rules: RuleInput[], instancesPerRuleMax?: number): RuleSet {
  const set = new RuleSet({ windows, instancesPerRuleMax });
  for (const r of rules) set.set(parseRule(r, { windows }));
  return set;
}

describe("rules - the rule set", () => {
  const series = [
    seriesOf("complaint.response_time", { team: "support" }),
    seriesOf("complaint.response_time", { team: "sales" }),
    seriesOf("page.load", { page: "/" }),
  ];
  const rules: RuleInput[] = [
    { name: "sla", expr: 'avg(complaint.response_time{team="support"}) over 30s > 48', for: "20s", keep_firing_for: "10s" },
    { name: "peak", expr: "max(complaint.*) > 80", advice: "{{series}} peaked at {{value}} ({{labels.team}})" },
    { name: "busy", expr: "rate(*) over 60s >= 0.2", for: "30s", labels: { owner: "ops", team: "core" } },
    { name: "slow-p95", expr: "p95(page.load) over 60s > 70" },
  ];
  /** Random closed windows: per series, "10s" windows with gaps, and the "60s/10s" window that each closes, as a window actor would emit them. */
  function stream(rng: () => number): Array<{ w: WindowResult; s: SeriesRef }> {
    const out: Array<{ w: WindowResult; s: SeriesRef }> = [];
    const raw = series.map(() => [] as Array<{ end: number; values: number[] }>);
    for (let k = 1; k <= 300; k++) {
      const end = 1_000_000 + k * 10_000;
      series.forEach((s, sid) => {
        if (rng() < 0.25) return; // no event in that window: never emitted
        const level = 40 + 30 * Math.sin(k / (10 + sid * 3));
        const values = Array.from({ length: 1 + Math.floor(rng() * 4) }, () => level + rng() * 30);
        raw[sid].push({ end, values });
        out.push({ w: windowResult(sid, "10s", end - 10_000, end, values), s });
        const inside = raw[sid].filter((r) => r.end > end - 60_000).flatMap((r) => r.values);
        out.push({ w: windowResult(sid, "60s/10s", end - 60_000, end, inside), s });
      });
    }
    return out;
  }

  test("rules - restored through MessagePack at every window, replaying what came before, it makes the same transitions", () => {
    const feed = stream(mulberry32(seed + 2));
    const plain = ruleSet(rules);
    const want: RuleTransition[][] = feed.map(({ w, s }) => {
      const out: RuleTransition[] = [];
      plain.evaluate(w, s, (t) => out.push(t));
      return out;
    });
    expect(want.flat().length).toBeGreaterThan(50);
    expect(new Set(want.flat().map((t) => t.rule))).toEqual(new Set(["sla", "peak", "busy", "slow-p95"]));
    let set = ruleSet(rules);
    feed.forEach(({ w, s }, i) => {
      const snap = decode(encode(set.snapshot())) as RuleSetSnapshot;
      set = ruleSet(rules);
      expect(set.restore(snap).dropped).toBe(0);
      const replayed: RuleTransition[] = [];
      for (let j = Math.max(0, i - 5); j < i; j++) set.evaluate(feed[j].w, feed[j].s, (t) => replayed.push(t)); // re-delivered after a crash
      expect(replayed).toEqual([]);
      const out: RuleTransition[] = [];
      set.evaluate(w, s, (t) => out.push(t));
      expect(out).toEqual(want[i]);
    });
  });

  test("rules - a rolling rule's value and transitions are those of a recount fed to the state machine", () => {
    const feed = stream(mulberry32(seed + 3)).filter(({ w }) => w.sid === 0 && w.spec === "10s");
    const set = ruleSet([rules[0]]);
    const got: RuleTransition[] = [];
    const steps: Step[] = [];
    feed.forEach(({ w, s }, i) => {
      set.evaluate(w, s, (t) => got.push(t));
      const inside = feed.slice(0, i + 1).filter((x) => x.w.end > w.end - 30_000);
      const avg = inside.reduce((a, x) => a + x.w.sum, 0) / inside.reduce((a, x) => a + x.w.count, 0);
      expect(set.instancesOf("sla")[0].value).toBe(avg);
      steps.push({ kind: "eval", end: w.end, cond: avg > 48, value: avg });
    });
    const want = reference(steps, 20_000, 10_000, 30_000).recs.flat();
    expect(got.map((t) => ({ state: t.state, ts: t.ts, value: t.value }))).toEqual(want);
    expect(want.length).toBeGreaterThan(10);
  });

  test("rules - a transition carries the alert: series, threshold, severity, labels (tags under the rule's), advice", () => {
    const set = ruleSet([{ ...rules[1], severity: "critical", labels: { owner: "ops" } }]);
    const out: RuleTransition[] = [];
    set.evaluate(windowResult(0, "10s", 0, 10_000, [50, 90]), series[0], (t) => out.push(t));
    expect(out).toEqual([{
      kind: "rule", rule: "peak", series: 'complaint.response_time{team="support"}', state: "firing", value: 90, threshold: 80, ts: 10_000,
      severity: "critical", labels: { team: "support", owner: "ops" }, advice: 'complaint.response_time{team="support"} peaked at 90 (support)',
    }]);
  });

  test("rules - rate is count per second of the window read", () => {
    const set = ruleSet([{ name: "r10", expr: "rate(x) > 0.25" }, { name: "r60", expr: "rate(x) over 60s > 0.25" }, { name: "r30", expr: "rate(x) over 30s > 0" }]);
    const s = seriesOf("x", {});
    set.evaluate(windowResult(0, "10s", 0, 10_000, [1, 1, 1]), s, () => {});
    set.evaluate(windowResult(0, "60s/10s", -50_000, 10_000, [1, 1, 1]), s, () => {});
    set.evaluate(windowResult(0, "10s", 10_000, 20_000, [1]), s, () => {});
    expect(set.instancesOf("r10")[0].value).toBe(0.1);
    expect(set.instancesOf("r60")[0].value).toBe(0.05);
    expect(set.instancesOf("r30")[0].value).toBe(4 / 30);
  });

  test("rules - past the instances a rule may hold, a new series is refused, counted and answered", () => {
    const set = ruleSet([{ name: "any", expr: "count(*) > 0" }], 2);
    const refused = [0, 1, 2, 2].map((sid) => set.evaluate(windowResult(sid, "10s", 0, 10_000, [1]), seriesOf(`s${sid}`, {}), () => {}));
    expect(refused).toEqual([0, 0, 1, 0]); // the third series is refused once, then skipped
    expect(set.stats()).toEqual({ rules: 1, instances: 2, refused: 1 });
  });

  test("rules - quiet: no data resolves a firing instance after keep_firing_for, then the instance is dropped", () => {
    const set = ruleSet([{ name: "peak", expr: "max(x) > 80", keep_firing_for: "30s" }]);
    const s = seriesOf("x", {});
    const out: string[] = [];
    const emit = (t: RuleTransition) => out.push(`${t.state}@${t.ts / 1000}:${t.value}`);
    set.evaluate(windowResult(0, "10s", 0, 10_000, [90]), s, emit);
    set.quiet(0, s, 40_000, emit); // no data since 20 s (the window's end + its 10 s): 20 s < 30 s
    expect(set.stats().instances).toBe(1);
    set.quiet(0, s, 50_000, emit);
    expect(out).toEqual(["firing@10:90", "resolved@50:null"]);
    expect(set.stats().instances).toBe(0);
  });

  test("rules - anomaly(...) and trend(...) read the severities and classes they are fed", () => {
    const set = ruleSet([
      { name: "odd", expr: "anomaly(x) >= warning" },
      { name: "very-odd", expr: "anomaly(x) >= critical" },
      { name: "up", expr: "trend(x) == rising", for: "20s" },
    ]);
    const s = seriesOf("x", {});
    const out: string[] = [];
    const emit = (t: RuleTransition) => out.push(`${t.rule}:${t.state}@${t.ts / 1000}:${t.value}`);
    for (const [end, sev] of [[10, null], [20, "warning"], [30, "critical"], [40, null]] as const) {
      set.anomaly({ sid: 0, start: end * 1000 - 10_000, end: end * 1000, severity: sev }, s, emit);
    }
    for (const [end, cls] of [[60, "rising"], [70, "rising"], [80, "rising"], [90, "stable"]] as const) {
      set.trend({ sid: 0, start: end * 1000 - 60_000, end: end * 1000, class: cls }, s, emit);
    }
    expect(out).toEqual([
      "odd:firing@20:warning", "very-odd:firing@30:critical", "odd:resolved@40:none", "very-odd:resolved@40:none",
      "up:pending@60:rising", "up:firing@80:rising", "up:resolved@90:stable",
    ]);
  });

  test("rules - changing a rule keeps its instances unless its expression, for or keep_firing_for change", () => {
    const set = ruleSet([rules[1]]);
    set.evaluate(windowResult(0, "10s", 0, 10_000, [90]), series[0], () => {});
    set.set(parseRule({ ...rules[1], advice: "new words", severity: "critical" }));
    expect(set.instancesOf("peak").map((i) => i.state)).toEqual(["firing"]);
    const snap = decode(encode(set.snapshot())) as RuleSetSnapshot;
    set.set(parseRule({ ...rules[1], keep_firing_for: "1m" }));
    expect(set.instancesOf("peak")).toEqual([]);
    expect(set.restore(snap)).toEqual({ restored: 0, dropped: 1 });
    expect(set.delete("peak")).toBe(true);
    expect(set.stats()).toEqual({ rules: 0, instances: 0, refused: 0 });
  });

  test("rules - a result no rule of its series reads is passed over; after a change of rules, a sweep that drops and a restore the series are bound afresh", () => {
    const x = seriesOf("x", {});
    const y = seriesOf("y", {});
    const out: string[] = [];
    const emit = (t: RuleTransition) => out.push(`${t.rule}:${t.series}:${t.state}@${t.ts / 1000}`);
    const w = (sid: number, spec: string, end: number, v: number) => windowResult(sid, spec, end - (spec === "10s" ? 10_000 : 60_000), end, [v]);
    const set = ruleSet([{ name: "ten", expr: "max(x) > 80" }, { name: "odd", expr: "anomaly(y) >= warning" }]);
    set.evaluate(w(0, "60s/10s", 10_000, 90), x, emit); // x's rule reads 10 s windows only
    set.evaluate(w(0, "10s", 10_000, 90), x, emit);
    set.anomaly({ sid: 0, start: 0, end: 10_000, severity: "critical" }, x, emit); // no rule of x reads anomalies
    set.evaluate(w(1, "10s", 10_000, 90), y, emit); // y's rule reads anomalies only
    set.anomaly({ sid: 1, start: 0, end: 10_000, severity: "warning" }, y, emit);
    expect(out.splice(0)).toEqual(["ten:x:firing@10", "odd:y:firing@10"]);

    set.set(parseRule({ name: "sixty", expr: "max(*) over 60s > 80" }, { windows })); // both series now read 60 s windows too
    set.evaluate(w(0, "60s/10s", 20_000, 90), x, emit);
    set.evaluate(w(1, "60s/10s", 20_000, 90), y, emit);
    expect(out.splice(0)).toEqual(["sixty:x:firing@20", "sixty:y:firing@20"]);

    expect(set.delete("ten")).toBe(true); // the sources are numbered again: x's old mask would now read as anomaly + 60 s
    set.anomaly({ sid: 0, start: 20_000, end: 30_000, severity: "critical" }, x, emit);
    set.evaluate(w(0, "60s/10s", 30_000, 10), x, emit);
    set.anomaly({ sid: 1, start: 20_000, end: 30_000, severity: null }, y, emit);
    expect(out.splice(0)).toEqual(["sixty:x:resolved@30", "odd:y:resolved@20"]); // y's last verdict stood to 20 s: no data since

    const frontierOf = () => 1_000_000;
    expect(set.sweep(frontierOf, (key) => (key === x.key ? x : y), emit)).toBe(3); // x's sixty (resolved), y's sixty (firing, resolved now) and odd
    expect(out.splice(0)).toEqual(["sixty:y:resolved@80"]);
    set.evaluate(w(1, "60s/10s", 1_010_000, 90), y, emit);
    const snap = decode(encode(set.snapshot())) as RuleSetSnapshot;
    const restored = ruleSet([{ name: "odd", expr: "anomaly(y) >= warning" }, { name: "sixty", expr: "max(*) over 60s > 80" }]);
    expect(restored.restore(snap)).toEqual({ restored: 1, dropped: 0 });
    restored.evaluate(w(1, "60s/10s", 1_020_000, 10), y, emit);
    restored.anomaly({ sid: 1, start: 1_010_000, end: 1_020_000, severity: "warning" }, y, emit);
    expect(out.splice(0)).toEqual(["sixty:y:firing@1010", "sixty:y:resolved@1020", "odd:y:firing@1020"]);
  });

  test("rules - a sweep with a frontier bound asks no frontier of an instance whose verdict stands to the bound, and decides as one without it", () => {
    const rules: RuleInput[] = [{ name: "peak", expr: "max(x*) > 80", keep_firing_for: "20s" }, { name: "slow", expr: "avg(x*) over 60s > 50", for: "10s" }];
    const xs = Array.from({ length: 6 }, (_, i) => seriesOf(`x${i}`, {}));
    const sidOf = new Map(xs.map((s, sid) => [s.key, sid]));
    const rng = mulberry32(seed + 4);
    const delays = xs.map(() => Math.floor(rng() * 5_000));
    const make = () => {
      const set = ruleSet(rules);
      xs.forEach((s, sid) => {
        const end = 10_000 * (sid + 1); // peak holds to end + 10 s, slow to end + 60 s
        set.evaluate(windowResult(sid, "10s", end - 10_000, end, [90]), s, () => {});
        set.evaluate(windowResult(sid, "60s/10s", end - 60_000, end, [90]), s, () => {});
      });
      return set;
    };
    const bounded = make();
    const plain = make();
    // Asked at 45 s: peak of x0-x2 (x0 resolves, dropped); at 75 s: peak of x1-x5 (x1-x3 resolve), slow of x0 (pending, goes inactive);
    // at 130 s: peak of x4, x5 and slow of x1-x5.
    for (const [bound, askedWant] of [[45_000, 3], [75_000, 6], [130_000, 7]]) {
      const frontiers = (asked: string[]) => (key: string) => {
        asked.push(key);
        return bound - delays[sidOf.get(key)!];
      };
      const seriesOfKey = (key: string) => xs[sidOf.get(key)!];
      const asked: string[] = [];
      const got: RuleTransition[] = [];
      const want: RuleTransition[] = [];
      const dropped = bounded.sweep(frontiers(asked), seriesOfKey, (t) => got.push(t), bound);
      expect(plain.sweep(frontiers([]), seriesOfKey, (t) => want.push(t))).toBe(dropped);
      expect(got).toEqual(want);
      expect(bounded.stats()).toEqual(plain.stats());
      expect(asked.length).toBe(askedWant); // only instances whose verdict ends before the bound
    }
    expect(bounded.stats().instances).toBe(0); // all silent by 130 s: resolved or gone inactive, dropped
  });
});

describe("rules - in the partition pipeline", () => {
  test("rules - a series that stops sending resolves at the instant its data says, at the first tick whose frontier reaches it", () => {
    const t0 = Date.UTC(2025, 10, 22, 8, 0, 0);
    const specs = parseWindowSpecs("10s,60s/10s");
    const windows = { specs, rollups: rollupsFor(specs) };
    const rules = [
      parseRule({ name: "peak", expr: "max(x) > 80", keep_firing_for: "20s" }, { windows }),
      parseRule({ name: "peak-now", expr: "max(x) > 80" }, { windows }),
    ];
    const p = new PartitionPipeline({ specs, latenessMs: 2_000, seriesMax: 10, rollups: windows.rollups, rules });
    p.addSeries(0, "x", {});
    const seen: string[] = [];
    const take = (nowMs: number) => {
      for (const t of p.take(1_000).r) seen.push(`${t.rule} ${t.state}@${(t.ts - t0) / 1000} (tick ${(nowMs - t0) / 1000})`);
    };
    for (let i = 0; i < 30; i++) { // one event a second for 30 s, received as stamped: a real-time producer
      const ts = t0 + i * 1_000;
      p.handleBatch({ n: 1, sid: Uint32Array.of(0), ts: Float64Array.of(ts), value: Float64Array.of(90), recvMs: ts });
      take(ts);
    }
    for (let now = t0 + 30_000; now <= t0 + 80_000; now += 500) { // then silence; the worker ticks on
      p.tick(now);
      take(now);
    }
    // The last window [20 s, 30 s) closes by the quiet rule at 32 s and holds its verdict to 40 s: the frontier
    // (now − delay 0 − lateness 2 s) passes 40 s at the first sweep after 42 s (one a second), where peak-now resolves;
    // peak's false run from 40 s reaches keep_firing_for at 60 s, which the frontier reaches at the sweep at 62 s.
    expect(seen).toEqual([
      "peak firing@10 (tick 12)", "peak-now firing@10 (tick 12)", "peak-now resolved@40 (tick 43)", "peak resolved@60 (tick 62)",
    ]);
    expect(p.ruleStats().instances).toBe(0);
  });
});

describe("rules - the complaint SLA scenario, in seconds", () => {
  test("rules - avg over 30s > 48 for 30s: pending, then firing; resolved keep_firing_for after the average falls", () => {
    const t0 = Date.UTC(2025, 10, 22, 8, 0, 0);
    const logic = createWindowLogic({ specs: parseWindowSpecs("10s,60s/10s"), latenessMs: 0, seriesMax: 10 });
    const st = logic.init();
    const series = [seriesOf("complaint.response_time", { team: "support" }), seriesOf("complaint.response_time", { team: "sales" })];
    const set = ruleSet([{
      name: "complaint-sla", expr: 'avg(complaint.response_time{team="support"}) over 30s > 48', for: "30s", keep_firing_for: "20s",
      severity: "critical", advice: "Mean response {{value}} s is over {{threshold}} s: open the escalation pipeline", actions: ["escalate", "log"],
    }]);
    const alerts: RuleTransition[] = [];
    const onWindow = (o: WindowOutput) => {
      if (o.kind === "window") set.evaluate(o, series[o.sid], (t) => alerts.push(t));
    };
    // Response times per 10 s window of support: 10 s, then 100 s for a minute, then 10 s again; sales is always slow but not watched.
    const supportAt = (k: number) => (k >= 3 && k <= 8 ? 100 : 10);
    for (let i = 0; i < 80; i++) {
      const ts = t0 + i * 2000;
      const k = Math.floor(i / 5);
      logic.handle(st, { n: 2, sid: Uint32Array.of(0, 1), ts: Float64Array.of(ts, ts), value: Float64Array.of(supportAt(k), 500), recvMs: ts }, onWindow);
    }
    logic.tick(st, t0 + 200_000, onWindow);
    expect(alerts.map((a) => ({ state: a.state, at: (a.ts - t0) / 1000, value: a.value }))).toEqual([
      { state: "pending", at: 50, value: 70 },
      { state: "firing", at: 80, value: 100 },
      { state: "resolved", at: 130, value: 10 },
    ]);
    expect(alerts[1]).toMatchObject({
      kind: "rule", rule: "complaint-sla", series: 'complaint.response_time{team="support"}', threshold: 48, severity: "critical",
      labels: { team: "support" }, advice: "Mean response 100 s is over 48 s: open the escalation pipeline",
    });
  });
});
