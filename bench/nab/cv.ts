/**
 * Cross-validation within NAB's development split: how well a way of
 * tuning the detector carries to series it was not tuned on, without
 * looking at the held-out split. A grid of candidate configurations (the
 * cartesian product of `--grid`'s knob lists, each a set of AnomalyOptions,
 * times the two detection variants, warning + critical and critical only)
 * is run offline (offline.ts's detectFile) over every dev file once. Then,
 * for each dev category in turn, the candidate with the best standard score
 * on the other categories is picked and scored on the category left out;
 * the sum of those left-out scores, normalized over the whole dev split, is
 * the cross-validated score. A method whose cross-validated score is close
 * to its in-sample best is not fitted to dev's particular series; the gap
 * between them is what tuning on dev alone promises too much by.
 *
 * Scores are pooled raw (NAB normalizes a corpus, not a category: a category
 * without windows, artificialNoAnomaly, still costs its false positives).
 *
 * @example bun bench/nab/cv.ts /tmp/nab --grid '{"warningZ": [4.5, 5, 5.5], "sustainedZ": [3, 3.5, 4]}'
 *          bun bench/nab/cv.ts /tmp/nab --grid '{"cooldownGrowth": [0, 0.5]}' --base '{"season": 0}'
 */
import type { AnomalyOptions } from "../../src/actors/anomaly.ts";
import { AnomalyKnobTable } from "../../src/actors/anomaly-knobs.ts";
import { loadSplit, parseNabArgs } from "./args.ts";
import type { NabFile } from "./corpus.ts";
import { detectFile } from "./offline.ts";
import type { Variant } from "./report.ts";
import { type CostProfile, type ProfileName, profileNames, scoreFile } from "./scorer.ts";

const usage = "usage: bun bench/nab/cv.ts <nab-checkout> [--grid JSON] [--base JSON] [--spacing-ms N]";

export interface Candidate { opts: Partial<AnomalyOptions>; variant: Variant }

/** Per candidate, per file, per profile: the file's raw score and its null score. */
export interface ScoreCube { raw: Float64Array[][]; nullRaw: number[][]; windows: number[] }

/** The grid's configurations: every combination of the knobs' values over `base`. @example expandGrid({}, { warningZ: [4, 5] }).length === 2 */
export function expandGrid(base: Partial<AnomalyOptions>, grid: Record<string, unknown[]>): Partial<AnomalyOptions>[] {
  let out: Partial<AnomalyOptions>[] = [{ ...base }];
  for (const [knob, values] of Object.entries(grid)) out = out.flatMap((o) => values.map((v) => ({ ...o, [knob]: v })));
  return out;
}

/** Every candidate's raw score on every file under every profile (one detector run per configuration). */
export function scoreCube(files: readonly NabFile[], configs: readonly Partial<AnomalyOptions>[], profiles: Record<ProfileName, CostProfile>, spacingMs: number): { candidates: Candidate[]; cube: ScoreCube } {
  const table = new AnomalyKnobTable([]);
  const candidates: Candidate[] = [];
  const raw: Float64Array[][] = [];
  for (const opts of configs) {
    const det = files.map((f) => detectFile(f, table, opts, spacingMs));
    for (const variant of ["warning + critical", "critical only"] as Variant[]) {
      candidates.push({ opts, variant });
      raw.push(profileNames.map((p) => Float64Array.from(files, (f, k) => scoreFile(f.truth, variant === "critical only" ? det[k].critical : det[k].all, profiles[p]).score)));
    }
  }
  const nullRaw = profileNames.map((p) => files.map((f) => scoreFile(f.truth, new Uint8Array(f.truth.rows), profiles[p]).score));
  return { candidates, cube: { raw, nullRaw, windows: files.map((f) => f.truth.windows.length) } };
}

