/**
 * The anomaly actor's pure logic: per series, an online robust detector over
 * the raw values (handle) and, with its own state, a robust z-score over the
 * event counts of the series' closed tumbling windows (handleWindowCount), so
 * a burst of events is caught as well as an odd value.
 *
 * Baseline. Each value is first judged, then learnt. The baseline predicts
 * the next value from a local level and slope (Holt's double exponential
 * smoothing, gain 2/(levelWindow + 1) for the level and its square for the
 * slope), so drift and cycles are followed instead of alarmed on. The spread
 * is an exponentially weighted variance of the prediction errors over about
 * `window` values. z = (value − mean) / std, mean being the prediction and
 * std the spread (widened by a Student-t-style 1 + (warningZ² + 1)/(4ν) while
 * it rests on ν values). The updates are robust (Huber, an M-estimator
 * between mean and median): an error beyond clip·std moves level, slope and
 * variance as if it were clip·std, so a spike barely widens the band and
 * values of a run beyond the clip are held out; `shiftConfirm` same-side
 * values in a row are a level shift: the level jumps to their mean. On
 * values this hold-out is off by default (holdOutRuns): on real series a
 * run beyond the clip is more often the new normal than a burst; each of
 * its values is learnt clipped, and the sustained test judges the change.
 *
 * Tests (values; each alert names the one that fired, `test`):
 * - spike: |z| ≥ warningZ, and at least `novelty` × the largest |z| of the
 *   recent past (half-life noveltyHalfLifeValues): on a heavy-tailed series
 *   a value as odd as last hour's is not news.
 * - shift / variance: the recent surprise (EW mean of |z|, capped at
 *   surpriseZCap, over ~surpriseShortValues) judged against its own history
 *   (~surpriseLongValues): z of it ≥ sustainedZ (and novel as above) is a
 *   sustained change, "shift" when the recent errors share a sign, else
 *   "variance". A warning of it needs two values in a row at |z| ≥
 *   sustainedLeadZ (2), or a lone one at ≥ sustainedLoneZ (4): one
 *   moderately odd value is no sustained change (anomaly-tuning.ts).
 * - stuck: a run of exactly equal values of stuckValues, and twice the
 *   longest run seen before, on a series that moved: a warning, raised at
 *   that one value of the run (inside an earlier alert's cooldown, never).
 * - season: a spike or sustained surprise that the series also had one cycle
 *   earlier (`season` values ± seasonSlackValues, at least recurringShare as
 *   strong) is its rhythm and raises nothing. The strengths of the last
 *   cycle are kept one byte each in a ring of limits.anomalySeasonValuesMax.
 * - cycle: where no other test fired, a value far from its phase of the
 *   series' cycle profile (the mean and spread of each of cycleBins phases
 *   of `season` values, learnt a little each cycle): |value − phase mean| ≥
 *   cycleZ (7) phase spreads, a warning, on a series the profile explains
 *   (anomaly-tuning.ts). It finds what a surprise cannot show: a day's
 *   plateau at half its height, a daily rise that does not come.
 * Window counts get the spike test without the novelty gate (a burst is a
 * burst). Critical: |z| ≥ criticalZ, or a sustained surprise ≥ sustainedZ +
 * sustainedCriticalMargin (2.5) with the value before at |z| ≥
 * sustainedCriticalLeadZ (2.5). On the NAB development split 39 % of the
 * critical alerts fall inside a labelled anomaly window, 35 % of all
 * (BENCHMARKS.md); a random row is inside one about 10 % of the time.
 *
 * Alerts. The first `warmup` values of a series (and, separately, of its
 * window counts) only build the baseline. After an alert the series raises
 * no new alert from the same source until both cooldownMs of event time and
 * cooldownValues values have passed, unless the severity rises (warning →
 * critical: one escalation at most): one episode is one alert, whether the
 * series sends a value a second or one every five minutes. A series that
 * keeps alerting has longer episodes: its cooldown in values grows with its
 * own recent alerts (cooldownGrowth; the alert pressure, half-life
 * episodeMemoryValues), unless a value is off its prediction by half as much
 * again as the last alert's (episodeBreakFactor): then a new episode. The alert
 * carries its explanation: the test, the expected range (mean ± warningZ ·
 * std), the value, z, mean and std of the baseline (of a cycle alert: the
 * phase's mean and spread), how many values the spread rests on (baselineN)
 * and from when (baselineFromTs, approximate).
 *
 * Per series. AnomalyKnobs (warningZ, criticalZ, sustainedZ, novelty,
 * season, cooldownMs, cooldownValues, cooldownGrowth, window) can be set for one series
 * (setSeriesKnobs; the config file's `anomalies:`, anomaly-knobs.ts), over
 * the options'. They are configuration, not state: the logic keeps them, a
 * snapshot does not, and whoever restores sets them again.
 *
 * Hot path: the state (anomaly-state.ts) is two Float64Arrays (values,
 * window counts) with one row of `fields` numbers per dense series id, a
 * Uint8Array ring of strengths per series and the cycle profile (a Float64
 * and a Float32 row), grown by doubling up to seriesMax; handle()
 * allocates nothing per event, only alerts are new objects. Per series:
 * 2 · fields · 8 + ringBytes + cycleFields · 8 + cycleBins · 4 = 991 bytes
 * (anomalyStateBytesPerSeries), plus the last alert per source.
 * Deterministic: the same inputs give the same alerts, and snapshot() →
 * MessagePack → restore() continues identically.
 *
 * @example
 *   const logic = createAnomalyLogic({ seriesMax: 1000 });
 *   const st = logic.init();
 *   logic.handle(st, batch, (a) => alerts.push(a));                        // raw values
 *   logic.handleWindowCount(st, 7, 1_700_000_010_000, 412, (a) => alerts.push(a)); // a closed 10 s window
 *   logic.openAnomaly(st, 7); // the alert still in its cooldown, or null
 *   logic.setSeriesKnobs(8, { warningZ: 6, season: 0 }); // series 8 from now on
 */
