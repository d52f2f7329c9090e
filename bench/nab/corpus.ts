/**
 * Reading a NAB checkout (github.com/numenta/NAB, v1.1): its data files,
 * labelled windows, cost profiles, tuned thresholds and its detectors' result
 * files. NAB's data stays out of this repository; scripts take the
 * checkout's path. Every missing or malformed piece is a NabCorpusError
 * naming the path, so a wrong checkout says what is wrong with it.
 *
 * @example
 *   const corpus = await readCorpus("/tmp/nab");
 *   corpus.files[0]; // { name: "artificialNoAnomaly/art_daily_no_noise.csv", category, timestamps, values, truth }
 *   const scores = await readResultScores("/tmp/nab", "numenta", corpus.files[0].name);
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type CostProfile, type FileTruth, type ProfileName, profileNames, type RowWindow } from "./scorer.ts";

/** A NAB checkout that lacks a file or holds one we cannot read. */
export class NabCorpusError extends Error {
  override name = "NabCorpusError";
  constructor(readonly path: string, what: string) {
    super(`${path}: ${what}`);
  }
}

/** The development split (tune here) and held-out split (report only once the detector is frozen). */
export const devCategories = ["artificialNoAnomaly", "artificialWithAnomaly", "realAdExchange", "realAWSCloudwatch", "realTraffic"] as const;
export const heldoutCategories = ["realKnownCause", "realTweets"] as const;
export type Split = "dev" | "heldout" | "all";

/** Whether a category belongs to a split. @example inSplit("realTweets", "heldout") === true */
export function inSplit(category: string, split: Split): boolean {
  if (split === "all") return true;
  const members: readonly string[] = split === "dev" ? devCategories : heldoutCategories;
  return members.includes(category);
}

export interface NabFile {
  /** As NAB names it: "<category>/<file>.csv". */
  name: string;
  category: string;
  /** "YYYY-MM-DD HH:MM:SS", one per row. */
  timestamps: string[];
  values: Float64Array;
  truth: FileTruth;
}

export interface NabCorpus {
  files: NabFile[];
}

/** Text of a file of the checkout, or a NabCorpusError naming it. */
async function readText(path: string): Promise<string> {
  const file = Bun.file(path);
  if (!(await file.exists())) throw new NabCorpusError(path, "missing (is this a NAB checkout?)");
  return file.text();
}

async function readJson(path: string): Promise<unknown> {
  const text = await readText(path);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new NabCorpusError(path, `not JSON: ${(e as Error).message}`);
  }
}

/** The label file writes "2014-04-10 07:15:00.000000", the data "2014-04-10 07:15:00": compare without the zero fraction. */
function canonicalTs(ts: string): string {
  return ts.trim().replace(/\.0+$/, "");
}

/** A CSV with a header, as columns by header name (NAB's files hold no quoted commas). */
export function parseCsv(path: string, text: string): Map<string, string[]> {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  if (lines.length < 2) throw new NabCorpusError(path, "no rows under the header");
  const header = lines[0].trim().split(",");
  const columns = header.map(() => [] as string[]);
  for (let r = 1; r < lines.length; r++) {
    const cells = lines[r].trim().split(",");
    if (cells.length !== header.length) throw new NabCorpusError(path, `line ${r + 1} has ${cells.length} cells, the header ${header.length}`);
    for (let c = 0; c < cells.length; c++) columns[c].push(cells[c]);
  }
  return new Map(header.map((h, c) => [h, columns[c]]));
}

function numberColumn(path: string, csv: Map<string, string[]>, column: string): Float64Array {
  const cells = csv.get(column);
  if (cells === undefined) throw new NabCorpusError(path, `no column "${column}" (has ${[...csv.keys()].join(", ")})`);
  const out = new Float64Array(cells.length);
  for (let i = 0; i < cells.length; i++) {
    out[i] = Number(cells[i]);
    if (cells[i] === "" || Number.isNaN(out[i])) throw new NabCorpusError(path, `line ${i + 2}: "${cells[i]}" in "${column}" is not a number`);
  }
  return out;
}

