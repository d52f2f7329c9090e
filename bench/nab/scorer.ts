/**
 * The Numenta Anomaly Benchmark's score (NAB v1.1; Lavin & Ahmad 2015), as
 * pure functions: no files, no clocks. Written from the paper and from NAB's
 * own scorer (nab/sweeper.py, nab/scorer.py, nab/runner.py), whose choices it
 * repeats where the paper leaves them open, so our figures can be checked
 * against NAB's published ones (bench/nab/check-scorer.ts).
 *
 * One file. Its rows are indexed 0 … rows−1; a labelled anomaly window is an
 * inclusive row range. The first 15 % of the rows (at most 750) are the
 * probationary period: a detector is learning there, so a detection there
 * counts for nothing and a window lying wholly inside it is not scored.
 * Every other row has a weight:
 * - inside a window of width w ending at row e, row i weighs
 *   σ̃(−(e − i + 1)/w) · tpWeight / σ̃(−1), where σ̃(x) = 2/(1 + e^{5x}) − 1:
 *   tpWeight at the window's first row, falling to σ̃(−1/w)/σ̃(−1) of it at
 *   its last, near 0 in a wide window (an early detection is worth more than
 *   a late one);
 * - outside, after a window of width w ending at row e, row i weighs
 *   σ̃((i − e)/(w − 1)) · fpWeight, a small penalty just past the window (the
 *   detector saw the anomaly a little late) growing to −0.99 · fpWeight one
 *   window width on (σ̃ is held at −1 past 3);
 * - outside and before every window, −fpWeight.
 * A window scores the weight of its first detection (weights fall along a
 * window, so NAB's "the best one" is the first), or −fnWeight if it has none;
 * every detection outside the windows adds its weight. The file's score is
 * the sum. A corpus scores the sum over its files, normalized so the null
 * detector (no detection: −fnWeight per scored window) is 0 and the perfect
 * one (every window detected at its first row: tpWeight per window) is 100.
 *
 * @example
 *   const truth = { rows: 4000, windows: [{ start: 1200, end: 1599 }] };
 *   const flags = new Uint8Array(4000); flags[1200] = 1;
 *   scoreFile(truth, flags, nabProfiles.standard).score; // 1.0: the window found at its first row
 */
import { strict as assert } from "node:assert";

/** A cost profile: what a found window earns, a missed one costs, and a detection outside every window costs at most. */
export interface CostProfile {
  tpWeight: number;
  fpWeight: number;
  fnWeight: number;
}

export type ProfileName = "standard" | "reward_low_FP_rate" | "reward_low_FN_rate";
export const profileNames: readonly ProfileName[] = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"];

/** NAB's config/profiles.json (tnWeight is unused by its scorer and left out). */
export const nabProfiles: Record<ProfileName, CostProfile> = {
  standard: { tpWeight: 1, fpWeight: 0.11, fnWeight: 1 },
  reward_low_FP_rate: { tpWeight: 1, fpWeight: 0.22, fnWeight: 1 },
  reward_low_FN_rate: { tpWeight: 1, fpWeight: 0.11, fnWeight: 2 },
};

/** An anomaly window as an inclusive range of row indices. */
export interface RowWindow {
  start: number;
  end: number;
}

/** A file's ground truth: its length and its windows, in order and disjoint. */
export interface FileTruth {
  rows: number;
  windows: readonly RowWindow[];
}

export interface FileScore {
  /** Σ window scores + Σ weights of detections outside the windows. */
  score: number;
  /** Windows after the probationary period (each earns or costs), found and missed. */
  windowsScored: number;
  windowsFound: number;
  /** Detected rows outside every window, after the probationary period. */
  fpRows: number;
  /** Detected rows inside a window, after the probationary period. */
  tpRows: number;
}

const probationFraction = 0.15; // NAB's probationaryPercent
const probationRowsCap = 750; // 0.15 · 5000: NAB caps the period at 15 % of 5,000 rows
const sigmoidSteepness = 5; // σ̃(±1) = ±0.9866: the window's far edge is worth nearly full weight
const sigmoidHeldPast = 3; // past 3 window widths after a window NAB holds the weight at −1

/**
 * Rows at the start of a file that are not scored: floor(15 % of rows), at most 750.
 * @example probationRows(4032) === 604; probationRows(22695) === 750
 */
export function probationRows(rows: number): number {
  return Math.min(Math.floor(probationFraction * rows), probationRowsCap);
}

/**
 * NAB's scaled sigmoid of a row's position relative to a window's right edge:
 * −1 is the window's first row, 0 just past its end, 1 a window width later.
 * @example scaledSigmoid(-1) ≈ 0.98661; scaledSigmoid(0) === 0; scaledSigmoid(4) === -1
 */
export function scaledSigmoid(position: number): number {
  if (position > sigmoidHeldPast) return -1;
  return 2 / (1 + Math.exp(sigmoidSteepness * position)) - 1;
}

const maxTp = scaledSigmoid(-1);