import { strict as assert } from "node:assert";
import type { ActorLogic } from "../runtime/actor.ts";
import { limits } from "../runtime/limits.ts";
import { runSlices } from "../runtime/slices.ts";
import {
  anomalyDefaults, type AnomalyKnobs, type AnomalyOptions, clippedSecondMoment, cycleBins, cycleClip, cycleShareMax, cycleZ, madToStd, episodeAlertsFree, episodeBreakFactor, episodeMemoryValues, noveltyHalfLifeValues, pickKnobs, recurringShare,
  seasonSlackValues, strengthScale, sustainedCriticalLeadZ, sustainedLeadZ, sustainedLoneZ, surpriseLongValues, surpriseShortValues, surpriseStdMin, surpriseZCap, Tuning, tuningKey,
} from "./anomaly-tuning.ts";
import {
  AnomalyState, type AnomalySnapshot, cycleFields, EQMAX, EQRUN, EWTS, fields, RESD, SLOWD, SLOWM, growState, LASTN, LEVEL, LMAX, LMEAN, LVAR, MAXTS, N, PREV, ringBytes,
  PRESSURE, restoreStateSlices, rowsInitial, type Rows, RPOS, RUN, RUNSUM, SHORT, SIGNED, SLOPE, snapshotStateSlices, VAR, ZMAX, ZPREV,
} from "./anomaly-state.ts";
import type { EventBatch } from "./window.ts";

export { anomalyDefaults, type AnomalyKnobs, type AnomalyOptions } from "./anomaly-tuning.ts";
export { AnomalyState, type AnomalySnapshot, anomalyStateBytesPerSeries } from "./anomaly-state.ts";

/** Residuals the spread must rest on before it is trusted to clip during warm-up (and to score surprise). */
const warmClipFrom = 10;

/** Which test raised an alert (see the module comment). */
export type AnomalyTest = "spike" | "shift" | "variance" | "stuck" | "cycle";
/** In this order for good: a result row carries the test as its index here (result-rows.ts). */
export const anomalyTests: readonly AnomalyTest[] = ["spike", "shift", "variance", "stuck", "cycle"];

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
  /** The test that fired. */
  test: AnomalyTest;
  /** The range the value was expected in: mean ± warningZ · std. */
  expected: [number, number];
  /** How many values the spread rests on (effective count). */
  baselineN: number;
  /** Event time the baseline reaches back to (approximate). */
  baselineFromTs: number;
}

