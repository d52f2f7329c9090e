/**
 * Merges rows the store has committed with rows it holds staged (published
 * live, written with the partition's next checkpoint), so every read answers
 * with what a live subscriber has already seen. Without this, a dashboard
 * that subscribes and then back-fills would miss up to one checkpoint
 * interval of results: too late for the stream, too early for the file.
 *
 * @example
 *   const rows = mergeWindows(sqlRowsNewestFirst, engine.uncommittedWindows(keep, series), limit); // oldest first
 */
import type { AnomalyRecord, WindowRecord } from "../actors/store.ts";

export type WindowRow = Omit<WindowRecord, "series" | "window">;
export interface AnomalyRow {
  series: string; ts: number; value: number; z: number; mean: number; std: number;
  severity: string; source: string; baselineN: number; baselineFromTs: number;
  /** The test that fired, and the range the value was expected in (null for an anomaly stored before they were kept). */
  test: string; expected: [number, number] | null;
}

function windowRow(r: WindowRecord): WindowRow {
  const { series: _s, window: _w, ...row } = r;
  return row;
}

/**
 * The newest `limit` windows of one series and spec, oldest first. `stored`
 * is newest first (at most `limit`); a staged window replaces a stored one of
 * the same start, as its commit would.
 */
export function mergeWindows(stored: readonly WindowRow[], staged: readonly WindowRecord[], limit: number): WindowRow[] {
  if (staged.length === 0) return stored.slice(0, limit).reverse();
  const byStart = new Map<number, WindowRow>();
  for (const r of stored) byStart.set(r.start, r);
  for (const r of staged) byStart.set(r.start, windowRow(r));
  return [...byStart.values()].sort((a, b) => b.start - a.start).slice(0, limit).reverse();
}

export function anomalyRow(a: AnomalyRecord): AnomalyRow {
  return {
    series: a.series, ts: a.ts, value: a.value, z: a.z, mean: a.mean, std: a.std,
    severity: a.severity, source: a.source, baselineN: a.baseline_n, baselineFromTs: a.baseline_from,
    test: a.test, expected: expectedOf(a.expected_lo, a.expected_hi),
  };
}

/** A stored anomaly's expected range as the API gives it: [lo, hi], or null when the row predates it. @example expectedOf(1, 3) // [1, 3] */
export function expectedOf(lo: number | null, hi: number | null): [number, number] | null {
  return lo === null || hi === null ? null : [lo, hi];
}

/**
 * The newest `limit` anomalies, newest first. Ties on ts put staged ones
 * first, newest staged first, as the store's `ORDER BY ts DESC, id DESC`
 * will once they are written (across partitions the commit order decides).
 * A staged anomaly already stored (its commit written, not yet unstaged
 * when the read came: seen as rows listed twice under load) is listed once:
 * one anomaly per series, time and source.
 */
export function mergeAnomalies(stored: readonly AnomalyRow[], staged: readonly AnomalyRecord[], limit: number): AnomalyRow[] {
  if (staged.length === 0) return stored.slice(0, limit);
  const seen = new Set(stored.map(anomalyKey));
  const fresh: AnomalyRow[] = [];
  for (let i = staged.length - 1; i >= 0; i--) {
    const r = anomalyRow(staged[i]);
    const k = anomalyKey(r);
    if (seen.has(k)) continue;
    seen.add(k);
    fresh.push(r);
  }
  return fresh.concat(stored).sort((a, b) => b.ts - a.ts).slice(0, limit); // stable: ties keep the order above
}

const anomalyKey = (a: Pick<AnomalyRow, "series" | "ts" | "source">) => `${a.source}|${a.ts}|${a.series}`;

/**
 * Windows in a ranking (GET /api/v1/top) aggregated: how many, the newest
 * end, Σ sum, Σ count, the least min, the largest max and the largest p99.
 * A single window is such figures of one window.
 */
export interface TopFigures { end: number; windows: number; sum: number; count: number; min: number; max: number; p99: number }
/** One series' figures: a window of it, or (in the store) several. */
export interface TopRow extends TopFigures { series: string }

function topRow(r: WindowRecord): TopRow {
  return { series: r.series, end: r.end, windows: 1, sum: r.sum, count: r.count, min: r.min, max: r.max, p99: r.p99 };
}

/**
 * The figures of two disjoint sets of windows as one. Every part is exact
 * but p99: the largest p99 of the windows is not the 99th percentile of
 * their events, only a bound above it (at most 1 % of each window's events
 * lie over its p99, so at most 1 % of all of them lie over the largest).
 *
 * @example combineTop(a, b).count === a.count + b.count
 */
export function combineTop(a: TopFigures, b: TopFigures): TopFigures {
  return {
    end: Math.max(a.end, b.end), windows: a.windows + b.windows, sum: a.sum + b.sum, count: a.count + b.count,
    min: Math.min(a.min, b.min), max: Math.max(a.max, b.max), p99: Math.max(a.p99, b.p99),
  };
}

/**
 * The windows of the newest end among `stored` (all at the store's newest
 * end) and `staged`, one per series (a staged one replaces a stored one).
 * Partitions commit at different times, so the newest end may be partly
 * stored and partly staged.
 */
export function latestWindows(stored: readonly TopRow[], staged: readonly WindowRecord[]): TopRow[] {
  if (staged.length === 0) return [...stored];
  let end = stored[0]?.end ?? -Infinity;
  for (const r of staged) if (r.end > end) end = r.end;
  const bySeries = new Map<string, TopRow>();
  for (const r of stored) if (r.end === end) bySeries.set(r.series, r);
  for (const r of staged) if (r.end === end) bySeries.set(r.series, topRow(r));
  return [...bySeries.values()];
}

/**
 * Staged windows one per series and start: a partition's committing and
 * staged sets may both hold one; the later is kept, as its commit would be.
 *
 * @example uniqueWindows([a30, b30, a30again]) // [a30again, b30]
 */
export function uniqueWindows(staged: readonly WindowRecord[]): WindowRecord[] {
  if (staged.length <= 1) return [...staged];
  const byKey = new Map<string, WindowRecord>();
  for (const r of staged) byKey.set(`${r.start}|${r.series}`, r);
  return [...byKey.values()];
}

/**
 * Per group (a tag value), `stored` (aggregated by the store over windows
 * that are not staged) with the `staged` windows (uniqueWindows) folded into
 * the group `groupOf` names for their series (none: left out).
 *
 * @example foldWindows(new Map([["eu", euFigures]]), [euWindow], (s) => "eu").get("eu")!.windows === euFigures.windows + 1
 */
export function foldWindows(
  stored: ReadonlyMap<string, TopFigures>, staged: readonly WindowRecord[], groupOf: (series: string) => string | undefined,
): Map<string, TopFigures> {
  const groups = new Map(stored);
  for (const w of staged) {
    const key = groupOf(w.series);
    if (key === undefined) continue;
    const had = groups.get(key);
    const { series: _s, ...figures } = topRow(w);
    groups.set(key, had === undefined ? figures : combineTop(had, figures));
  }
  return groups;
}
