/**
 * The anomaly actor's pure logic: per series, an online robust z-score over
 * the raw values (handle) and, with its own state, over the event counts of
 * the series' closed tumbling windows (handleWindowCount), so a burst of
 * events is caught as well as an odd value.
 *
 * Method. Each value is first judged, then learnt. The baseline predicts the
 * next value from a local level and slope (Holt's double exponential
 * smoothing, gain 2/(levelWindow + 1) for the level and its square for the
 * slope), so slow drift and daily-style cycles are followed instead of
 * alarmed on: on a sinusoid sampled 600 times a period the prediction lags by
 * about 1 % of the amplitude. The spread is an exponentially weighted variance
 * of the prediction errors over about `window` values. z = (value − mean) /
 * std, mean being the prediction and std the spread (widened by a
 * Student-t-style 1 + (warningZ² + 1)/(4ν) while it rests on ν values, so the
 * first verdicts are not trigger-happy); |z| ≥ warningZ is a warning,
 * |z| ≥ criticalZ critical. The updates are robust (Huber): an error beyond
 * clip·std moves level, slope and variance as if it were clip·std, so a 12 σ
 * spike widens the band by about 4 % and a 6 σ spike 20 values later is still
 * found. A value beyond clip/2 on the same side as the one before continues
 * a run. Values of a run beyond the clip (all but its first) are held out of
 * the baseline, so a burst does not drag it; `shiftConfirm` in a row are a
 * level shift: the level jumps to their mean, slope and spread kept. A shift
 * is so anomalous for shiftConfirm values at most and raises one alert (two
 * if it escalates), where a level creeping over would keep alerting.
 *
 * Verdicts and alerts. The first `warmup` values of a series (and,
 * separately, of its window counts) only build the baseline. After an alert
 * the series raises no new alert from the same source for `cooldownMs` of
 * event time unless the severity rises (warning → critical: one escalation at
 * most), so one burst is one alert; spikes closer than the cooldown are one
 * alert too, by design. The alert carries its explanation: mean and std of
 * the baseline, how many values the spread rests on (baselineN) and from
 * when (baselineFromTs, approximate).
 *
 * Tuning. z is calibrated: on Gaussian noise |z| ≥ 3 happens about 27 times
 * in 10,000 values, |z| ≥ 4 about 0.8 times and |z| ≥ 5 about 0.006 times, so
 * warningZ is the knob that trades sensitivity for false alarms: at the
 * default 3 expect ~27 warnings per 10,000 quiet values (fewer when the
 * cooldown merges them), at 4 about one; criticalZ 5 is all but silent on
 * noise. A longer `window` steadies the spread but adapts more slowly to a
 * new noise level; a longer `levelWindow` lowers the prediction noise
 * (std ≈ 1.05 σ on white noise at 20) but follows fast cycles less well: keep
 * it below ~1/30 of the shortest cycle, counted in values. A lower `clip`
 * or `shiftConfirm` believes a change sooner. For a quantized sensor set
 * `minStd` to its resolution, or a series that sat exactly constant alerts
 * on its first one-step change.
 *
 * Per series. warningZ, criticalZ, cooldownMs and window (AnomalyKnobs) can
 * be set for one series (setSeriesKnobs; the config file's `anomalies:`,
 * anomaly-knobs.ts), over the options'. They are configuration, not state:
 * the logic keeps them, a snapshot does not, and whoever restores sets them
 * again (the partition pipeline does as it learns each series' name), so a
 * snapshot restores whatever the knobs, and a changed knob applies to the
 * baseline as it stands.
 *
 * Hot path: the state is two Float64Arrays (values, window counts) with one
 * row of `fields` numbers per dense series id, grown by doubling up to
 * seriesMax; handle() allocates nothing per event, only alerts are new
 * objects. Deterministic: the same inputs give the same alerts, and
 * snapshot() → MessagePack → restore() continues identically.
 *
 * @example
 *   const logic = createAnomalyLogic({ seriesMax: 1000 });
 *   const st = logic.init();
 *   logic.handle(st, batch, (a) => alerts.push(a));                        // raw values
 *   logic.handleWindowCount(st, 7, 1_700_000_010_000, 412, (a) => alerts.push(a)); // a closed 10 s window
 *   logic.openAnomaly(st, 7); // the alert still in its cooldown, or null
 *   logic.setSeriesKnobs(8, { warningZ: 4, cooldownMs: 300_000 }); // series 8 from now on
 */