export interface AnomalyStats {
  series: number;
  anomalies: number;
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
   * @example logic.setSeriesKnobs(sid, { warningZ: 6, criticalZ: 8 });
   */
  setSeriesKnobs(sid: number, knobs: Partial<AnomalyKnobs>): void;
  snapshot(state: AnomalyState): AnomalySnapshot;
  /** snapshot() with its columns copied 1 MiB a slice, yielding between; returns what snapshot() would. */
  snapshotSlices(state: AnomalyState): Generator<void, AnomalySnapshot>;
  /** restore() likewise in slices. */
  restoreSlices(snap: AnomalySnapshot): Generator<void, AnomalyState>;
  stats(state: AnomalyState): AnomalyStats;
}

type Emit = (a: Anomaly) => void;

/**
 * The anomaly logic (see the module comment for the method and its knobs).
 * @example const logic = createAnomalyLogic({ seriesMax: 100_000, warningZ: 6 });
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
    snapshot: (st) => runSlices(snapshotStateSlices(st)),
    restore: (snap) => runSlices(d.restoreSlices(snap as AnomalySnapshot)),
    snapshotSlices: (st) => snapshotStateSlices(st),
    restoreSlices: (snap) => d.restoreSlices(snap),
    stats: (st) => ({ series: st.series, anomalies: st.anomalies }),
  };
}

/** What one value scored, handed from the tests to the verdict (one object per detector, reused: no allocation per value). */
interface Scored { test: AnomalyTest | null; critical: boolean }

/** A value that departs from its cycle: its phase's mean and spread and its z, for the verdict (one object per detector, reused). */
interface AtPhase { mean: number; std: number; z: number }

class Detector {
  readonly countMinStd: number;
  private readonly seriesMax: number;
  private readonly warmup: number;
  private readonly clip: number;
  private readonly shiftConfirm: number;
  /** Half the clip: a value this far out on the same side as the one before continues a run. */
  private readonly shiftBand: number;
  private readonly minStd: number;
  private readonly stuckValues: number;
  private readonly holdOutRuns: boolean;
  private readonly levelGain: number;
  private readonly slopeGain: number;
  private readonly shortGain = 2 / (surpriseShortValues + 1);
  private readonly longGain = 2 / (surpriseLongValues + 1);
  private readonly noveltyDecay = Math.pow(0.5, 1 / noveltyHalfLifeValues);
  /** Divides a clipped squared error so the spread of Gaussian errors is unbiased. */
  private readonly consistency: number;
  /** The options' knobs: those of every series without its own. */
  private readonly base: Tuning;
  /** Series' own knobs by sid, the base filling the gaps so the array stays packed; past its end, the base. */
  private readonly bySid: Tuning[] = [];
  /** The distinct knobs set so far (tuningKey): series that share knobs share one Tuning. */
  private readonly tunings = new Map<string, Tuning>();
  private readonly scored: Scored = { test: null, critical: false };
  private readonly cyc: AtPhase = { mean: 0, std: 0, z: 0 };

  constructor(opts: AnomalyOptions) {
    const o: Required<AnomalyOptions> = { ...anomalyDefaults, seriesMax: opts.seriesMax };
    for (const [k, v] of Object.entries(opts)) if (v !== undefined) Object.assign(o, { [k]: v }); // an explicit undefined keeps the default
    assert(Number.isInteger(o.seriesMax) && o.seriesMax >= 1, "seriesMax ≥ 1");
    assert(Number.isInteger(o.warmup) && o.warmup > warmClipFrom, `warmup > ${warmClipFrom} values`);
    assert(o.levelWindow >= 1, "levelWindow ≥ 1");
    assert(o.clip >= 1, "clip ≥ 1 std");
    assert(Number.isInteger(o.shiftConfirm) && o.shiftConfirm >= 2, "shiftConfirm ≥ 2");
    assert(o.minStd > 0 && o.countMinStd > 0, "std floors > 0");
    assert(Number.isInteger(o.stuckValues) && o.stuckValues >= 2, "stuckValues ≥ 2");
    this.seriesMax = o.seriesMax;
    this.warmup = o.warmup;
    this.clip = o.clip;
    this.shiftConfirm = o.shiftConfirm;
    this.shiftBand = o.clip / 2;
    this.minStd = o.minStd;
    this.countMinStd = o.countMinStd;
    this.stuckValues = o.stuckValues;
    this.holdOutRuns = o.holdOutRuns;
    this.levelGain = 2 / (o.levelWindow + 1);
    this.slopeGain = this.levelGain * this.levelGain;
    this.consistency = clippedSecondMoment(o.clip);
    this.base = new Tuning(pickKnobs(o), limits.anomalySeasonValuesMax);
    this.tunings.set(tuningKey(o), this.base);
  }

