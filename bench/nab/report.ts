/**
 * The NAB score table both the live replay (replay.ts) and the offline
 * harness (offline.ts) print: per split, warning + critical and critical
 * only, the three profiles normalized, the windows found and the detections
 * outside every window (after the probationary period: the rows the score
 * charges), plus the share of critical detections that fall inside a window
 * (what "critical" means on real data).
 *
 * @example printScores(files, detections, profiles, ["dev"]);
 */
import { inSplit, type NabFile, type Split } from "./corpus.ts";
import { type CostProfile, type ProfileName, probationRows, profileNames, scoreCorpus } from "./scorer.ts";

/** A file's detections as flags per row: every severity, and critical only. */
export interface Detections { all: Uint8Array; critical: Uint8Array; anomalies: number; bySource: Record<string, number> }

export type Variant = "warning + critical" | "critical only";

/** Empty detections for a file of `rows` rows. */
export function noDetections(rows: number): Detections {
  return { all: new Uint8Array(rows), critical: new Uint8Array(rows), anomalies: 0, bySource: {} };
}

/** Marks one anomaly at `row` and counts it under `key` (e.g. "value spike warning"). */
export function addDetection(d: Detections, row: number, severity: "warning" | "critical", key: string): void {
  d.all[row] = 1;
  if (severity === "critical") d.critical[row] = 1;
  d.anomalies++;
  d.bySource[key] = (d.bySource[key] ?? 0) + 1;
}

/** The anomalies of all files by key, summed. */
export function countsOf(detections: readonly Detections[]): Record<string, number> {
  const by: Record<string, number> = {};
  for (const d of detections) for (const [k, n] of Object.entries(d.bySource)) by[k] = (by[k] ?? 0) + n;
  return by;
}

/** Detected rows inside a labelled window, and all detected rows, both after the probationary period. */
export function precisionOf(files: readonly NabFile[], flags: readonly Uint8Array[]): { inside: number; all: number } {
  let inside = 0;
  let all = 0;
  files.forEach((f, k) => {
    const d = flags[k];
    for (let i = probationRows(f.truth.rows); i < f.truth.rows; i++) {
      if (d[i] === 0) continue;
      all++;
      if (f.truth.windows.some((w) => i >= w.start && i <= w.end)) inside++;
    }
  });
  return { inside, all };
}

/** The score rows (one per split and variant), as a Markdown table, one line each. */
export function scoreLines(files: readonly NabFile[], detections: readonly Detections[], profiles: Record<ProfileName, CostProfile>, splits: readonly Split[]): string[] {
  const lines = [
    "| split | files | windows | detections | standard | low-FP | low-FN | windows found | detections outside every window | inside a window |",
    "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const split of splits) {
    const picked = files.map((f, k) => ({ f, d: detections[k] })).filter(({ f }) => inSplit(f.category, split));
    for (const variant of ["warning + critical", "critical only"] as Variant[]) {
      const flags = picked.map(({ d }) => (variant === "critical only" ? d.critical : d.all));
      const scored = picked.map(({ f }, k) => ({ truth: f.truth, detected: flags[k] }));
      const s = profileNames.map((p) => scoreCorpus(scored, profiles[p]));
      const cells = s.map((x) => x.normalized.toFixed(1));
      const p = precisionOf(picked.map(({ f }) => f), flags);
      const share = p.all === 0 ? "–" : `${p.inside}/${p.all} (${((100 * p.inside) / p.all).toFixed(0)} %)`;
      lines.push(`| ${split} | ${picked.length} | ${s[0].windows} | ${variant} | ${cells.join(" | ")} | ${s[0].windowsFound} | ${s[0].fpRows} | ${share} |`);
    }
  }
  return lines;
}

/** Prints scoreLines. */
export function printScores(files: readonly NabFile[], detections: readonly Detections[], profiles: Record<ProfileName, CostProfile>, splits: readonly Split[]): void {
  for (const line of scoreLines(files, detections, profiles, splits)) console.log(line);
}