import { strict as assert } from "node:assert";
import type { ActorLogic } from "../runtime/actor.ts";
import { float64Of } from "../sketch/quantile.ts";
import type { EventBatch } from "./window.ts";

export interface AnomalyOptions {
  /** Series ids are dense and below this (an id at or past it is a programmer error). */
  seriesMax: number;
  /** |z| at or above which a value is a warning. Default 3; 4 for ~1 false alarm per 10,000 quiet values. */
  warningZ?: number;
  /** |z| at or above which a value is critical. Default 5. */
  criticalZ?: number;
  /** Values (or window counts) of a series seen before its first verdict. Default 30. */
  warmup?: number;
  /** Event-time ms after an alert during which the same series and source raise no new alert unless severity rises. Default 60,000. */
  cooldownMs?: number;
  /** Values the spread (variance of prediction errors) effectively rests on. Default 200. */
  window?: number;
  /** Values the level and slope follow (gain 2/(n + 1)); shorter follows faster cycles, longer is steadier. Default 20. */
  levelWindow?: number;
  /** Huber threshold in std: an error beyond it updates the baseline as if it were this large. Default 3. */
  clip?: number;
  /** Same-side values beyond clip/2, in a row, that confirm a level shift and re-baseline the level. Default 8. */
  shiftConfirm?: number;
  /** Floor of the values' std, in their unit (set it to a quantized sensor's resolution). Default 1e-9. */
  minStd?: number;
  /** Floor of the window counts' std, in events, so a metronome-like source does not alert on ±1 event. Default 1. */
  countMinStd?: number;
}

/** The options one series may have of its own (setSeriesKnobs); the rest are the logic's. */
export type AnomalyKnobs = Required<Pick<AnomalyOptions, "warningZ" | "criticalZ" | "cooldownMs" | "window">>;

export interface Anomaly {
  kind: "anomaly";
  sid: number;
  source: "value" | "count";
  ts: number;
  value: number;
  z: number;
  /** The baseline's prediction for this value (its centre). */
  mean: number;
  /** The baseline's spread (slightly widened while it rests on few values): z = (value − mean) / std. */
  std: number;
  severity: "warning" | "critical";
  /** How many values the spread rests on (effective count). */
  baselineN: number;
  /** Event time the baseline reaches back to (approximate). */
  baselineFromTs: number;
}

export interface AnomalyStats {
  series: number;
  anomalies: number;
}

/** Plain data: `fields` numbers per series row, for rows [0, rows); the last alert per series and source. */
export interface AnomalySnapshot {
  version: 1;
  fields: number;
  rows: number;
  series: number;
  anomalies: number;
  value: Float64Array | Uint8Array;
  count: Float64Array | Uint8Array;
  alerts: Anomaly[];
}

/**
 * The one rule for an open anomaly (the series listing's and the actor's):
 * the series' newest event time is still within the alert's cooldown.
 * @example isAnomalyOpen(alert.ts, newestTs, anomalyDefaults.cooldownMs)
 */
export function isAnomalyOpen(anomalyTs: number, newestTs: number, cooldownMs: number): boolean {
  return newestTs - anomalyTs < cooldownMs;
}

export interface AnomalyLogic extends ActorLogic<AnomalyState, EventBatch, Anomaly> {
  /**
   * Burst detection over a series' closed tumbling-window counts: called once per closed base window (e.g. 10 s) with its event count.
   * @example logic.handleWindowCount(st, sid, w.end, w.count, emit);
   */
  handleWindowCount(state: AnomalyState, sid: number, windowEnd: number, count: number, emit: Emit): void;
  /**
   * The latest open anomaly of a series, for the series listing: its last alert if within cooldown of the newest ts seen, else null.
   * @example logic.openAnomaly(st, sid)?.severity // "critical"
   */
  openAnomaly(state: AnomalyState, sid: number): Anomaly | null;
  /**
   * A series' own knobs from now on (those not given stay the options'); kept by the logic for every state, not snapshotted.
   * @example logic.setSeriesKnobs(sid, { warningZ: 4, criticalZ: 6 });
   */
  setSeriesKnobs(sid: number, knobs: Partial<AnomalyKnobs>): void;
  snapshot(state: AnomalyState): AnomalySnapshot;
  stats(state: AnomalyState): AnomalyStats;
}