/** 100 · (Σ raw − Σ null) / (Σ perfect − Σ null) over the files `inFold` picks, for profile p (index into profileNames). */
export function normalizedOver(cube: ScoreCube, rawOf: (file: number) => number, p: number, tp: number, inFold: (file: number) => boolean): number {
  let raw = 0;
  let nul = 0;
  let perfect = 0;
  cube.windows.forEach((w, k) => {
    if (!inFold(k)) return;
    raw += rawOf(k);
    nul += cube.nullRaw[p][k];
    perfect += w * tp;
  });
  return (100 * (raw - nul)) / (perfect - nul);
}

export interface CvResult {
  /** Per profile: the cross-validated dev score (each category scored by the candidate picked without it). */
  cv: number[];
  /** Per profile: the best candidate's in-sample dev score (picked on all of dev by the standard profile). */
  inSample: number[];
  best: number;
  /** Per category left out: the candidate picked on the others. */
  picks: { category: string; candidate: number }[];
}

/** Leave-one-category-out over the files' categories; candidates are picked by the standard profile's raw sum. */
export function crossValidate(files: readonly NabFile[], cube: ScoreCube, profiles: Record<ProfileName, CostProfile>): CvResult {
  const categories = [...new Set(files.map((f) => f.category))];
  const pickOn = (keep: (k: number) => boolean) => {
    let best = 0;
    let bestRaw = -Infinity;
    cube.raw.forEach((byProfile, c) => {
      let s = 0;
      byProfile[0].forEach((r, k) => { if (keep(k)) s += r; });
      if (s > bestRaw + 1e-9) { bestRaw = s; best = c; }
    });
    return best;
  };
  const picks = categories.map((category) => ({ category, candidate: pickOn((k) => files[k].category !== category) }));
  const pickOf = new Map(picks.map((p) => [p.category, p.candidate]));
  const best = pickOn(() => true);
  const tp = (p: number) => profiles[profileNames[p]].tpWeight;
  const cv = profileNames.map((_, p) => normalizedOver(cube, (k) => cube.raw[pickOf.get(files[k].category)!][p][k], p, tp(p), () => true));
  const inSample = profileNames.map((_, p) => normalizedOver(cube, (k) => cube.raw[best][p][k], p, tp(p), () => true));
  return { cv, inSample, best, picks };
}

const describe = (c: Candidate) => `${JSON.stringify(c.opts)} ${c.variant}`;

async function main(): Promise<number> {
  let grid: Record<string, unknown[]> = {};
  let base: Partial<AnomalyOptions> = {};
  const args = parseNabArgs(process.argv.slice(2), usage, (flag, value) => {
    if (flag === "--grid" && value !== undefined) grid = JSON.parse(value);
    else if (flag === "--base" && value !== undefined) base = JSON.parse(value);
    else return false;
    return true;
  });
  if (typeof args === "string" || args.split !== "dev") {
    console.error(typeof args === "string" ? args : `${usage}\n(cross-validation runs on the dev split only)`);
    return 2;
  }
  const started = performance.now();
  const { files, profiles } = await loadSplit(args);
  const configs = expandGrid(base, grid);
  const { candidates, cube } = scoreCube(files, configs, profiles, args.spacingMs);
  const r = crossValidate(files, cube, profiles);
  console.log(`NAB dev split, ${files.length} files, ${candidates.length} candidates (${configs.length} configurations × 2 detection variants)\n`);
  console.log("| category left out | picked on the others |\n|---|---|");
  for (const p of r.picks) console.log(`| ${p.category} | ${describe(candidates[p.candidate])} |`);
  console.log(`\nbest on all of dev: ${describe(candidates[r.best])}\n`);
  console.log("| dev score | standard | low-FP | low-FN |\n|---|---:|---:|---:|");
  console.log(`| in-sample (best on all of dev) | ${r.inSample.map((x) => x.toFixed(1)).join(" | ")} |`);
  console.log(`| cross-validated (leave one category out) | ${r.cv.map((x) => x.toFixed(1)).join(" | ")} |`);
  console.log(`\n${((performance.now() - started) / 1000).toFixed(1)} s in all`);
  return 0;
}

if (import.meta.main) process.exit(await main());
