/**
 * The anomaly detector's state (anomaly.ts): its row layout (the fields of
 * one series and source, in the order a value touches them), the strength
 * ring of the last cycle, and their checkpoint: snapshot, restore, and the
 * upgrade of a checkpoint of an earlier layout. Every bound is fixed per series:
 * anomalyStateBytesPerSeries, whatever the series sends.
 *
 * @example
 *   const st = new AnomalyState(rowsInitial);
 *   growState(st, 700, seriesMax);                       // rows for series 0..1023 now
 *   const again = runSlices(restoreStateSlices(decode(encode(runSlices(snapshotStateSlices(st)))), seriesMax, 11, 5));
 */
import { strict as assert } from "node:assert";
import { limits } from "../runtime/limits.ts";
import { bytesOf, copyIntoSlices } from "../runtime/slices.ts";
import { float64Of } from "../sketch/quantile.ts";
import type { Anomaly } from "./anomaly.ts";
import { cycleBins, seasonSlackValues } from "./anomaly-tuning.ts";

/** Plain data: `fields` numbers per series row, for rows [0, rows); their strength rings; the last alert per series and source. */
export interface AnomalySnapshot {
  version: 5;
  fields: number;
  rows: number;
  ringBytes: number;
  /** Version 5 on: the cycle profile's phases (cycleBins), its rows and spreads. */
  cycleBins?: number;
  cycle?: Float64Array | Uint8Array;
  cycleSpread?: Float32Array | Uint8Array;
  series: number;
  anomalies: number;
  value: Float64Array | Uint8Array;
  count: Float64Array | Uint8Array;
  ring: Uint8Array;
  alerts: Anomaly[];
}

// One row per series and source. Fields, those every value touches first (two cache lines of the row):
export const N = 0; // values seen
export const LEVEL = 1;
export const SLOPE = 2; // per value
export const VAR = 3; // of the one-step prediction errors
export const EWTS = 4; // EW mean of ts at the spread's gain: the baseline's centre in time
export const MAXTS = 5; // newest ts seen
export const SHORT = 6; // EW mean of min(|z|, surpriseZCap): the recent surprise
export const SIGNED = 7; // EW mean of z clipped likewise: whether the recent errors share a sign
export const LMEAN = 8; // EW mean of SHORT over ~surpriseLongValues
export const LVAR = 9; // EW variance of SHORT likewise
export const ZMAX = 10; // largest |z| of the recent past, decaying (novelty gate)
export const LMAX = 11; // largest sustained z likewise
export const PREV = 12; // the previous value
export const EQRUN = 13; // values equal to the previous one, in a row
export const RPOS = 14; // N mod ringBytes: where this value's strength goes in the ring (kept: a float modulo per value costs)
export const ZPREV = 15; // |z| of the previous value: a shift or variance warning needs it at sustainedLeadZ too
// ... then those read now and then (an alert, the end of a run of equal values, a run of outliers in window counts):
export const RUN = 16; // signed count of consecutive same-side values beyond clip/2
export const RUNSUM = 17; // sum of their values
export const LASTN = 18; // N at the last alert (the cooldown in values)
export const EQMAX = 19; // the longest run of equal values seen before (read when a run ends or a value repeats)
export const PRESSURE = 20; // the series' alerts, each decaying with half-life episodeMemoryValues, as of its last alert (at LASTN)
// The cycle profile's scalars (values only; see cycleFields), once the profile has begun:
export const SLOWM = 21; // EW mean of the values over ~a cycle
export const SLOWD = 22; // EW mean |value − SLOWM| likewise: how far the values stray from their slow mean
export const RESD = 23; // EW mean |value − its phase's profile mean| likewise: how far they stray from their cycle
// 24 fields: a row of 192 bytes is three whole cache lines, so the hot 16 fields take two
// (measured with 19 fields: 10–20 % less time per value than an unpadded row, memory-bound at 1,000 series).
export const fields = 24;

/**
 * The cycle profile of a series' values (season > 0), per series: field 0
 * 1 + the values it has learnt (0: not begun; from cycleJudgeCycles cycles on it counts
 * round within the fourth, so it gives the phase without a division), then
 * the mean value of each of the cycle's cycleBins phases (Float64); beside
 * it, in `cycleSpread`, each phase's mean absolute deviation from that mean
 * (Float32: a scale).
 */
export const cycleFields = cycleBins + 1;