  setSeriesKnobs(sid: number, knobs: Partial<AnomalyKnobs>): void {
    assert(Number.isInteger(sid) && sid >= 0 && sid < this.seriesMax, `series id ${sid} within seriesMax ${this.seriesMax}`);
    const k = pickKnobs({ ...this.base, ...Object.fromEntries(Object.entries(knobs).filter(([, v]) => v !== undefined)) });
    const key = tuningKey(k);
    let t = this.tunings.get(key);
    if (t === undefined) {
      t = new Tuning(k, limits.anomalySeasonValuesMax); // asserts the knobs; once per distinct set
      this.tunings.set(key, t);
    }
    while (this.bySid.length < sid) this.bySid.push(this.base);
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
    const isValue = src === st.value;
    if (n <= this.warmup) {
      const z = this.warm(st, src, tu, minStd, o, n, t, v);
      if (isValue) this.learnSurprise(st, rows, o, sid, n, z, 0, 0, v);
      if (isValue && tu.season > 0) this.phaseStep(st, rows, o, sid, n, v, tu, minStd);
      return;
    }
    // Until the configured gain is reached, 1/(n − 1): a plain mean over all values so far.
    const settled = n > tu.spreadSettled;
    const spread = settled ? tu.spreadGain : 1 / (n - 1);
    const pred = rows[o + LEVEL] + rows[o + SLOPE];
    const sd = Math.max(Math.sqrt(rows[o + VAR]), minStd) * (settled ? tu.tailSettled : 1 + tu.tail / (n - 2));
    const e = v - pred;
    const z = e / sd;
    const sc = this.scored;
    if (isValue) {
      const sustained = this.sustainedZ(rows, o, z);
      const strength = this.judge(st, rows, tu, sid, o, n, v, z, sustained);
      const departs = tu.season > 0 && this.phaseStep(st, rows, o, sid, n, v, tu, minStd);
      if (sc.test === null && departs) {
        const cyc = this.cyc;
        sc.test = "cycle";
        sc.critical = false;
        this.verdict(st, src, tu, sid, t, v, cyc.z, cyc.mean, cyc.std, n, rows[o + EWTS], emit);
      } else if (sc.test !== null) this.verdict(st, src, tu, sid, t, v, z, pred, sd, n, rows[o + EWTS], emit);
      this.learnSurprise(st, rows, o, sid, n, z, sustained, strength, v);
    } else if (z >= tu.warningZ || z <= -tu.warningZ) {
      sc.test = "spike";
      sc.critical = z >= tu.criticalZ || z <= -tu.criticalZ;
      this.verdict(st, src, tu, sid, t, v, z, pred, sd, n, rows[o + EWTS], emit);
    }
    rows[o + EWTS] += spread * (t - rows[o + EWTS]);
    const band = this.shiftBand * sd;
    if (isValue && !this.holdOutRuns) {
      // Values: plain Huber, no run held out. On real series a run beyond the clip is more often the
      // series' new normal than a burst, and the sustained test, not the baseline, is what judges it.
      const lim = this.clip * sd;
      this.learn(rows, o, pred, e > lim ? lim : e < -lim ? -lim : e, spread);
      return;
    }
    if (e > band || e < -band) {
      this.offBand(rows, o, pred, v, e, this.clip * sd, spread);
      return;
    }
    rows[o + RUN] = 0;
    this.learn(rows, o, pred, e, spread);
  }

  /** The baseline learns an error c (already clipped where it must be). */
  private learn(rows: Float64Array, o: number, pred: number, c: number, spread: number): void {
    rows[o + LEVEL] = pred + this.levelGain * c;
    rows[o + SLOPE] += this.slopeGain * c;
    rows[o + VAR] += spread * ((c * c) / this.consistency - rows[o + VAR]);
  }

  /** z of the recent surprise (with this value) against the history of the recent surprise. */
  private sustainedZ(rows: Float64Array, o: number, z: number): number {
    const az = z < 0 ? -z : z;
    const short = rows[o + SHORT] + this.shortGain * ((az < surpriseZCap ? az : surpriseZCap) - rows[o + SHORT]);
    return (short - rows[o + LMEAN]) / Math.max(Math.sqrt(rows[o + LVAR]), surpriseStdMin);
  }

