import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NabCorpusError, readCorpus, readFinalResults, readProfiles, readResultScores, readThresholds } from "../bench/nab/corpus.ts";
import {
  detectionsAt, type FileTruth, nabProfiles, probationRows, rowWeights, scaledSigmoid, scoreCorpus, scoreFile,
} from "../bench/nab/scorer.ts";

// The hand-worked values below use σ̃(x) = 2/(1 + e^{5x}) − 1 = tanh(−5x/2):
// σ̃(−1) = tanh(2.5) = 0.9866143, σ̃(−0.2) = tanh(0.5) = 0.4621172,
// σ̃(−0.6) = tanh(1.5) = 0.9051483, σ̃(−0.5) = tanh(1.25) = 0.8482836,
// σ̃(0.25) = −tanh(0.625) = −0.5545997.
const closeDigits = 6;

// 20 rows: rows 0–2 are probationary (floor(0.15 · 20) = 3); one window, rows 10–14 (width 5).
const file: FileTruth = { rows: 20, windows: [{ start: 10, end: 14 }] };
const { standard, reward_low_FN_rate: lowFn } = nabProfiles;

function flagsAt(rows: number, ...at: number[]): Uint8Array {
  const f = new Uint8Array(rows);
  for (const i of at) f[i] = 1;
  return f;
}

const scoreOf = (truth: FileTruth, ...at: number[]) => scoreFile(truth, flagsAt(truth.rows, ...at), standard).score;

describe("nab scorer - one window", () => {
  test("nab scorer - a detection at the window's first row earns the full tpWeight", () => {
    // position −(14 − 10 + 1)/5 = −1: σ̃(−1)/σ̃(−1) · 1 = 1
    expect(scoreOf(file, 10)).toBeCloseTo(1, closeDigits);
  });

  test("nab scorer - a detection at the window's last row earns about half", () => {
    // position −(14 − 14 + 1)/5 = −0.2: σ̃(−0.2)/σ̃(−1) = 0.4621172 / 0.9866143 = 0.4683868
    expect(scoreOf(file, 14)).toBeCloseTo(0.4683868, closeDigits);
  });

  test("nab scorer - a detection just after the window is a small false positive, and the window is missed", () => {
    // missed window −1; row 15 is at (15 − 14)/(5 − 1) = 0.25: 0.11 · σ̃(0.25) = 0.11 · −0.5545997 = −0.0610060
    expect(scoreOf(file, 15)).toBeCloseTo(-1.061006, closeDigits);
    expect(scoreFile(file, flagsAt(20, 15), standard)).toMatchObject({ windowsFound: 0, fpRows: 1, tpRows: 0 });
  });

  test("nab scorer - no detection costs fnWeight per window", () => {
    expect(scoreOf(file)).toBe(-1); // standard: fnWeight 1
    expect(scoreFile(file, flagsAt(20), lowFn).score).toBe(-2); // reward_low_FN_rate: fnWeight 2
  });

  test("nab scorer - of two detections in one window only the first counts", () => {
    // rows 10 and 12: the first earns 1 (as above), the second nothing
    expect(scoreOf(file, 10, 12)).toBeCloseTo(1, closeDigits);
    // rows 12 and 14: row 12 is at −(14 − 12 + 1)/5 = −0.6: 0.9051483 / 0.9866143 = 0.9174287
    expect(scoreOf(file, 12, 14)).toBeCloseTo(0.9174287, closeDigits);
    expect(scoreFile(file, flagsAt(20, 12, 14), standard)).toMatchObject({ windowsFound: 1, tpRows: 2, fpRows: 0 });
  });

  test("nab scorer - a detection before every window costs the full fpWeight", () => {
    // row 5: not probationary, no window before it: −0.11, plus the missed window −1
    expect(scoreOf(file, 5)).toBeCloseTo(-1.11, closeDigits);
    expect(scoreFile(file, flagsAt(20, 5), nabProfiles.reward_low_FP_rate).score).toBeCloseTo(-1.22, closeDigits);
  });

  test("nab scorer - a detection more than 3 window widths after a window costs the full fpWeight", () => {
    // window rows 10–11 (width 2): row 19 is at (19 − 11)/(2 − 1) = 8 > 3, held at σ̃ = −1: −0.11; the window is missed: −1
    expect(scoreOf({ rows: 20, windows: [{ start: 10, end: 11 }] }, 19)).toBeCloseTo(-1.11, closeDigits);
    expect(scaledSigmoid(3.5)).toBe(-1);
  });
});