/** Rows a new state holds before its first growth. */
export const rowsInitial = 64;
/** Bytes of one series' strength ring: a season of at most anomalySeasonValuesMax, plus the slack after it, plus today. */
export const ringBytes = limits.anomalySeasonValuesMax + seasonSlackValues + 1;
/** State bytes per series: two rows of Float64 (values, window counts), the ring and the cycle profile; alerts kept (the last one per source) come on top. */
export const anomalyStateBytesPerSeries = 2 * fields * 8 + ringBytes + cycleFields * 8 + cycleBins * 4;

/** One source's rows: values or window counts. */
export class Rows {
  /** Last alert per series (sparse): the cooldown's anchor and openAnomaly's answer. */
  readonly last: Array<Anomaly | undefined> = [];
  constructor(public rows: Float64Array, readonly source: "value" | "count") {}
}

export class AnomalyState {
  capacity: number;
  series = 0;
  anomalies = 0;
  readonly value: Rows;
  readonly count: Rows;
  /** Per series (value source), the strengths of the last ringBytes values, one byte each, at N mod ringBytes. */
  ring: Uint8Array;
  /** Per series, the cycle profile (cycleFields numbers) and its phases' spreads (cycleBins). */
  cycle: Float64Array;
  cycleSpread: Float32Array;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.value = new Rows(new Float64Array(capacity * fields), "value");
    this.count = new Rows(new Float64Array(capacity * fields), "count");
    this.ring = new Uint8Array(capacity * ringBytes);
    this.cycle = new Float64Array(capacity * cycleFields);
    this.cycleSpread = new Float32Array(capacity * cycleBins);
  }
}

/**
 * Doubles the rows (both sources), the ring and the cycle profile until `sid` fits, at most seriesMax; rare, so its allocation is fine.
 * @example growState(st, 700, 100_000); st.capacity // 1024
 */
export function growState(st: AnomalyState, sid: number, seriesMax: number): void {
  let cap = st.capacity;
  while (cap <= sid) cap = Math.min(seriesMax, cap * 2);
  for (const src of [st.value, st.count]) src.rows = grown(src.rows, new Float64Array(cap * fields));
  st.ring = grown(st.ring, new Uint8Array(cap * ringBytes));
  st.cycle = grown(st.cycle, new Float64Array(cap * cycleFields));
  st.cycleSpread = grown(st.cycleSpread, new Float32Array(cap * cycleBins));
  st.capacity = cap;
}

/** `to`, a larger array of the same kind, holding `from` at its start. */
function grown<T extends Float64Array | Float32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** The state as plain data, rows up to the last series seen. @example encode(runSlices(snapshotStateSlices(st))) */
export function* snapshotStateSlices(st: AnomalyState): Generator<void, AnomalySnapshot> {
  let rows = st.capacity;
  while (rows > 0 && st.value.rows[(rows - 1) * fields + N] === 0 && st.count.rows[(rows - 1) * fields + N] === 0) rows--;
  const alerts: Anomaly[] = [];
  for (const src of [st.value, st.count]) {
    for (const a of src.last) if (a !== undefined) alerts.push({ ...a });
  }
  // Copied 1 MiB a slice: at 100,000 series the three columns are ~70 MB, 9-39 ms in one piece.
  const value = new Float64Array(rows * fields);
  yield* copyIntoSlices(bytesOf(value), bytesOf(st.value.rows.subarray(0, rows * fields)));
  const count = new Float64Array(rows * fields);
  yield* copyIntoSlices(bytesOf(count), bytesOf(st.count.rows.subarray(0, rows * fields)));
  const ring = new Uint8Array(rows * ringBytes);
  yield* copyIntoSlices(ring, st.ring.subarray(0, rows * ringBytes));
  const cycle = new Float64Array(rows * cycleFields);
  yield* copyIntoSlices(bytesOf(cycle), bytesOf(st.cycle.subarray(0, rows * cycleFields)));
  const cycleSpread = new Float32Array(rows * cycleBins);
  yield* copyIntoSlices(bytesOf(cycleSpread), bytesOf(st.cycleSpread.subarray(0, rows * cycleBins)));
  return { version: 5, fields, rows, ringBytes, cycleBins, series: st.series, anomalies: st.anomalies, alerts, value, count, ring, cycle, cycleSpread };
}

/**
 * The state a snapshot holds (also one of the first layout: see upgradeV1,
 * whose series restart at `restartAt` values; of the second: see upgradeV2;
 * of the third, whose padding field PRESSURE is 0: no recent alert
 * lengthens the next cooldown; or of the fourth, without the cycle profile:
 * each series begins its profile at its next value). An alert without its
 * explanation (first layout) gets the spike test's, with `warningZ`.
 * Copies the current layout's columns 1 MiB a slice, yielding between.
 * @example runSlices(restoreStateSlices(snap, 100_000, 11, 5))
 */