/** Window limits (timestamps) to inclusive row ranges; a limit not among the file's timestamps is an error, as in NAB. */
function windowsToRows(path: string, timestamps: string[], limits: unknown): RowWindow[] {
  if (!Array.isArray(limits)) throw new NabCorpusError(path, "windows are not a list");
  const rowOf = new Map<string, number>();
  timestamps.forEach((t, i) => { if (!rowOf.has(t)) rowOf.set(t, i); });
  return limits.map((pair) => {
    const [start, end] = (Array.isArray(pair) ? pair : []).map((t) => rowOf.get(canonicalTs(String(t))));
    if (start === undefined || end === undefined) throw new NabCorpusError(path, `window ${JSON.stringify(pair)} does not match the data file's timestamps`);
    return { start, end };
  });
}

/** Every data file of the checkout with its windows, sorted by name. */
export async function readCorpus(nabDir: string): Promise<NabCorpus> {
  const dataDir = join(nabDir, "data");
  if (!existsSync(dataDir)) throw new NabCorpusError(dataDir, "missing (is this a NAB checkout?)");
  const labelsPath = join(nabDir, "labels", "combined_windows.json");
  const labels = (await readJson(labelsPath)) as Record<string, unknown>;
  const names = readdirSync(dataDir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => readdirSync(join(dataDir, d.name)).filter((f) => f.endsWith(".csv")).map((f) => `${d.name}/${f}`))
    .sort();
  if (names.length === 0) throw new NabCorpusError(dataDir, "holds no <category>/<file>.csv");
  const files: NabFile[] = [];
  for (const name of names) {
    const path = join(dataDir, name);
    const csv = parseCsv(path, await readText(path));
    const timestamps = (csv.get("timestamp") ?? []).map(canonicalTs);
    if (timestamps.length === 0) throw new NabCorpusError(path, `no column "timestamp"`);
    if (!(name in labels)) throw new NabCorpusError(labelsPath, `no windows for ${name}`);
    const windows = windowsToRows(`${labelsPath} (${name})`, timestamps, labels[name]);
    files.push({ name, category: name.split("/")[0], timestamps, values: numberColumn(path, csv, "value"), truth: { rows: timestamps.length, windows } });
  }
  return { files };
}

/** The path of a detector's result file for a data file: results/<detector>/<category>/<detector>_<file>.csv. */
export function resultPath(nabDir: string, detector: string, name: string): string {
  const [category, file] = name.split("/");
  return join(nabDir, "results", detector, category, `${detector}_${file}`);
}

/** A detector's anomaly_score per row of one data file. */
export async function readResultScores(nabDir: string, detector: string, name: string): Promise<Float64Array> {
  const path = resultPath(nabDir, detector, name);
  return numberColumn(path, parseCsv(path, await readText(path)), "anomaly_score");
}

/** Which detectors have result files in the checkout. */
export function resultDetectors(nabDir: string): string[] {
  const dir = join(nabDir, "results");
  if (!existsSync(dir)) throw new NabCorpusError(dir, "missing (is this a NAB checkout?)");
  return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
}

type PerProfile = Partial<Record<ProfileName, number>>;

/** config/profiles.json: the cost matrix of each of the three profiles. */
export async function readProfiles(nabDir: string): Promise<Record<ProfileName, CostProfile>> {
  const path = join(nabDir, "config", "profiles.json");
  const json = (await readJson(path)) as Record<string, { CostMatrix?: CostProfile }>;
  const out = {} as Record<ProfileName, CostProfile>;
  for (const p of profileNames) {
    const m = json[p]?.CostMatrix;
    if (m === undefined || ![m.tpWeight, m.fpWeight, m.fnWeight].every(Number.isFinite)) throw new NabCorpusError(path, `no cost matrix for "${p}"`);
    out[p] = { tpWeight: m.tpWeight, fpWeight: m.fpWeight, fnWeight: m.fnWeight };
  }
  return out;
}

/** config/thresholds.json: each detector's tuned threshold per profile. */
export async function readThresholds(nabDir: string): Promise<Map<string, PerProfile>> {
  const json = (await readJson(join(nabDir, "config", "thresholds.json"))) as Record<string, Record<string, { threshold: number }>>;
  return new Map(Object.entries(json).map(([d, byProfile]) => [d, Object.fromEntries(Object.entries(byProfile).map(([p, v]) => [p, v.threshold]))]));
}

/** results/final_results.json: NAB's published normalized scores per detector and profile. */
export async function readFinalResults(nabDir: string): Promise<Map<string, PerProfile>> {
  const json = (await readJson(join(nabDir, "results", "final_results.json"))) as Record<string, PerProfile>;
  return new Map(Object.entries(json));
}
