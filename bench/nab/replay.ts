/**
 * Replays the NAB corpus into a real weir as live streams and scores weir's
 * anomalies with NAB's scorer (scorer.ts), as issue 20 describes: row i of a
 * file is event `nab.value{file="<category>/<name>"}` at t0 + i · spacingMs,
 * all files interleaved in event time (round i carries row i of every file
 * that has one), sent in order in bodies of many events to a weir started as
 * its own process (fresh data directory, free port). The base window equals
 * the spacing, so each row lands in its own window and the count detector
 * sees one event per window (never an anomaly); the value detector
 * (src/actors/anomaly.ts) judges every row. Once weir has taken every event,
 * each file's anomalies are read back from /api/v1/anomalies, their ts mapped
 * back to a row, and turned into detections two ways: warning + critical, and
 * critical only. Prints NAB's three profiles, normalized, for the
 * development split, the held-out split and the whole corpus (those
 * replayed), with the detections outside every window (after the
 * probationary period: the rows the score charges) and the share of
 * detections inside a window (report.ts).
 *
 * The spacing matters less than it did: weir's cooldown is 60 s of event
 * time and 50 values (both must pass), so 60 rows at the default 1 s
 * spacing and 50 at NAB's native 5 min; the season is in values (288). The
 * offline harness (offline.ts) gives the same figures without a weir, in
 * about a second.
 *
 * @example bun bench/nab/replay.ts /tmp/nab                 # the development split only
 *          bun bench/nab/replay.ts /tmp/nab --split all     # dev, held-out and all (only once the detector is frozen)
 *          bun bench/nab/replay.ts /tmp/nab --spacing-ms 300000
 */
import { newPostCounts, postUntilAccepted } from "../fixtures/post-until-accepted.ts";
import { startWeirProcess, type WeirProcess } from "../fixtures/weir-process.ts";
import { loadSplit, parseNabArgs, splitsOf } from "./args.ts";
import type { NabFile } from "./corpus.ts";
import { addDetection, countsOf, type Detections, noDetections, printScores } from "./report.ts";

const bodyEvents = 5_000; // ~0.5 MB of JSON, well under WEIR_MAX_BODY's 8 MiB
const sendDeadlineMs = 30 * 60_000; // the whole corpus is 365,609 events
const drainStableMs = 2_000; // weir has taken everything once its queues stay empty this long
const drainWaitMsMax = 5 * 60_000;
const drainPollMs = 100;
const anomaliesPerReadMax = 10_000; // limits.queryRowsMax: one answer's rows
const dayMs = 86_400_000;

const usage = "usage: bun bench/nab/replay.ts <nab-checkout> [--split dev|heldout|all] [--spacing-ms N]";

/** The series a file is replayed as: its name without ".csv", as a tag. */
export function seriesOf(file: NabFile): string {
  return `nab.value{file="${file.name.replace(/\.csv$/, "")}"}`;
}

/** JSON bodies of `bodyEvents` events each, round by round: row i of every file that has one, then row i + 1. */
function* bodies(files: NabFile[], t0: number, spacingMs: number): Generator<string> {
  const rowsMax = Math.max(...files.map((f) => f.truth.rows));
  const tags = files.map((f) => ({ file: f.name.replace(/\.csv$/, "") }));
  let batch: object[] = [];
  for (let i = 0; i < rowsMax; i++) {
    for (let k = 0; k < files.length; k++) {
      if (i >= files[k].truth.rows) continue;
      batch.push({ name: "nab.value", value: files[k].values[i], ts: t0 + i * spacingMs, tags: tags[k] });
      if (batch.length === bodyEvents) {
        yield JSON.stringify(batch);
        batch = [];
      }
    }
  }
  if (batch.length > 0) yield JSON.stringify(batch);
}

/** Sends every body in order, each until accepted (a refused body is sent again, so none is lost and none overtakes another). */
async function sendAll(weir: WeirProcess, files: NabFile[], t0: number, spacingMs: number): Promise<number> {
  const counts = newPostCounts();
  const deadline = performance.now() + sendDeadlineMs;
  for (const body of bodies(files, t0, spacingMs)) {
    await postUntilAccepted(`${weir.url}/api/v1/events`, body, counts, deadline);
  }
  const sent = files.reduce((n, f) => n + f.truth.rows, 0);
  if (counts.accepted !== sent || counts.rejected > 0 || counts.bodiesGivenUp > 0 || counts.otherStatus > 0) {
    throw new Error(`sent ${sent} events: ${JSON.stringify(counts)}`);
  }
  return sent;
}