describe("nab scorer - probationary period", () => {
  test("nab scorer - the period is floor(15 %) of the rows, at most 750", () => {
    expect(probationRows(20)).toBe(3);
    expect(probationRows(4032)).toBe(604); // floor(604.8)
    expect(probationRows(22695)).toBe(750); // 3404 capped at 0.15 · 5000
  });

  test("nab scorer - a detection in the probationary period counts for nothing", () => {
    // row 2 < 3 is not scored: only the missed window, −1 (row 3, the first scored row, would add −0.11)
    expect(scoreOf(file, 2)).toBe(-1);
    expect(scoreOf(file, 3)).toBeCloseTo(-1.11, closeDigits);
  });

  test("nab scorer - a window wholly inside the period is not scored, one partly inside is", () => {
    // window rows 0–2 ends before row 3: neither earns nor costs
    expect(scoreFile({ rows: 20, windows: [{ start: 0, end: 2 }] }, flagsAt(20), standard)).toMatchObject({ score: 0, windowsScored: 0 });
    // window rows 1–4 (width 4): row 2 does not count (missed, −1); row 3 is at −(4 − 3 + 1)/4 = −0.5: 0.8482836 / 0.9866143 = 0.8597924
    const partly: FileTruth = { rows: 20, windows: [{ start: 1, end: 4 }] };
    expect(scoreOf(partly, 2)).toBe(-1);
    expect(scoreOf(partly, 3)).toBeCloseTo(0.8597924, closeDigits);
  });
});

describe("nab scorer - corpus and thresholds", () => {
  test("nab scorer - the corpus score is normalized between the null (0) and the perfect (100) detector", () => {
    // A: its window found at its first row, +1. B: missed (−1) and one detection before it (−0.11).
    // standard: raw −0.11, null −2, perfect 2: 100 · (−0.11 + 2)/(2 + 2) = 47.25
    // reward_low_FN_rate: raw 1 − 2 − 0.11 = −1.11, null −4, perfect 2: 100 · 2.89/6 = 48.1667
    const files = [
      { truth: file, detected: flagsAt(20, 10) },
      { truth: file, detected: flagsAt(20, 5) },
    ];
    expect(scoreCorpus(files, standard)).toMatchObject({ nullRaw: -2, perfectRaw: 2, windows: 2, windowsFound: 1, fpRows: 1 });
    expect(scoreCorpus(files, standard).normalized).toBeCloseTo(47.25, closeDigits);
    expect(scoreCorpus(files, lowFn).normalized).toBeCloseTo(48.166667, closeDigits);
    expect(scoreCorpus(files.map((f) => ({ ...f, detected: flagsAt(20) })), standard).normalized).toBe(0);
    expect(scoreCorpus(files.map((f) => ({ ...f, detected: flagsAt(20, 10) })), standard).normalized).toBeCloseTo(100, closeDigits);
  });

  test("nab scorer - a score at the threshold is a detection, one just below is not", () => {
    expect([...detectionsAt([0.2, 0.5, 0.7, 0.4999999], 0.5)]).toEqual([0, 1, 1, 0]);
  });

  test("nab scorer - row weights: full at a window's start, −fpWeight before any window", () => {
    const w = rowWeights(file, standard);
    expect(w.weight[10]).toBeCloseTo(1, closeDigits);
    expect(w.weight[9]).toBeCloseTo(-0.11, closeDigits);
    expect([...w.window.slice(9, 16)]).toEqual([-1, 0, 0, 0, 0, 0, -1]);
  });

  test("nab scorer - windows out of order or past the file are a programmer error", () => {
    expect(() => scoreOf({ rows: 20, windows: [{ start: 10, end: 14 }, { start: 12, end: 16 }] })).toThrow();
    expect(() => scoreOf({ rows: 20, windows: [{ start: 18, end: 20 }] })).toThrow();
    expect(() => scoreFile(file, new Uint8Array(19), standard)).toThrow(/19 detection flags for 20 rows/);
  });
});

describe("nab corpus - reading a checkout", () => {
  test("nab corpus - a directory that is not a NAB checkout is an error naming the path", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nab-empty-"));
    try {
      const err = await readCorpus(dir).catch((e) => e);
      expect(err).toBeInstanceOf(NabCorpusError);
      expect(err.message).toBe(`${join(dir, "data")}: missing (is this a NAB checkout?)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// NAB's data is not in the repository nor in CI: this test runs only when NAB_PATH names a checkout, and says so when it does not.
const nabPath = process.env.NAB_PATH;
if (nabPath === undefined) console.log("nab scorer: the corpus check against NAB's published scores did not run (set NAB_PATH to a NAB checkout)");
test.skipIf(nabPath === undefined)("nab scorer - HTM's shipped results score as NAB published, within 0.1 (runs when NAB_PATH is set)", async () => {
  const dir = nabPath as string;
  const [corpus, thresholds, published, profiles] = await Promise.all([readCorpus(dir), readThresholds(dir), readFinalResults(dir), readProfiles(dir)]);
  expect(corpus.files.length).toBe(58);
  const scores = await Promise.all(corpus.files.map((f) => readResultScores(dir, "numenta", f.name)));
  for (const profile of ["standard", "reward_low_FP_rate", "reward_low_FN_rate"] as const) {
    const threshold = thresholds.get("numenta")![profile]!;
    const files = corpus.files.map((f, k) => ({ truth: f.truth, detected: detectionsAt(scores[k], threshold) }));
    expect(Math.abs(scoreCorpus(files, profiles[profile]).normalized - published.get("numenta")![profile]!)).toBeLessThan(0.1);
  }
});