  /**
   * The value tests (module comment) into this.scored; answers the value's
   * strength (its largest test statistic in units of its threshold) for the ring.
   */
  private judge(st: AnomalyState, rows: Float64Array, tu: Tuning, sid: number, o: number, n: number, v: number, z: number, sustained: number): number {
    const sc = this.scored;
    const az = z < 0 ? -z : z;
    const strength = Math.max(az / tu.warningZ, sustained / tu.sustainedZ);
    sc.test = null;
    sc.critical = az >= tu.criticalZ || (sustained >= tu.sustainedCriticalZ && rows[o + ZPREV] >= sustainedCriticalLeadZ);
    // A sustained warning rests on two surprising values in a row, or on a lone one nearly spike-sized.
    const sustains = sc.critical || az >= sustainedLoneZ || (az >= sustainedLeadZ && rows[o + ZPREV] >= sustainedLeadZ);
    if (az >= tu.warningZ && az >= tu.novelty * rows[o + ZMAX]) sc.test = "spike";
    else if (sustains && sustained >= tu.sustainedZ && sustained >= tu.novelty * rows[o + LMAX]) {
      const signed = rows[o + SIGNED];
      sc.test = (signed < 0 ? -signed : signed) >= 0.5 * rows[o + SHORT] ? "shift" : "variance";
    }
    if (sc.test !== null && tu.season > 0 && n > tu.season + seasonSlackValues + 1 && this.recurs(st, sid, rows[o + RPOS] + 1, tu.season, strength)) sc.test = null;
    if (sc.test === null && v === rows[o + PREV] && rows[o + EQRUN] + 1 === Math.max(this.stuckValues, 2 * rows[o + EQMAX])) {
      sc.test = "stuck";
      sc.critical = false;
    }
    return strength;
  }

  /** Whether the series was at least recurringShare as surprised one season ago (± the slack): its rhythm. `pos`: this value's place in the ring (ringBytes for 0). */
  private recurs(st: AnomalyState, sid: number, pos: number, season: number, strength: number): boolean {
    const ring = st.ring;
    const base = sid * ringBytes;
    const bar = recurringShare * strength * strengthScale;
    let k = pos - season - seasonSlackValues;
    if (k < 0) k += ringBytes;
    for (let j = 0; j <= 2 * seasonSlackValues; j++) {
      if (ring[base + k] >= bar) return true;
      if (++k === ringBytes) k = 0;
    }
    return false;
  }

  /** After the verdict: the surprise's history, the novelty maxima, the strength ring, |z| and the run of equal values learn this value. */
  private learnSurprise(st: AnomalyState, rows: Float64Array, o: number, sid: number, n: number, z: number, sustained: number, strength: number, v: number): void {
    const az = z < 0 ? -z : z;
    rows[o + ZPREV] = az;
    if (n === 1 || v !== rows[o + PREV]) {
      // EQMAX is read only where a run ends (and when a value repeats): it lies outside the fields every value touches.
      if (rows[o + EQRUN] > 0 && rows[o + EQRUN] > rows[o + EQMAX]) rows[o + EQMAX] = rows[o + EQRUN];
      rows[o + EQRUN] = 0;
    } else rows[o + EQRUN]++;
    rows[o + PREV] = v;
    const pos = n === 1 ? 1 : rows[o + RPOS] + 1 === ringBytes ? 0 : rows[o + RPOS] + 1;
    rows[o + RPOS] = pos;
    const q = strength * strengthScale;
    st.ring[sid * ringBytes + pos] = q >= 255 ? 255 : Math.round(q);
    if (n > this.warmup) {
      rows[o + ZMAX] = Math.max(rows[o + ZMAX] * this.noveltyDecay, az);
      rows[o + LMAX] = Math.max(rows[o + LMAX] * this.noveltyDecay, sustained);
    }
    const m = n - warmClipFrom - 1; // surprise is scored once the spread rests on warmClipFrom errors
    if (m < 1) return;
    const cz = z > surpriseZCap ? surpriseZCap : z < -surpriseZCap ? -surpriseZCap : z;
    const short = rows[o + SHORT] + Math.max(this.shortGain, 1 / m) * ((cz < 0 ? -cz : cz) - rows[o + SHORT]);
    rows[o + SHORT] = short;
    rows[o + SIGNED] += Math.max(this.shortGain, 1 / m) * (cz - rows[o + SIGNED]);
    const g = Math.max(this.longGain, 1 / m);
    const d = short - rows[o + LMEAN];
    rows[o + LMEAN] += g * d;
    rows[o + LVAR] += g * (d * d - rows[o + LVAR]);
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
    this.learn(rows, o, pred, beyond ? (e > 0 ? lim : -lim) : e, spread);
  }

