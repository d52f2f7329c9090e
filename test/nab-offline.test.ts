/**
 * The NAB runners' shared parts (bench/nab/args.ts, report.ts) and the
 * offline harness's promise: bench/nab/offline.ts makes the calls the
 * partition pipeline makes for the same rows, so its scores are the live
 * replay's. Synthetic files only: NAB's data stays out of the repository.
 */
import { describe, expect, test } from "bun:test";
import { anomalyRow } from "../src/actors/result-rows.ts";
import { AnomalyKnobTable, parseAnomalyKnobs } from "../src/actors/anomaly-knobs.ts";
import { PartitionPipeline, rollupsFor } from "../src/actors/partition-pipeline.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import { parseNabArgs, splitsOf } from "../bench/nab/args.ts";
import type { NabFile } from "../bench/nab/corpus.ts";
import { crossValidate, expandGrid, type ScoreCube } from "../bench/nab/cv.ts";
import { detectFile } from "../bench/nab/offline.ts";
import { nabProfiles } from "../bench/nab/scorer.ts";
import { addDetection, noDetections, precisionOf } from "../bench/nab/report.ts";
import { createPrng } from "../src/sim/prng.ts";

/** A NAB-like file: noise on a daily-style cycle of 288 rows, a level shift, a burst of variance and spikes. */
function syntheticFile(rows: number, seed: number): NabFile {
  const rng = createPrng(seed);
  const values = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    values[i] = 50 + 10 * Math.sin((2 * Math.PI * i) / 288) + rng.gaussian() * (i >= 2_500 && i < 2_600 ? 6 : 1) + (i >= 1_800 ? 15 : 0);
    if (i % 997 === 500) values[i] += 40;
  }
  const timestamps = Array.from({ length: rows }, (_, i) => String(i));
  return { name: "synthetic/one.csv", category: "synthetic", timestamps, values, truth: { rows, windows: [{ start: 1_700, end: 1_900 }] } };
}

describe("nab offline harness", () => {
  test("nab offline - the harness flags the rows the partition pipeline alerts on, every test and severity alike", () => {
    const spacingMs = 1000;
    for (const [seed, anomalies] of [[1, []], [2, [{ match: "nab.*", season: 0, novelty: 0.8 }]]] as const) {
      const file = syntheticFile(4_000, seed);
      const rules = parseAnomalyKnobs(anomalies);
      const offline = detectFile(file, new AnomalyKnobTable(rules), {}, spacingMs);
      // The pipeline as a partition runs it for the replay: base windows of the spacing, the series registered by name.
      const specs = parseWindowSpecs(`${spacingMs}ms`);
      const p = new PartitionPipeline({ specs, latenessMs: 2000, seriesMax: 4, rollups: rollupsFor(specs), anomalies: rules });
      p.addSeries(0, "nab.value", { file: "synthetic/one" });
      const t0 = 1_700_000_000_000;
      const live = noDetections(file.truth.rows);
      for (let i = 0; i < file.truth.rows; i += 500) {
        const n = Math.min(500, file.truth.rows - i);
        const ts = Float64Array.from({ length: n }, (_, k) => t0 + (i + k) * spacingMs);
        p.handleBatch({ n, sid: new Uint32Array(n), ts, value: file.values.slice(i, i + n), recvMs: ts[n - 1] });
        for (const row of p.take(100_000).a) {
          const a = anomalyRow.decode(row);
          if (a.source === "value") addDetection(live, (a.ts - t0) / spacingMs, a.severity, `${a.source} ${a.test} ${a.severity}`);
        }
      }
      expect(live.anomalies).toBeGreaterThan(2);
      expect(live.all).toEqual(offline.all);
      expect(live.critical).toEqual(offline.critical);
      expect(live.bySource).toEqual(Object.fromEntries(Object.entries(offline.bySource).filter(([k]) => k.startsWith("value "))));
    }
  });

  test("nab offline - the share of detections inside a window counts rows after the probationary period", () => {
    const file = syntheticFile(1_000, 3); // probation: the first 150 rows
    const flags = new Uint8Array(1_000);
    for (const row of [100, 200, 500]) flags[row] = 1;
    const inWindow = { ...file, truth: { rows: 1_000, windows: [{ start: 190, end: 210 }] } };
    expect(precisionOf([inWindow], [flags])).toEqual({ inside: 1, all: 2 }); // row 100 is probationary
  });

  test("nab offline - the shared arguments: a checkout, a split, a spacing, and a runner's own flags", () => {
    const usage = "usage: x <nab-checkout>";
    expect(parseNabArgs(["/tmp/nab"], usage)).toEqual({ nabDir: "/tmp/nab", split: "dev", spacingMs: 1000 });
    expect(parseNabArgs(["/tmp/nab", "--split", "all", "--spacing-ms", "300000"], usage)).toEqual({ nabDir: "/tmp/nab", split: "all", spacingMs: 300_000 });
    const seen: string[] = [];
    expect(parseNabArgs(["--opts", "{}", "/tmp/nab"], usage, (flag, value) => (seen.push(`${flag}=${value}`), flag === "--opts"))).toEqual({ nabDir: "/tmp/nab", split: "dev", spacingMs: 1000 });
    expect(seen).toEqual(["--opts={}"]);
    expect(parseNabArgs(["/tmp/nab", "--split", "test"], usage)).toBe(`${usage}\n(did not understand "--split")`);
    expect(parseNabArgs([], usage)).toBe(usage);
    expect(splitsOf("all")).toEqual(["dev", "heldout", "all"]);
    expect(splitsOf("heldout")).toEqual(["heldout"]);
  });
});

describe("nab cross-validation", () => {
  test("nab cv - each category is scored by the candidate picked on the others; the in-sample pick is the best on all", () => {
    // Files 0 and 1 in category A, file 2 in B; one window each, null −1 each (standard: tp 1).
    const files = ["A", "A", "B"].map((category) => ({ category })) as unknown as NabFile[];
    const cube3 = (a0: number, a1: number, b: number) => [0, 1, 2].map(() => Float64Array.of(a0, a1, b));
    // Candidate 0 is best on A and worst on B; candidate 1 is modest on both; on all of dev candidate 0 wins (1.8 against 1.2).
    const cube: ScoreCube = { raw: [cube3(1, 1, -0.2), cube3(0.4, 0.4, 0.4)], nullRaw: [0, 1, 2].map(() => [-1, -1, -1]), windows: [1, 1, 1] };
    const r = crossValidate(files, cube, nabProfiles);
    expect(r.picks).toEqual([{ category: "A", candidate: 1 }, { category: "B", candidate: 0 }]);
    expect(r.best).toBe(0);
    // Left out A: candidate 1 there (0.4 + 0.4); left out B: candidate 0 there (−0.2). Normalized over null −3, perfect 3.
    expect(r.cv[0]).toBeCloseTo((100 * (0.6 + 3)) / 6, 12);
    expect(r.inSample[0]).toBeCloseTo((100 * (1.8 + 3)) / 6, 12);
  });

  test("nab cv - the grid is every combination of its knobs' values over the base", () => {
    expect(expandGrid({ season: 0 }, { warningZ: [4, 5], novelty: [0.5, 1] })).toEqual([
      { season: 0, warningZ: 4, novelty: 0.5 }, { season: 0, warningZ: 4, novelty: 1 },
      { season: 0, warningZ: 5, novelty: 0.5 }, { season: 0, warningZ: 5, novelty: 1 },
    ]);
    expect(expandGrid({}, {})).toEqual([{}]);
  });
});
