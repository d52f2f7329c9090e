/**
 * Checks our NAB scorer (scorer.ts) against NAB itself: scores the result
 * files NAB ships for its detectors, at the thresholds NAB tuned for each
 * (config/thresholds.json), and prints our normalized score per profile
 * beside the published one (results/final_results.json) with the
 * difference. Exits 1 if any differs by more than 0.1 or a detector's files
 * are missing, so the scorer's faithfulness is a check, not a claim.
 *
 * @example bun bench/nab/check-scorer.ts /tmp/nab
 *          bun bench/nab/check-scorer.ts /tmp/nab numenta knncad   # only these detectors
 */
import { type NabCorpus, readCorpus, readFinalResults, readProfiles, readResultScores, readThresholds, resultDetectors } from "./corpus.ts";
import { detectionsAt, type ProfileName, profileNames, scoreCorpus } from "./scorer.ts";

/** The list; ARTime only where the checkout has it. */
const detectorsDefault = ["null", "random", "windowedGaussian", "numenta", "twitterADVec", "knncad", "relativeEntropy", "randomCutForest", "ARTime"];
const toleranceMax = 0.1; // normalized points

interface Row {
  detector: string;
  profile: ProfileName;
  threshold: number;
  ours: number;
  published: number;
  windowsFound: number;
  fpRows: number;
}

async function scoreDetector(nabDir: string, corpus: NabCorpus, detector: string, thresholds: Partial<Record<ProfileName, number>>): Promise<Omit<Row, "published">[]> {
  const scores = await Promise.all(corpus.files.map((f) => readResultScores(nabDir, detector, f.name)));
  const profiles = await readProfiles(nabDir);
  return profileNames.map((profile) => {
    const threshold = thresholds[profile];
    if (threshold === undefined) throw new Error(`config/thresholds.json: no ${profile} threshold for ${detector}`);
    const files = corpus.files.map((f, k) => {
      if (scores[k].length !== f.truth.rows) throw new Error(`${detector}'s result for ${f.name} has ${scores[k].length} rows, the data ${f.truth.rows}`);
      return { truth: f.truth, detected: detectionsAt(scores[k], threshold) };
    });
    const s = scoreCorpus(files, profiles[profile]);
    return { detector, profile, threshold, ours: s.normalized, windowsFound: s.windowsFound, fpRows: s.fpRows };
  });
}

function printTable(rows: Row[]): void {
  console.log("| detector | profile | threshold | ours | NAB published | difference | windows found | detections outside windows |");
  console.log("|---|---|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    const diff = r.ours - r.published;
    console.log(`| ${r.detector} | ${r.profile} | ${r.threshold} | ${r.ours.toFixed(3)} | ${r.published.toFixed(3)} | ${diff.toExponential(1)} | ${r.windowsFound} | ${r.fpRows} |`);
  }
}

async function main(): Promise<number> {
  const [nabDir, ...only] = process.argv.slice(2);
  if (nabDir === undefined) {
    console.error("usage: bun bench/nab/check-scorer.ts <nab-checkout> [detector ...]");
    return 2;
  }
  const started = performance.now();
  const corpus = await readCorpus(nabDir);
  const [thresholds, published, present] = [await readThresholds(nabDir), await readFinalResults(nabDir), resultDetectors(nabDir)];
  const wanted = only.length > 0 ? only : detectorsDefault.filter((d) => present.includes(d));
  const rows: Row[] = [];
  for (const detector of wanted) {
    const scored = await scoreDetector(nabDir, corpus, detector, thresholds.get(detector) ?? {});
    for (const r of scored) {
      const pub = published.get(detector)?.[r.profile];
      if (pub === undefined) throw new Error(`results/final_results.json: no ${r.profile} score for ${detector}`);
      rows.push({ ...r, published: pub });
    }
  }
  const windows = corpus.files.reduce((n, f) => n + f.truth.windows.length, 0);
  console.log(`NAB at ${nabDir}: ${corpus.files.length} files, ${windows} windows; ${wanted.length} detectors\n`);
  printTable(rows);
  const worst = Math.max(...rows.map((r) => Math.abs(r.ours - r.published)));
  console.log(`\nlargest difference ${worst.toExponential(2)} (tolerance ${toleranceMax}); ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return worst <= toleranceMax ? 0 : 1;
}

process.exit(await main());
