/**
 * The anomaly detector's knobs and what follows from them: the defaults
 * (anomalyDefaults, tuned on the development split of the Numenta Anomaly
 * Benchmark: bench/nab/offline.ts and BENCHMARKS.md), the knobs one series
 * may have of its own (AnomalyKnobs, the config file's `anomalies:`), and
 * Tuning, one set of those knobs with its derived constants, shared by every
 * series that has it. The method is anomaly.ts's module comment.
 *
 * @example
 *   const t = new Tuning({ ...pickKnobs(anomalyDefaults), warningZ: 4 });
 *   t.spreadGain; // 2 / (window + 1)
 */
import { strict as assert } from "node:assert";
import { limits } from "../runtime/limits.ts";

export interface AnomalyOptions {
  /** Series ids are dense and below this (an id at or past it is a programmer error). */
  seriesMax: number;
  /** |z| at or above which a value is a spike (a warning), if it is also novel. Default 5. */
  warningZ?: number;
  /** |z| at or above which a spike is critical. Default 6.5. */
  criticalZ?: number;
  /** The sustained test: z of the recent surprise (EW mean of |z| over ~surpriseShortValues values) against its own history; a warning at this, critical sustainedCriticalMargin (2.5) above it. Default 3.5. */
  sustainedZ?: number;
  /** A spike (or a sustained surprise) must reach this share of the largest of the recent past (half-life noveltyHalfLife values). 0 switches the gate off. Default 0.6. */
  novelty?: number;
  /** Values per cycle of the series (e.g. 288: a day of 5-minute values); a surprise that recurs one cycle (± seasonSlackValues) later is its rhythm, not an anomaly. 0: no cycle. Default 288. */
  season?: number;
  /** Values of a series (and, separately, of its window counts) seen before its first verdict. Default 100. */
  warmup?: number;
  /** Event-time ms after an alert during which the same series and source raise no new alert unless severity rises. Default 60,000. */
  cooldownMs?: number;
  /** Values after an alert during which the same series and source raise no new alert unless severity rises (with cooldownMs: both must pass). Default 60. */
  cooldownValues?: number;
  /**
   * How the cooldown in values grows with the series' own alert rate: it is
   * cooldownValues × (1 + cooldownGrowth × the alerts beyond episodeAlertsFree
   * of the recent past, half-life episodeMemoryValues), so a series that keeps
   * alerting merges its re-fires into longer episodes. 0: a fixed cooldown. Default 0.5.
   */
  cooldownGrowth?: number;
  /** Values the spread (variance of prediction errors) effectively rests on. Default 200. */
  window?: number;
  /** Values the level and slope follow (gain 2/(n + 1)); shorter follows faster cycles and level changes, longer is steadier. Default 5. */
  levelWindow?: number;
  /** Huber threshold in std: an error beyond it updates the baseline as if it were this large. Default 3. */
  clip?: number;
  /** Same-side values beyond clip/2, in a row, that confirm a level shift and re-baseline the level. Default 8. */
  shiftConfirm?: number;
  /** Floor of the values' std, in their unit (set it to a quantized sensor's resolution). Default 1e-9. */
  minStd?: number;
  /** Floor of the window counts' std, in events, so a metronome-like source does not alert on ±1 event. Default 1. */
  countMinStd?: number;
  /** Values too: hold a run beyond the clip out of the baseline (as window counts always are) instead of learning it clipped. Default false. */
  holdOutRuns?: boolean;
  /** A run of exactly equal values this long (and twice the longest run seen before) is a stuck series. Default 30. */
  stuckValues?: number;
}

/** The options one series may have of its own (setSeriesKnobs); the rest are the logic's. */
export type AnomalyKnobs = Required<Pick<AnomalyOptions, "warningZ" | "criticalZ" | "cooldownMs" | "window" | "sustainedZ" | "novelty" | "season" | "cooldownValues" | "cooldownGrowth">>;

export const anomalyDefaults = {
  warningZ: 5,
  criticalZ: 6.5,
  sustainedZ: 3.5,
  novelty: 0.6,
  season: 288,
  warmup: 100,
  cooldownMs: 60_000,
  cooldownValues: 60,
  cooldownGrowth: 0.5,
  window: 200,
  levelWindow: 5,
  clip: 3,
  shiftConfirm: 8,
  minStd: 1e-9,
  countMinStd: 1,
  stuckValues: 30,
  holdOutRuns: false,
} as const;

/** The knobs of a full set of options. @example pickKnobs(anomalyDefaults).warningZ // 5 */
export function pickKnobs(o: AnomalyKnobs): AnomalyKnobs {
  return {
    warningZ: o.warningZ, criticalZ: o.criticalZ, cooldownMs: o.cooldownMs, window: o.window,
    sustainedZ: o.sustainedZ, novelty: o.novelty, season: o.season, cooldownValues: o.cooldownValues, cooldownGrowth: o.cooldownGrowth,
  };
}