  /**
   * The value against its phase of the series' cycle profile, then learnt
   * by it (anomaly-tuning.ts): answers whether it departs from the cycle
   * (the profile has learnt cycleJudgeCycles cycles, explains the series,
   * and the value is cycleZ phase spreads off), leaving the phase's mean,
   * spread and the value's z in this.cyc for the verdict. The profile begins
   * at the series' first value at phase 0 (N mod season), also after a
   * restore of a layout without it; in its first cycle each phase is a
   * plain mean of its values so far, later a value beyond cycleClip spreads
   * is learnt as cycleClip (Huber).
   */
  private phaseStep(st: AnomalyState, rows: Float64Array, o: number, sid: number, n: number, v: number, tu: Tuning, minStd: number): boolean {
    const cycle = st.cycle;
    const base = sid * cycleFields;
    const season = tu.season;
    if (cycle[base] === 0) {
      if (n % season !== 0) return false;
      cycle[base] = 1; // phases are counted from here on
      rows[o + SLOWM] = v;
      rows[o + SLOWD] = 0;
      rows[o + RESD] = 0;
    }
    const age = cycle[base] - 1; // values the profile learnt before this one (from judgeAge on, judgeAge + the phase)
    const phase = age < season ? age : age >= tu.judgeAge ? age - tu.judgeAge : age % season;
    if (phase >= season) {
      cycle[base] = 0; // the series' season was made shorter (setSeriesKnobs): its profile begins again
      return false;
    }
    const b = tu.binOf[phase];
    const at = base + 1 + b;
    const spreadAt = sid * cycleBins + b;
    const mean = cycle[at];
    const std = Math.max(madToStd * st.cycleSpread[spreadAt], minStd);
    const first = age < season ? tu.inBin[phase] : -1; // the phase's values so far in the first cycle
    const res = first === 0 ? 0 : v - mean;
    const z = res / std;
    const departs = age >= tu.judgeAge && rows[o + RESD] < cycleShareMax * rows[o + SLOWD] && (z >= cycleZ || z <= -cycleZ);
    if (departs) {
      const c = this.cyc; // read only by the verdict that follows a departure
      c.mean = mean;
      c.std = std;
      c.z = z;
    }
    if (first === 0) {
      cycle[at] = v;
      st.cycleSpread[spreadAt] = 0;
    } else {
      const g = first > 0 ? 1 / (first + 1) : tu.cycleGainPerValue;
      const lim = first < 0 ? cycleClip * std : Infinity;
      const e = res > lim ? lim : res < -lim ? -lim : res;
      cycle[at] = mean + g * e;
      st.cycleSpread[spreadAt] += g * ((e < 0 ? -e : e) - st.cycleSpread[spreadAt]);
    }
    // The count goes on, held within [judgeAge, judgeAge + season) once there: the phase without a division.
    cycle[base] = age + 1 >= tu.judgeAge + season ? age + 2 - season : age + 2;
    const sg = tu.perSeason;
    const dev = v - rows[o + SLOWM];
    rows[o + SLOWD] += sg * ((dev < 0 ? -dev : dev) - rows[o + SLOWD]);
    rows[o + SLOWM] += sg * dev;
    rows[o + RESD] += sg * ((res < 0 ? -res : res) - rows[o + RESD]);
    return departs;
  }