type Emit = (a: Anomaly) => void;

export const anomalyDefaults = {
  warningZ: 3,
  criticalZ: 5,
  warmup: 30,
  cooldownMs: 60_000,
  window: 200,
  levelWindow: 20,
  clip: 3,
  shiftConfirm: 8,
  minStd: 1e-9,
  countMinStd: 1,
} as const;

// One row per series and source. Fields:
const N = 0; // values seen
const LEVEL = 1;
const SLOPE = 2; // per value
const VAR = 3; // of the one-step prediction errors
const EWTS = 4; // EW mean of ts at the spread's gain: the baseline's centre in time
const MAXTS = 5; // newest ts seen
const RUN = 6; // signed count of consecutive same-side values beyond clip/2
const RUNSUM = 7; // sum of their values
const fields = 8;

const rowsInitial = 64;
/** Residuals the spread must rest on before it is trusted to clip during warm-up. */
const warmClipFrom = 10;

/** One source's rows: values or window counts. */
class Rows {
  /** Last alert per series (sparse): the cooldown's anchor and openAnomaly's answer. */
  readonly last: Array<Anomaly | undefined> = [];
  constructor(public rows: Float64Array, readonly source: "value" | "count") {}
}

export class AnomalyState {
  capacity: number;
  series = 0;
  anomalies = 0;
  readonly value: Rows;
  readonly count: Rows;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.value = new Rows(new Float64Array(capacity * fields), "value");
    this.count = new Rows(new Float64Array(capacity * fields), "count");
  }
}

/**
 * The anomaly logic (see the module comment for the method and its knobs).
 * @example const logic = createAnomalyLogic({ seriesMax: 100_000, warningZ: 4 });
 */
export function createAnomalyLogic(opts: AnomalyOptions): AnomalyLogic {
  const d = new Detector(opts);
  return {
    init: () => new AnomalyState(Math.min(rowsInitial, opts.seriesMax)),
    handle: (st, batch, emit) => d.handle(st, batch, emit),
    handleWindowCount: (st, sid, windowEnd, count, emit) => {
      if (sid >= st.capacity) d.grow(st, sid);
      d.observe(st, st.count, d.countMinStd, sid, windowEnd, count, emit);
    },
    openAnomaly: (st, sid) => d.openAnomaly(st, sid),
    setSeriesKnobs: (sid, knobs) => d.setSeriesKnobs(sid, knobs),
    snapshot: (st) => d.snapshot(st),
    restore: (snap) => d.restore(snap as AnomalySnapshot),
    stats: (st) => ({ series: st.series, anomalies: st.anomalies }),
  };
}

/** E[min(Z², c²)] for a standard normal Z: what a variance of errors clipped at c·σ converges to, in σ². */
function clippedSecondMoment(c: number): number {
  const pdf = Math.exp(-c * c / 2) / Math.sqrt(2 * Math.PI);
  const inside = erf(c / Math.SQRT2); // P(|Z| < c)
  return inside - 2 * c * pdf + c * c * (1 - inside);
}

/** Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), for c ≥ 0; enough for a constant. */
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * x);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return 1 - poly * Math.exp(-x * x);
}

/** One set of AnomalyKnobs and what follows from them, shared by every series that has it. */
class Tuning {
  readonly warningZ: number;
  readonly criticalZ: number;
  readonly cooldownMs: number;
  readonly window: number;
  readonly spreadGain: number;
  /** From this many values on, 1/(n − 1) is below spreadGain. */
  readonly spreadSettled: number;
  /**
   * A spread learnt from ν errors is itself uncertain, which fattens the
   * tails of z (Student's t). std is widened by 1 + tail/ν, ν = n − 2 and
   * then `window`: the t quantile's first-order term at warningZ, so the
   * warning rate on Gaussian noise is the nominal one from the first verdict on.
   */
  readonly tail: number;
  readonly tailSettled: number;