/** One key per distinct set of knobs (series that share knobs share one Tuning). */
export const tuningKey = (k: AnomalyKnobs) => Object.values(pickKnobs(k)).join("|");

// Constants of the method (anomaly.ts), fixed by the NAB development split; not knobs.
/** The sustained test's recent surprise: EW mean of |z| over about this many values. */
export const surpriseShortValues = 3;
/** ... judged against the history of that mean over about this many values. */
export const surpriseLongValues = 5_000;
/** |z| counted into the recent surprise at most, so one wild value is not a whole episode. */
export const surpriseZCap = 8;
/** Floor of the history's std of the recent surprise (in |z| units): a series of identical errors is not infinitely sure. */
export const surpriseStdMin = 0.05;
/** Half-life, in values, of the largest recent surprise the novelty gate compares with. */
export const noveltyHalfLifeValues = 300;
/** A surprise one cycle ago at this many values either side still counts as the same phase. */
export const seasonSlackValues = 10;
/**
 * A surprise at least this share of today's one, one cycle ago, makes today's
 * recurring. (0.7 scored 2.9 more on the NAB development split, through three
 * windows found by weak sustained warnings, but doubled the false warnings on
 * clean Poisson counts with a daily cycle: 10.5 against 4.3 in 10,000.)
 */
export const recurringShare = 0.5;
/**
 * A shift or variance warning needs two surprising values in a row, this one
 * and the one before at |z| ≥ sustainedLeadZ (outside ~95 % of a Gaussian's
 * values), or a lone value of at least sustainedLoneZ: one moderately odd
 * value is not a sustained change. On the NAB development split such lone
 * values were almost all outside the labelled windows (below |z| 4: 38
 * outside, 2 inside); without them the detections outside every window fall
 * from 200 to 170 and every window found before is still found. From |z| 4
 * up a lone value is nearly spike-sized, and it is what reports a spike the
 * novelty gate held back (a 6σ spike a few hundred values after an 11σ one
 * scores z 4.2–4.9: test/anomaly.test.ts). Critical sustained surprises wait
 * for neither (a level shift's first value).
 */
export const sustainedLeadZ = 2;
export const sustainedLoneZ = 4;
/**
 * A sustained surprise is critical this far above sustainedZ: 6 at the
 * default 3.5, where it was (2 × 3) before the warning moved up. On Gaussian
 * noise a sustained critical at 3.9 fired ~7 times in 10,000 values, at 5.25
 * 3 in 100,000, at 6 none; at 6.125 some 10σ spikes of the synthetic spike
 * test are no longer critical (test/anomaly.test.ts).
 */
export const sustainedCriticalMargin = 2.5;
/**
 * ... and it needs the value before at |z| ≥ this as well: a lone value,
 * however odd, is critical only by the spike test. On Gaussian noise (the
 * clean series of test/anomaly.test.ts, 60 seeds, 18 M values) a lone
 * |z| ≈ 4.2–6 pushed the recent surprise past the critical bar 4.5 times
 * in a million values (seeds 1–20); needing the value before at 2.5: 0 in
 * seeds 1–20, 15 in the 12 M values of seeds 21–60, each two odd values in
 * a row (at 3: 6). The NAB development split scores the same either way.
 */
export const sustainedCriticalLeadZ = 2.5;
/**
 * Episodes (cooldownGrowth). The alert pressure of a series is its alerts,
 * each decaying with this half-life in values (about a week of 5-minute
 * values); the first episodeAlertsFree of them do not lengthen the cooldown.
 * A value off its prediction by episodeBreakFactor × the last alert's offset
 * or more ends the lengthened part early: a much stronger surprise is a new
 * episode. On the NAB development split (BENCHMARKS.md), the other defaults
 * as now: growth 0, 0.25, 0.5, 1 gave 145, 119, 106, 99 detections outside
 * every window and found 47, 48, 48, 45 windows (standard 55.0, 58.5, 59.6,
 * 55.8); half-lives of 1,000–4,000 values and break factors of 1.25–1.5
 * score within 1.3 of each other, 2 loses a window.
 */
