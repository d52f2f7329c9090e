/**
 * A partition's results as they travel on its output ring: plain number
 * arrays (MessagePack packs them compactly, and a worker ships thousands per
 * message). Each row type has its one encoder, used by the partition
 * pipeline, and its one decoder, used by the engine: the positions live
 * here and nowhere else.
 *
 * @example
 *   const row = windowRow.encode(result, specIndex, closedMs); // worker
 *   const w = windowRow.decode(row); // engine: { sid, spec, start, … }
 */
import { type Anomaly, anomalyTests } from "./anomaly.ts";
import type { RuleTransition } from "./rules/rule-set.ts";
import type { ViewDelta } from "./views/view-set.ts";
import type { Trend, TrendClass } from "./trend.ts";
import type { WindowResult } from "./window.ts";

export type WindowRow = number[];
export type LateRow = [sid: number, ts: number, value: number];
export type AnomalyRow = number[];
export type TrendRow = number[];
/** A rule instance's transition, as the alert API.md names (rare: travels as the object itself). */
export type RuleRow = RuleTransition;
/** What one output message carries. */
/** A view's part gathered in one partition since its last checkpoint (views/view-set.ts), merged by the store. */
export type ViewRow = ViewDelta;
/** `u`: running values of open windows (updates:<spec>:<glob>), as window rows; transient, never stored. */
/** `f`: how far the partition's view windows are complete (PartitionPipeline.flushViewFrontier), after every `v` row before it, as of the raw-log records up to `fp`. */
export interface PartitionOutput { w: WindowRow[]; late: LateRow[]; a: AnomalyRow[]; t: TrendRow[]; r: RuleRow[]; v: ViewRow[]; u: WindowRow[]; f?: number; fp?: number }

export const trendClasses = ["unknown", "stable", "rising", "falling"] as const;
export const severities = ["", "warning", "critical"] as const;
export const anomalySources = ["value", "count"] as const;

/** A closed window: its spec as an index into the result labels, and the wall time it closed at. */
export interface WindowRowView {
  sid: number; spec: number; start: number; end: number; count: number; sum: number; min: number; max: number;
  p50: number; p95: number; p99: number; first: number; last: number; closedMs: number;
}

export const windowRow = {
  encode: (r: WindowResult, spec: number, closedMs: number): WindowRow =>
    [r.sid, spec, r.start, r.end, r.count, r.sum, r.min, r.max, r.p50, r.p95, r.p99, r.first, r.last, closedMs],
  decode: (row: WindowRow): WindowRowView => {
    const [sid, spec, start, end, count, sum, min, max, p50, p95, p99, first, last, closedMs] = row;
    return { sid, spec, start, end, count, sum, min, max, p50, p95, p99, first, last, closedMs };
  },
};

export interface AnomalyRowView {
  sid: number; ts: number; value: number; z: number; mean: number; std: number;
  severity: Anomaly["severity"]; source: Anomaly["source"]; baselineN: number; baselineFromTs: number; closedMs: number;
  test: Anomaly["test"]; expectedLo: number; expectedHi: number;
}

export const anomalyRow = {
  encode: (a: Anomaly, closedMs: number): AnomalyRow =>
    [
      a.sid, a.ts, a.value, a.z, a.mean, a.std, severities.indexOf(a.severity), anomalySources.indexOf(a.source), a.baselineN, a.baselineFromTs, closedMs,
      anomalyTests.indexOf(a.test), a.expected[0], a.expected[1],
    ],
  decode: (row: AnomalyRow): AnomalyRowView => {
    const [sid, ts, value, z, mean, std, sev, src, baselineN, baselineFromTs, closedMs, test, expectedLo, expectedHi] = row;
    return {
      sid, ts, value, z, mean, std, severity: severities[sev] as Anomaly["severity"], source: anomalySources[src], baselineN, baselineFromTs, closedMs,
      test: anomalyTests[test], expectedLo, expectedHi,
    };
  },
};

export interface TrendRowView {
  sid: number; end: number; start: number; slope: number; intercept: number; r2: number; n: number; change: number; level: number; class: TrendClass;
}

export const trendRow = {
  encode: (t: Trend): TrendRow => [t.sid, t.end, t.start, t.slope, t.intercept, t.r2, t.n, t.change, t.level, trendClasses.indexOf(t.class)],
  decode: (row: TrendRow): TrendRowView => {
    const [sid, end, start, slope, intercept, r2, n, change, level, cls] = row;
    return { sid, end, start, slope, intercept, r2, n, change, level, class: trendClasses[cls] };
  },
};