/** Windows must be in order, disjoint and inside the file: the row weights below assume it. */
function assertTruth(truth: FileTruth): void {
  let before = -1;
  for (const w of truth.windows) {
    assert(w.start > before && w.start <= w.end && w.end < truth.rows, `window [${w.start}, ${w.end}] of a ${truth.rows}-row file, after row ${before}`);
    before = w.end;
  }
}

/**
 * Each row's weight should it be detected (see the module comment) and the
 * index of the window it lies in, or −1 outside every window.
 * @example rowWeights({ rows: 20, windows: [{ start: 10, end: 14 }] }, nabProfiles.standard).weight[10] === 1
 */
export function rowWeights(truth: FileTruth, profile: CostProfile): { weight: Float64Array; window: Int32Array } {
  assertTruth(truth);
  const weight = new Float64Array(truth.rows);
  const window = new Int32Array(truth.rows).fill(-1);
  let next = 0; // the next window not yet reached
  let prev: RowWindow | null = null; // the last window passed
  for (let i = 0; i < truth.rows; i++) {
    const cur = next < truth.windows.length && truth.windows[next].start <= i ? truth.windows[next] : null;
    if (cur !== null) {
      const width = cur.end - cur.start + 1;
      weight[i] = (scaledSigmoid(-(cur.end - i + 1) / width) * profile.tpWeight) / maxTp;
      window[i] = next;
      if (i === cur.end) {
        prev = cur;
        next++;
      }
    } else if (prev === null) {
      weight[i] = -profile.fpWeight;
    } else {
      // NAB divides by (width − 1): a one-row window puts every later row at +∞, weight −fpWeight.
      weight[i] = scaledSigmoid((i - prev.end) / (prev.end - prev.start)) * profile.fpWeight;
    }
  }
  return { weight, window };
}

/**
 * A file's score for one profile, given a flag per row (nonzero: the detector
 * said "anomaly" at that row).
 * @example scoreFile({ rows: 20, windows: [{ start: 10, end: 14 }] }, new Uint8Array(20), nabProfiles.standard).score === -1
 */
export function scoreFile(truth: FileTruth, detected: ArrayLike<number>, profile: CostProfile): FileScore {
  assert(detected.length === truth.rows, `${detected.length} detection flags for ${truth.rows} rows`);
  const { weight, window } = rowWeights(truth, profile);
  const from = probationRows(truth.rows);
  const found = new Set<number>();
  let score = 0;
  let fpRows = 0;
  let tpRows = 0;
  for (let i = from; i < truth.rows; i++) {
    if (detected[i] === 0) continue;
    const k = window[i];
    if (k < 0) {
      score += weight[i];
      fpRows++;
      continue;
    }
    tpRows++;
    // Weights fall along a window: its first detection is its best, later ones add nothing.
    if (!found.has(k)) score += weight[i];
    found.add(k);
  }
  const windowsScored = truth.windows.filter((w) => w.end >= from).length;
  score -= (windowsScored - found.size) * profile.fnWeight;
  return { score, windowsScored, windowsFound: found.size, fpRows, tpRows };
}

export interface CorpusScore {
  /** Σ of the files' scores. */
  raw: number;
  /** The null detector's raw score (nothing detected) and the perfect one's. */
  nullRaw: number;
  perfectRaw: number;
  /** 100 · (raw − null) / (perfect − null): 0 for the null detector, 100 for the perfect one. */
  normalized: number;
  windows: number;
  windowsFound: number;
  fpRows: number;
}

/**
 * A corpus' score for one profile, normalized. The perfect score counts every
 * labelled window, as NAB's runner does (tpCount over the label file), even
 * one inside a probationary period (NAB v1.1 has none).
 * @example scoreCorpus([{ truth, detected }], nabProfiles.standard).normalized // 0 … 100, below 0 for worse than nothing
 */
export function scoreCorpus(files: ReadonlyArray<{ truth: FileTruth; detected: ArrayLike<number> }>, profile: CostProfile): CorpusScore {
  let raw = 0;
  let nullRaw = 0;
  let windows = 0;
  let windowsFound = 0;
  let fpRows = 0;
  for (const f of files) {
    const s = scoreFile(f.truth, f.detected, profile);
    raw += s.score;
    nullRaw -= s.windowsScored * profile.fnWeight;
    windows += f.truth.windows.length;
    windowsFound += s.windowsFound;
    fpRows += s.fpRows;
  }
  const perfectRaw = windows * profile.tpWeight;
  assert(perfectRaw > nullRaw, "a corpus to normalize over has at least one window");
  const normalized = (100 * (raw - nullRaw)) / (perfectRaw - nullRaw);
  return { raw, nullRaw, perfectRaw, normalized, windows, windowsFound, fpRows };
}

/**
 * Detections from anomaly scores and a threshold, as NAB's sweeper reads its
 * tuned thresholds: a row is detected when its score is at or above it.
 * @example detectionsAt(Float64Array.of(0.2, 0.7, 0.5), 0.5) // Uint8Array [0, 1, 1]
 */
export function detectionsAt(scores: ArrayLike<number>, threshold: number): Uint8Array {
  const out = new Uint8Array(scores.length);
  for (let i = 0; i < scores.length; i++) out[i] = scores[i] >= threshold ? 1 : 0;
  return out;
}