export const episodeMemoryValues = 2_000;
export const episodeAlertsFree = 2;
export const episodeBreakFactor = 1.5;
/**
 * The cycle profile (test `cycle`): a series with a cycle (season > 0)
 * keeps the mean value of each of cycleBins phases of it and each phase's
 * mean absolute deviation from that mean, moving cycleGain of the way per
 * cycle (the first cycle: a plain mean per phase). From cycleJudgeCycles
 * cycles on, a value off its phase's mean by cycleZ × its spread
 * (madToStd × the mean absolute deviation) is a departure from the cycle, a
 * warning, while the series is seasonal: its values stray from their
 * profile by less than cycleShareMax of how far they stray from their slow
 * mean (both EW means over ~a cycle). Beyond 3 spreads a value is learnt as
 * if it were 3 (Huber, as the baseline). It finds what the surprise-based
 * season test cannot: a day's plateau at half its height, a daily jump that
 * does not come. Chosen by cross-validation within the NAB development
 * split (bench/nab/cv.ts, BENCHMARKS.md): over bins 12 / 24, z 5–8, share
 * 0.2–0.4, gain 0.05–0.2 and 2 or 3 cycles, leaving each category out
 * scored 61.3 (65.3 in-sample; without the test 59.6); 24 bins, z 7, share
 * 0.4, gain 0.1 or 0.2 lie in a flat top (65.1 in-sample), where 12 bins
 * need the slow gain 0.05. A longer `season` set for a series keeps its
 * profile, which adapts within a few cycles; a shorter one begins it again.
 */
export const cycleBins = 24;
export const cycleGain = 0.2;
export const cycleZ = 7;
export const cycleJudgeCycles = 3;
export const cycleShareMax = 0.4;
export const cycleClip = 3;
/** σ over the mean absolute deviation, for a Gaussian (√(π/2)). */
export const madToStd = Math.sqrt(Math.PI / 2);
/** Strengths are kept one byte each, in 1/32 of a threshold (up to ~8 thresholds). */
export const strengthScale = 32;

/** E[min(Z², c²)] for a standard normal Z: what a variance of errors clipped at c·σ converges to, in σ². */
export function clippedSecondMoment(c: number): number {
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
export class Tuning {
  readonly warningZ: number;
  readonly criticalZ: number;
  readonly sustainedZ: number;
  readonly sustainedCriticalZ: number;
  readonly novelty: number;
  readonly season: number;
  /** The cycle profile's phases: cycleBins, or fewer for a shorter season (each phase at least one value). */
  readonly bins: number;
  /** Per value of the cycle: its phase of the profile, and the values of that phase before it in a cycle. */
  readonly binOf: Uint8Array;
  readonly inBin: Uint16Array;
  /** Values the profile learns before it judges (cycleJudgeCycles cycles), a phase's gain per value, 1 / season. */
  readonly judgeAge: number;
  readonly cycleGainPerValue: number;
  readonly perSeason: number;
  readonly cooldownMs: number;
  readonly cooldownValues: number;
  readonly cooldownGrowth: number;
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

  constructor(k: AnomalyKnobs, seasonValuesMax: number) {
    assert(k.warningZ > 0 && k.warningZ <= k.criticalZ, "0 < warningZ ≤ criticalZ");
    assert(k.sustainedZ > 0, "sustainedZ > 0");
    assert(k.novelty >= 0 && k.novelty <= 1, "0 ≤ novelty ≤ 1");
    assert(Number.isInteger(k.season) && k.season >= 0 && k.season <= seasonValuesMax, `season a whole number of values within [0, ${seasonValuesMax}]`);
    assert(k.season === 0 || k.season > 2 * seasonSlackValues, "a season longer than its slack either side");
    assert(k.cooldownMs >= 0 && Number.isInteger(k.cooldownValues) && k.cooldownValues >= 0, "cooldowns ≥ 0");
    assert(k.cooldownGrowth >= 0 && k.cooldownGrowth <= limits.anomalyCooldownGrowthMax, `0 ≤ cooldownGrowth ≤ ${limits.anomalyCooldownGrowthMax}`);
    assert(k.window >= 2, "window ≥ 2");
    this.warningZ = k.warningZ;
    this.criticalZ = k.criticalZ;
    this.sustainedZ = k.sustainedZ;
    this.sustainedCriticalZ = k.sustainedZ + sustainedCriticalMargin;
    this.novelty = k.novelty;
    this.season = k.season;
    this.bins = Math.min(cycleBins, k.season);
    this.binOf = Uint8Array.from({ length: k.season }, (_, p) => Math.floor((p * this.bins) / k.season));
    this.inBin = Uint16Array.from({ length: k.season }, (_, p) => p - Math.ceil((this.binOf[p] * k.season) / this.bins));
    this.judgeAge = cycleJudgeCycles * k.season;
    this.cycleGainPerValue = (cycleGain * this.bins) / k.season;
    this.perSeason = 1 / k.season;
    this.cooldownMs = k.cooldownMs;
    this.cooldownValues = k.cooldownValues;
    this.cooldownGrowth = k.cooldownGrowth;
    this.window = k.window;
    this.spreadGain = 2 / (k.window + 1);
    this.spreadSettled = Math.floor(1 / this.spreadGain) + 1;
    this.tail = (k.warningZ * k.warningZ + 1) / 4;
    this.tailSettled = 1 + this.tail / k.window;
  }
}