  /**
   * Warm-up: no verdict. Gains start at 1/n (a plain running mean and
   * variance) and settle to the configured ones; errors are clipped once the
   * spread rests on warmClipFrom of them. Answers the value's z from then on
   * (0 before), for the surprise's history.
   */
  private warm(st: AnomalyState, src: Rows, tu: Tuning, minStd: number, o: number, n: number, t: number, v: number): number {
    const rows = src.rows;
    if (n === 1) {
      const other = src === st.value ? st.count : st.value;
      if (other.rows[o + N] === 0) st.series++;
      rows[o + LEVEL] = v;
      rows[o + SLOPE] = 0;
      rows[o + VAR] = 0;
      rows[o + EWTS] = t;
      rows[o + MAXTS] = t;
      return 0;
    }
    const pred = rows[o + LEVEL] + rows[o + SLOPE];
    let e = v - pred;
    let e2 = e * e;
    let z = 0;
    if (n > warmClipFrom + 1) {
      const sd = Math.max(Math.sqrt(rows[o + VAR]), minStd);
      z = e / sd;
      const lim = this.clip * sd;
      e = e > lim ? lim : e < -lim ? -lim : e;
      e2 = (e * e) / this.consistency;
    }
    const spread = n > tu.spreadSettled ? tu.spreadGain : 1 / (n - 1);
    rows[o + LEVEL] = pred + Math.max(this.levelGain, 1 / n) * e;
    rows[o + SLOPE] += this.slopeGain * e;
    rows[o + VAR] += spread * (e2 - rows[o + VAR]);
    rows[o + EWTS] += spread * (t - rows[o + EWTS]);
    return z;
  }

  /**
   * A test fired (this.scored): an alert unless the series' last one from
   * this source is in cooldown and at least as severe. The cooldown is
   * cooldownMs of event time or cooldownValues values, lengthened in values by
   * the series' alert pressure (episodeCooling).
   */
  private verdict(
    st: AnomalyState, src: Rows, tu: Tuning, sid: number, t: number, v: number,
    z: number, mean: number, std: number, n: number, ewTs: number, emit: Emit,
  ): void {
    const { test, critical } = this.scored;
    if (test === null) return;
    const severity = critical ? "critical" : "warning";
    const last = src.last[sid];
    const o = sid * fields;
    const rows = src.rows;
    const since = n - rows[o + LASTN];
    // The alerts of the recent past, as of now (a test fired: rare enough for a pow).
    const pressure = last === undefined ? 0 : rows[o + PRESSURE] * Math.pow(0.5, since / episodeMemoryValues);
    if (last !== undefined && (severity === "warning" || last.severity === "critical")) {
      if (t - last.ts < tu.cooldownMs || since < tu.cooldownValues) return;
      if (this.episodeCooling(tu, since, pressure, v - mean, last.value - last.mean)) return;
    }
    // The EW centre of the ts lies (window − 1)/2 values back; the window reaches twice as far.
    const baselineFromTs = Math.min(t, 2 * ewTs - t);
    const band = tu.warningZ * std;
    const a: Anomaly = {
      kind: "anomaly", sid, source: src.source, ts: t, value: v, z, mean, std, severity, test, expected: [mean - band, mean + band],
      baselineN: Math.min(n - 1, tu.window), baselineFromTs,
    }; // an alert is the one object the hot path creates
    rows[o + LASTN] = n;
    rows[o + PRESSURE] = pressure + 1;
    src.last[sid] = a;
    st.anomalies++;
    emit(a);
  }

  /**
   * Past the fixed cooldown: whether the series is still in the episode. A
   * series that keeps alerting (pressure beyond episodeAlertsFree) cools for
   * cooldownValues × (1 + cooldownGrowth × the excess), unless this value is
   * off its prediction by episodeBreakFactor × the last alert's offset or
   * more: a new episode. Offsets are in the value's unit, not in z: where the
   * spread collapses between spikes (a flat series with bursts) equal spikes
   * score ever larger z, and on the NAB development split the offset found
   * 1 more window for 4 fewer detections outside them than z did.
   */
  private episodeCooling(tu: Tuning, since: number, pressure: number, off: number, lastOff: number): boolean {
    const excess = pressure > episodeAlertsFree ? pressure - episodeAlertsFree : 0;
    if (since >= tu.cooldownValues * (1 + tu.cooldownGrowth * excess)) return false;
    return Math.abs(off) < episodeBreakFactor * Math.abs(lastOff);
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

  /** Doubles the state until `sid` fits (anomaly-state.ts). */
  grow(st: AnomalyState, sid: number): void {
    assert(Number.isInteger(sid) && sid >= 0 && sid < this.seriesMax, `series id ${sid} within seriesMax ${this.seriesMax}`);
    growState(st, sid, this.seriesMax);
  }

  restoreSlices(snap: AnomalySnapshot): Generator<void, AnomalyState> {
    // A first-layout series warms up again from warmClipFrom + 1 values: its surprise history is learnt before it judges.
    return restoreStateSlices(snap, this.seriesMax, warmClipFrom + 1, this.base.warningZ);
  }
}
