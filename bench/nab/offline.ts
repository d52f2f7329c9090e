/**
 * The NAB corpus through the anomaly logic alone, offline: the very pure
 * logic the partition pipeline runs (createAnomalyLogic, with each series'
 * knobs from an `anomalies:` list through AnomalyKnobTable, as the pipeline
 * sets them), fed row by row as the live replay (replay.ts) feeds weir: row
 * i of a file is a value of its own series at t0 + i · spacingMs, and a
 * closed base window of one event (the replay's windows equal the spacing)
 * is a window count of 1 at its end. Series are judged independently, so
 * the order across files does not change a verdict and each file is run
 * through alone. A dev-split score takes seconds; the live replay is the
 * reference the figures are quoted from (they agree: see BENCHMARKS.md).
 *
 * @example bun bench/nab/offline.ts /tmp/nab                              # dev split, defaults
 *          bun bench/nab/offline.ts /tmp/nab --opts '{"criticalZ": 6}'     # AnomalyOptions overrides
 *          bun bench/nab/offline.ts /tmp/nab --anomalies '[{"match": "nab.*", "cooldown": "10m"}]'
 */
import { type Anomaly, type AnomalyOptions, createAnomalyLogic } from "../../src/actors/anomaly.ts";
import { AnomalyKnobTable, parseAnomalyKnobs } from "../../src/actors/anomaly-knobs.ts";
import type { EventBatch } from "../../src/actors/window.ts";
import { loadSplit, parseNabArgs, splitsOf } from "./args.ts";
import type { NabFile } from "./corpus.ts";
import { addDetection, countsOf, type Detections, noDetections, printScores } from "./report.ts";

const usage = "usage: bun bench/nab/offline.ts <nab-checkout> [--split dev|heldout|all] [--spacing-ms N] [--opts JSON] [--anomalies JSON]";

/**
 * One file's detections from the anomaly logic, fed as the pipeline feeds it (series `nab.value{file=...}`).
 * @example const d = detectFile(file, new AnomalyKnobTable([]), {}, 1000);
 */
export function detectFile(file: NabFile, table: AnomalyKnobTable, opts: Partial<AnomalyOptions>, spacingMs: number): Detections {
  const logic = createAnomalyLogic({ ...opts, seriesMax: 1 });
  const knobs = table.knobsOf("nab.value", { file: file.name.replace(/\.csv$/, "") });
  if (knobs !== null) logic.setSeriesKnobs(0, knobs);
  const st = logic.init();
  const rows = file.truth.rows;
  const out = noDetections(rows);
  const t0 = 1_700_000_000_000;
  const emit = (a: Anomaly) => {
    // Only value anomalies are rows of the file (the replay's count detector sees one event a window: never one).
    if (a.source === "value") addDetection(out, (a.ts - t0) / spacingMs, a.severity, `${a.source} ${a.test} ${a.severity}`);
    else out.bySource[`${a.source} ${a.test} ${a.severity}`] = (out.bySource[`${a.source} ${a.test} ${a.severity}`] ?? 0) + 1;
  };
  const batch: EventBatch = { n: 1, sid: new Uint32Array(1), ts: new Float64Array(1), value: new Float64Array(1), recvMs: 0 };
  for (let i = 0; i < rows; i++) {
    batch.ts[0] = t0 + i * spacingMs;
    batch.value[0] = file.values[i];
    logic.handle(st, batch, emit);
    logic.handleWindowCount(st, 0, t0 + (i + 1) * spacingMs, 1, emit);
  }
  return out;
}

async function main(): Promise<number> {
  let opts: Partial<AnomalyOptions> = {};
  let anomalies: unknown = [];
  const args = parseNabArgs(process.argv.slice(2), usage, (flag, value) => {
    if (flag === "--opts" && value !== undefined) opts = JSON.parse(value);
    else if (flag === "--anomalies" && value !== undefined) anomalies = JSON.parse(value);
    else return false;
    return true;
  });
  if (typeof args === "string") {
    console.error(args);
    return 2;
  }
  const started = performance.now();
  const { files, profiles } = await loadSplit(args);
  const table = new AnomalyKnobTable(parseAnomalyKnobs(anomalies));
  const detections = files.map((f) => detectFile(f, table, opts, args.spacingMs));
  console.log(`anomaly logic offline: ${files.length} NAB files (${args.split}) at ${args.spacingMs} ms spacing; anomalies ${JSON.stringify(countsOf(detections))}\n`);
  printScores(files, detections, profiles, splitsOf(args.split));
  console.log(`\n${((performance.now() - started) / 1000).toFixed(1)} s in all`);
  return 0;
}

if (import.meta.main) process.exit(await main());