export function* restoreStateSlices(snap: AnomalySnapshot, seriesMax: number, restartAt: number, warningZ: number): Generator<void, AnomalyState> {
  const version = snap.version as number;
  const v1 = version === 1 && snap.fields === v1Fields;
  const rowsNow = snap.fields === fields && snap.ringBytes === ringBytes;
  const v5 = version === 5 && rowsNow && snap.cycleBins === cycleBins && snap.cycle !== undefined && snap.cycleSpread !== undefined;
  if (!v1 && !v5 && !([2, 3, 4].includes(version) && rowsNow)) {
    throw new Error(`anomaly snapshot: unknown layout (version ${String(snap.version)}, ${String(snap.fields)} fields)`);
  }
  assert(snap.rows <= seriesMax, `snapshot of ${snap.rows} series within seriesMax ${seriesMax}`);
  const columns = [snap.value, snap.count, v1 ? undefined : snap.ring, v5 ? snap.cycle : undefined, v5 ? snap.cycleSpread : undefined];
  const lengths = columns.map((c) => (c === undefined ? 0 : bytesOf(c).byteLength));
  const want = [8 * snap.fields, 8 * snap.fields, v1 ? 0 : ringBytes, v5 ? 8 * cycleFields : 0, v5 ? 4 * cycleBins : 0].map((b) => snap.rows * b);
  if (lengths.some((n, k) => n !== want[k])) throw new Error(`anomaly snapshot: columns of ${lengths.join(", ")} bytes for ${snap.rows} series`);
  const st = new AnomalyState(Math.max(snap.rows, Math.min(rowsInitial, seriesMax)));
  if (v1) {
    upgradeV1(st.value.rows, float64Of(snap.value), snap.rows, restartAt);
    upgradeV1(st.count.rows, float64Of(snap.count), snap.rows, restartAt);
  } else {
    yield* copyIntoSlices(bytesOf(st.value.rows), bytesOf(snap.value));
    yield* copyIntoSlices(bytesOf(st.count.rows), bytesOf(snap.count));
    yield* copyIntoSlices(st.ring, snap.ring);
    if (v5) {
      yield* copyIntoSlices(bytesOf(st.cycle), bytesOf(snap.cycle!));
      yield* copyIntoSlices(bytesOf(st.cycleSpread), bytesOf(snap.cycleSpread!));
    }
    if (version === 2) upgradeV2(st.value.rows, snap.rows);
  }
  st.series = snap.series;
  st.anomalies = snap.anomalies;
  for (const a of snap.alerts) (a.source === "value" ? st.value : st.count).last[a.sid] = withExplanation(a, warningZ);
  return st;
}

/** An alert from a first-version checkpoint has no test and no range: the spike test's, as that version had only it. */
function withExplanation(a: Anomaly, warningZ: number): Anomaly {
  const b: Anomaly = { ...a };
  b.test ??= "spike";
  b.expected ??= [a.mean - warningZ * a.std, a.mean + warningZ * a.std];
  return b;
}

/** The first version's rows: the baseline's first 8 fields, no surprise history. */
const v1Fields = 8;

/**
 * A checkpoint of the first version (baseline only): the baseline is kept
 * and each series restarts its warm-up at `restartAt` values, so its
 * surprise history is learnt before it judges (no alert from an empty one).
 */
function upgradeV1(to: Float64Array, from: Float64Array, rows: number, restartAt: number): void {
  const at = [N, LEVEL, SLOPE, VAR, EWTS, MAXTS, RUN, RUNSUM]; // the first version's fields, in its order
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < v1Fields; f++) to[r * fields + at[f]] = from[r * v1Fields + f];
    to[r * fields + N] = Math.min(to[r * fields + N], restartAt);
  }
}

/** The second version's field 15: the longest run of equal values, which the third keeps in a field read now and then. */
const v2EqMax = 15;

/**
 * A checkpoint of the second version: the same rows but for the longest run
 * of equal values, moved out of the fields every value touches to make room
 * for the previous value's |z|, which starts at 0: the first value after the
 * restore is judged as one after a calm value.
 */
function upgradeV2(value: Float64Array, rows: number): void {
  for (let r = 0; r < rows; r++) {
    value[r * fields + EQMAX] = value[r * fields + v2EqMax];
    value[r * fields + ZPREV] = 0;
  }
}