  constructor(k: AnomalyKnobs) {
    assert(k.warningZ > 0 && k.warningZ <= k.criticalZ, "0 < warningZ ≤ criticalZ");
    assert(k.cooldownMs >= 0, "cooldownMs ≥ 0");
    assert(k.window >= 2, "window ≥ 2");
    this.warningZ = k.warningZ;
    this.criticalZ = k.criticalZ;
    this.cooldownMs = k.cooldownMs;
    this.window = k.window;
    this.spreadGain = 2 / (k.window + 1);
    this.spreadSettled = Math.floor(1 / this.spreadGain) + 1;
    this.tail = (k.warningZ * k.warningZ + 1) / 4;
    this.tailSettled = 1 + this.tail / k.window;
  }
}

const tuningKey = (k: AnomalyKnobs) => `${k.warningZ}|${k.criticalZ}|${k.cooldownMs}|${k.window}`;

class Detector {
  readonly countMinStd: number;
  private readonly seriesMax: number;
  private readonly warmup: number;
  private readonly clip: number;
  private readonly shiftConfirm: number;
  /** Half the clip: a value this far out on the same side as the one before continues a run. */
  private readonly shiftBand: number;
  private readonly minStd: number;
  private readonly levelGain: number;
  private readonly slopeGain: number;
  /** Divides a clipped squared error so the spread of Gaussian errors is unbiased. */
  private readonly consistency: number;
  /** The options' knobs: those of every series without its own. */
  private readonly base: Tuning;
  /** Series' own knobs by sid, the base filling the gaps so the array stays packed; past its end, the base. */
  private readonly bySid: Tuning[] = [];
  /** The distinct knobs set so far (tuningKey): series that share knobs share one Tuning. */
  private readonly tunings = new Map<string, Tuning>();

  constructor(opts: AnomalyOptions) {
    const o: Required<AnomalyOptions> = { ...anomalyDefaults, seriesMax: opts.seriesMax };
    for (const [k, v] of Object.entries(opts)) if (v !== undefined) Object.assign(o, { [k]: v }); // an explicit undefined keeps the default
    assert(Number.isInteger(o.seriesMax) && o.seriesMax >= 1, "seriesMax ≥ 1");
    assert(Number.isInteger(o.warmup) && o.warmup >= 2, "warmup ≥ 2 values");
    assert(o.levelWindow >= 1, "levelWindow ≥ 1");
    assert(o.clip >= 1, "clip ≥ 1 std");
    assert(Number.isInteger(o.shiftConfirm) && o.shiftConfirm >= 2, "shiftConfirm ≥ 2");
    assert(o.minStd > 0 && o.countMinStd > 0, "std floors > 0");
    this.seriesMax = o.seriesMax;
    this.warmup = o.warmup;
    this.clip = o.clip;
    this.shiftConfirm = o.shiftConfirm;
    this.shiftBand = o.clip / 2;
    this.minStd = o.minStd;
    this.countMinStd = o.countMinStd;
    this.levelGain = 2 / (o.levelWindow + 1);
    this.slopeGain = this.levelGain * this.levelGain;
    this.consistency = clippedSecondMoment(o.clip);
    this.base = new Tuning(o);
    this.tunings.set(tuningKey(o), this.base);
  }

  setSeriesKnobs(sid: number, knobs: Partial<AnomalyKnobs>): void {
    assert(Number.isInteger(sid) && sid >= 0 && sid < this.seriesMax, `series id ${sid} within seriesMax ${this.seriesMax}`);
    const b = this.base;
    const k: AnomalyKnobs = {
      warningZ: knobs.warningZ ?? b.warningZ, criticalZ: knobs.criticalZ ?? b.criticalZ,
      cooldownMs: knobs.cooldownMs ?? b.cooldownMs, window: knobs.window ?? b.window,
    };
    const key = tuningKey(k);
    let t = this.tunings.get(key);
    if (t === undefined) {
      t = new Tuning(k); // asserts the knobs; once per distinct set
      this.tunings.set(key, t);
    }
    while (this.bySid.length < sid) this.bySid.push(b);
    this.bySid[sid] = t;
  }

  /** A series' knobs: read once per value, allocation-free. */
  private tuningOf(sid: number): Tuning {
    return sid < this.bySid.length ? this.bySid[sid] : this.base;
  }

  handle(st: AnomalyState, b: EventBatch, emit: Emit): void {
    const { n, sid, ts, value } = b;
    const minStd = this.minStd;
    for (let i = 0; i < n; i++) {
      const s = sid[i];
      if (s >= st.capacity) this.grow(st, s);
      this.observe(st, st.value, minStd, s, ts[i], value[i], emit);
    }
  }