/** Waits until weir has ingested `events` and its partitions' queues have stayed empty for drainStableMs. */
async function waitDrained(weir: WeirProcess, events: number): Promise<void> {
  const started = performance.now();
  let quietSince = performance.now();
  while (performance.now() - quietSince < drainStableMs) {
    if (performance.now() - started > drainWaitMsMax) throw new Error(`weir did not drain ${events} events in ${drainWaitMsMax} ms`);
    const m = await weir.metrics();
    if ((m.weir_queue_depth ?? 0) > 0 || (m.weir_events_ingested_total ?? 0) < events) quietSince = performance.now();
    await Bun.sleep(drainPollMs);
  }
}

interface AnomalyRead { ts: number; severity: "warning" | "critical"; source: string; test: string }

/**
 * One series' anomalies of one severity. The route lists newest first with no
 * upper time bound, so there is no page past a full answer: one is an error
 * (it never happens here: the cooldown keeps a series far below it).
 */
async function readAnomalies(url: string, series: string, severity: AnomalyRead["severity"]): Promise<AnomalyRead[]> {
  const q = new URLSearchParams({ series, severity, limit: String(anomaliesPerReadMax) });
  const res = await fetch(`${url}/api/v1/anomalies?${q}`);
  if (res.status !== 200) throw new Error(`GET /api/v1/anomalies?${q}: ${res.status} ${await res.text()}`);
  const { anomalies } = (await res.json()) as { anomalies: AnomalyRead[] };
  if (anomalies.length >= anomaliesPerReadMax) throw new Error(`${series}: ${anomalies.length} ${severity} anomalies fill one answer; cannot page further`);
  return anomalies;
}

/** A file's anomalies as detection flags per row: ts back to a row (an off-grid ts would be a replay bug). */
async function detectionsOf(url: string, file: NabFile, t0: number, spacingMs: number): Promise<Detections> {
  const out = noDetections(file.truth.rows);
  const seen = new Set<string>();
  for (const severity of ["warning", "critical"] as const) {
    for (const a of await readAnomalies(url, seriesOf(file), severity)) {
      const row = (a.ts - t0) / spacingMs;
      if (!Number.isInteger(row) || row < 0 || row >= file.truth.rows) throw new Error(`${seriesOf(file)}: anomaly at ts ${a.ts} is not a row (t0 ${t0})`);
      // The same anomaly listed twice (a partition that replayed its log after a restart stores it again) is one detection, counted apart.
      const key = `${a.source}|${a.ts}|${severity}`;
      if (seen.has(key)) {
        out.bySource["listed twice"] = (out.bySource["listed twice"] ?? 0) + 1;
        continue;
      }
      seen.add(key);
      addDetection(out, row, severity, `${a.source} ${a.test} ${severity}`);
    }
  }
  return out;
}

async function main(): Promise<number> {
  const args = parseNabArgs(process.argv.slice(2), usage);
  if (typeof args === "string") {
    console.error(args);
    return 2;
  }
  const started = performance.now();
  const { files, profiles } = await loadSplit(args);
  const spanMs = Math.max(...files.map((f) => f.truth.rows)) * args.spacingMs;
  // Event times end about ten minutes ago, aligned to the spacing so each row is its own base window.
  const t0 = Math.floor((Date.now() - spanMs - 10 * 60_000) / args.spacingMs) * args.spacingMs;
  const ageDays = Math.max(7, Math.ceil(spanMs / dayMs) + 1); // events and anomalies must outlive the replay
  const weir = await startWeirProcess({ WEIR_WINDOWS: `${args.spacingMs}ms`, WEIR_MAX_EVENT_AGE: `${ageDays}d`, WEIR_RETENTION_1M: `${Math.max(30, ageDays)}d` });
  const readyAt = performance.now();
  try {
    const sent = await sendAll(weir, files, t0, args.spacingMs);
    const sentAt = performance.now();
    await waitDrained(weir, sent);
    const detections = await Promise.all(files.map((f) => detectionsOf(weir.url, f, t0, args.spacingMs)));
    const bySource = countsOf(detections);
    console.log(`weir from ${process.env.WEIR_DIR ?? "this checkout"}: ${files.length} NAB files (${args.split}), ${sent} events at ${args.spacingMs} ms spacing, ` +
      `read and started in ${((readyAt - started) / 1000).toFixed(1)} s, sent in ${((sentAt - readyAt) / 1000).toFixed(1)} s; anomalies ${JSON.stringify(bySource)}\n`);
    printScores(files, detections, profiles, splitsOf(args.split));
    console.log(`\n${((performance.now() - started) / 1000).toFixed(1)} s in all`);
    return 0;
  } finally {
    await weir.stop();
  }
}

process.exit(await main());