  /** One value of one series: the verdict against the baseline so far, then the robust update. */
  observe(st: AnomalyState, src: Rows, minStd: number, sid: number, t: number, v: number, emit: Emit): void {
    const rows = src.rows;
    const o = sid * fields;
    const n = rows[o + N] + 1;
    rows[o + N] = n;
    if (t > rows[o + MAXTS]) rows[o + MAXTS] = t;
    const tu = this.tuningOf(sid);
    if (n <= this.warmup) {
      this.warm(st, src, tu, minStd, o, n, t, v);
      return;
    }
    // Until the configured gain is reached, 1/(n − 1): a plain mean over all values so far.
    const settled = n > tu.spreadSettled;
    const spread = settled ? tu.spreadGain : 1 / (n - 1);
    const pred = rows[o + LEVEL] + rows[o + SLOPE];
    const sd = Math.max(Math.sqrt(rows[o + VAR]), minStd) * (settled ? tu.tailSettled : 1 + tu.tail / (n - 2));
    const e = v - pred;
    const warn = tu.warningZ * sd;
    if (e >= warn || e <= -warn) this.verdict(st, src, tu, sid, t, v, e / sd, pred, sd, n, rows[o + EWTS], emit);
    rows[o + EWTS] += spread * (t - rows[o + EWTS]);
    const band = this.shiftBand * sd;
    if (e > band || e < -band) {
      this.offBand(rows, o, pred, v, e, this.clip * sd, spread);
      return;
    }
    rows[o + RUN] = 0;
    rows[o + LEVEL] = pred + this.levelGain * e;
    rows[o + SLOPE] += this.slopeGain * e;
    rows[o + VAR] += spread * ((e * e) / this.consistency - rows[o + VAR]);
  }

  /**
   * Beyond half the clip: a run candidate. The first value of a run is
   * learnt with its error clipped at ±lim (Huber). Later values of a
   * same-side run are learnt too if within the clip, but held out beyond it
   * (a burst must not drag the baseline), and shiftConfirm values in a row
   * re-baseline the level to their mean, carried to the newest by the slope.
   */
  private offBand(rows: Float64Array, o: number, pred: number, v: number, e: number, lim: number, spread: number): void {
    const run = rows[o + RUN];
    const beyond = e > lim || e < -lim;
    if (run * e > 0) {
      const k = Math.abs(run) + 1;
      rows[o + RUNSUM] += v;
      if (k >= this.shiftConfirm) {
        rows[o + LEVEL] = rows[o + RUNSUM] / k + rows[o + SLOPE] * ((k - 1) / 2);
        rows[o + RUN] = 0;
        return;
      }
      rows[o + RUN] = run > 0 ? k : -k;
      if (beyond) {
        rows[o + LEVEL] = pred; // held out: the level only moves along its slope
        return;
      }
    } else {
      rows[o + RUN] = e > 0 ? 1 : -1;
      rows[o + RUNSUM] = v;
    }
    const c = beyond ? (e > 0 ? lim : -lim) : e;
    rows[o + LEVEL] = pred + this.levelGain * c;
    rows[o + SLOPE] += this.slopeGain * c;
    rows[o + VAR] += spread * ((c * c) / this.consistency - rows[o + VAR]);
  }

  /**
   * Warm-up: no verdict. Gains start at 1/n (a plain running mean and
   * variance) and settle to the configured ones; errors are clipped once the
   * spread rests on warmClipFrom of them.
   */
  private warm(st: AnomalyState, src: Rows, tu: Tuning, minStd: number, o: number, n: number, t: number, v: number): void {
    const rows = src.rows;
    if (n === 1) {
      const other = src === st.value ? st.count : st.value;
      if (other.rows[o + N] === 0) st.series++;
      rows[o + LEVEL] = v;
      rows[o + SLOPE] = 0;
      rows[o + VAR] = 0;
      rows[o + EWTS] = t;
      rows[o + MAXTS] = t;
      return;
    }
    const pred = rows[o + LEVEL] + rows[o + SLOPE];
    let e = v - pred;
    let e2 = e * e;
    if (n > warmClipFrom + 1) {
      const lim = this.clip * Math.max(Math.sqrt(rows[o + VAR]), minStd);
      e = e > lim ? lim : e < -lim ? -lim : e;
      e2 = (e * e) / this.consistency;
    }
    const spread = n > tu.spreadSettled ? tu.spreadGain : 1 / (n - 1);
    rows[o + LEVEL] = pred + Math.max(this.levelGain, 1 / n) * e;
    rows[o + SLOPE] += this.slopeGain * e;
    rows[o + VAR] += spread * (e2 - rows[o + VAR]);
    rows[o + EWTS] += spread * (t - rows[o + EWTS]);
  }

  /** |z| ≥ warningZ: an alert unless the series' last one from this source is in cooldown and at least as severe. */
  private verdict(
    st: AnomalyState, src: Rows, tu: Tuning, sid: number, t: number, v: number,
    z: number, mean: number, std: number, n: number, ewTs: number, emit: Emit,
  ): void {
    const severity = z >= tu.criticalZ || z <= -tu.criticalZ ? "critical" : "warning";
    const last = src.last[sid];
    if (last !== undefined && t - last.ts < tu.cooldownMs && (severity === "warning" || last.severity === "critical")) return;
    // The EW centre of the ts lies (window − 1)/2 values back; the window reaches twice as far.
    const baselineFromTs = Math.min(t, 2 * ewTs - t);
    const a: Anomaly = {
      kind: "anomaly", sid, source: src.source, ts: t, value: v, z, mean, std, severity,
      baselineN: Math.min(n - 1, tu.window), baselineFromTs,
    }; // an alert is the one object the hot path creates
    src.last[sid] = a;
    st.anomalies++;
    emit(a);
  }

  openAnomaly(st: AnomalyState, sid: number): Anomaly | null {
    if (sid >= st.capacity) return null;
    const o = sid * fields;
    const newest = Math.max(st.value.rows[o + MAXTS], st.count.rows[o + MAXTS]);
    const cooldownMs = this.tuningOf(sid).cooldownMs;
    const isOpen = (a: Anomaly | undefined): a is Anomaly => a !== undefined && isAnomalyOpen(a.ts, newest, cooldownMs);
    const v = st.value.last[sid];
    const c = st.count.last[sid];
    if (isOpen(v) && isOpen(c)) return c.ts > v.ts ? c : v;
    return isOpen(v) ? v : isOpen(c) ? c : null;
  }

  /** Doubles the rows (both sources) until `sid` fits; rare, so its allocation is fine. */
  grow(st: AnomalyState, sid: number): void {
    assert(Number.isInteger(sid) && sid >= 0 && sid < this.seriesMax, `series id ${sid} within seriesMax ${this.seriesMax}`);
    let cap = st.capacity;
    while (cap <= sid) cap = Math.min(this.seriesMax, cap * 2);
    for (const src of [st.value, st.count]) {
      const rows = new Float64Array(cap * fields);
      rows.set(src.rows);
      src.rows = rows;
    }
    st.capacity = cap;
  }

  snapshot(st: AnomalyState): AnomalySnapshot {
    let rows = st.capacity;
    while (rows > 0 && st.value.rows[(rows - 1) * fields + N] === 0 && st.count.rows[(rows - 1) * fields + N] === 0) rows--;
    const alerts: Anomaly[] = [];
    for (const src of [st.value, st.count]) {
      for (const a of src.last) if (a !== undefined) alerts.push({ ...a });
    }
    return {
      version: 1, fields, rows, series: st.series, anomalies: st.anomalies, alerts,
      value: st.value.rows.slice(0, rows * fields), count: st.count.rows.slice(0, rows * fields),
    };
  }

  restore(snap: AnomalySnapshot): AnomalyState {
    if (snap.version !== 1 || snap.fields !== fields) {
      throw new Error(`anomaly snapshot: unknown layout (version ${String(snap.version)}, ${String(snap.fields)} fields)`);
    }
    assert(snap.rows <= this.seriesMax, `snapshot of ${snap.rows} series within seriesMax ${this.seriesMax}`);
    const capacity = Math.max(snap.rows, Math.min(rowsInitial, this.seriesMax));
    const st = new AnomalyState(capacity);
    st.value.rows.set(float64Of(snap.value));
    st.count.rows.set(float64Of(snap.count));
    st.series = snap.series;
    st.anomalies = snap.anomalies;
    for (const a of snap.alerts) (a.source === "value" ? st.value : st.count).last[a.sid] = { ...a };
    return st;
  }
}
