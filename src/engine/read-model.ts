/**
 * The read model: what HTTP queries, behind one narrow interface. The
 * engine's implementation answers from the store (SQLite, read through its
 * own connection) merged with the results published and not yet committed,
 * and from the main thread's latest trends, open anomalies and dead
 * letters. Route tests can give createApp() any other implementation.
 *
 * @example
 *   const read = new StoreReadModel({ reader, registry, staged, outputs, deadletters, labels, specs, partitions: 2 });
 *   read.windows({ series: "cpu{host=a}", window: "10s", from: 0, to: Infinity, limit: 10 });
 */
import type { Database, Statement } from "bun:sqlite";
import { anomalyDefaults, isAnomalyOpen } from "../actors/anomaly.ts";
import type { AnomalyKnobTable } from "../actors/anomaly-knobs.ts";
import type { DeadLetters } from "../actors/deadletters.ts";
import type { SeriesRegistry } from "../actors/series-registry.ts";
import type { AlertRecord, AnomalyRecord, StagedResults, WindowRecord } from "../actors/store.ts";
import { limits } from "../runtime/limits.ts";
import { type GlobMatcher, partitionOf } from "../runtime/series.ts";
import {
  type AnomalyRow, combineTop, expectedOf, foldWindows, latestWindows, mergeAnomalies, mergeWindows, type TopFigures, type TopRow, uniqueWindows, type WindowRow,
} from "./staged-merge.ts";
import type { AnomalyView, TrendView } from "./partition-outputs.ts";

export type { AnomalyRow, WindowRow } from "./staged-merge.ts";
export type { AnomalyView, TrendView } from "./partition-outputs.ts";

export interface SeriesEntry {
  key: string; name: string; tags: Record<string, string>;
  last: { ts: number; value: number } | null;
  trend: string;
  anomaly: AnomalyView | null;
}

/**
 * A ranking of one name's series by a tag. Without from and to it reads the
 * latest closed window; with either, every window with from ≤ start and
 * end ≤ to, at most windowsMax of them (more answers the bound instead of a
 * cut ranking). Per tag value: avg is Σ sum / Σ count (weighted by events),
 * p99 the largest p99 of any one window (a bound above the events' p99).
 */
export interface TopQuery {
  name: string; by: string; k: number; window: string; agg: "sum" | "count" | "avg" | "min" | "max" | "p99";
  from?: number; to?: number; windowsMax: number;
}
/** `end`: the newest end among the windows read, null when none. */
export interface TopAnswer { window: string; end: number | null; items: Array<{ key: string; value: number }> }

/** The windows of one label of the series a predicate picks (a rule's selector): a back-test's history. */
export interface SeriesWindowsQuery {
  match: (name: string, tags: Readonly<Record<string, string>>) => boolean;
  window: string;
  /** Windows with from ≤ start and end ≤ to. */
  from: number;
  to: number;
  /** More series picked than this, or more windows than windowsMax, answers which bound instead of a cut list. */
  seriesMax: number;
  windowsMax: number;
}
export interface SeriesWindows { key: string; name: string; tags: Record<string, string>; windows: WindowRow[] }
export type SeriesWindowsAnswer = { series: SeriesWindows[] } | { over: "series" | "windows"; max: number };

export interface ReadModel {
  /** Window labels that can be read: the configured specs, then the 1m and 1h rollups. */
  readonly labels: readonly string[];
  /** The configured window specs (the rollups excluded). */
  readonly specs: readonly string[];
  /** Known series whose key matches, in registration order, at most `limit`. */
  /**
   * Matching series in registration order, at most `limit`, starting after
   * the series registered as `after` (a page's `next`: -1 for the first).
   */
  series(match: GlobMatcher, limit: number, after?: number): SeriesEntry[] & { next?: number };
  /** A series' windows of one label starting in [from, to): the newest `limit`, oldest first. */
  windows(q: { series: string; window: string; from: number; to: number; limit: number }): WindowRow[];
  /** Anomalies at or after `since`, newest first. */
  anomalies(q: { since: number; series?: string; severity?: string; limit: number }): AnomalyRow[];
  /** The latest trend of each matching series, by key, at most limits.seriesListMax. */
  trends(match: GlobMatcher): Array<{ series: string } & TrendView>;
  /** One name's series in the latest closed window, or in a range, aggregated per value of a tag (TopQuery). */
  top(q: TopQuery): TopAnswer | { over: "windows"; max: number };
  /** The newest rejected and late events at or after `since`. */
  deadletters(since: number, limit: number): unknown[];
  /**
   * Every window in range of the series picked, oldest first per series, series in registration order
   * (POST /api/v1/rules/test). Optional: a stand-in that keeps no history leaves it out.
   */
  seriesWindows?(q: SeriesWindowsQuery): SeriesWindowsAnswer;
  /** Rule transitions and view hits (`kind`) at or after `since` (of one state, one rule or view), newest first. */
  ruleAlerts(q: { since: number; state?: string; rule?: string; kind?: "rule" | "view"; limit: number }): AlertRecord[];
}

export interface StoreReadModelDeps {
  reader: Database;
  registry: SeriesRegistry;
  staged: StagedResults;
  latestTrends: ReadonlyMap<string, TrendView>;
  openAnomalies: ReadonlyMap<string, AnomalyView>;
  deadletters: DeadLetters;
  labels: readonly string[];
  specs: readonly string[];
  partitions: number;
  /** The config's anomaly knobs, for each series' cooldown (its partition resolves the same); absent: the defaults. */
  anomalyKnobs?: AnomalyKnobTable;
}

/** A series of `name`: the name alone, or with tags. */
function isOfName(series: string, name: string): boolean {
  return series === name || (series.startsWith(name) && series.charCodeAt(name.length) === 123); // "{"
}

/** A tag value's figure for a ranking (TopQuery's agg). */
function topValue(g: TopFigures, agg: TopQuery["agg"]): number {
  switch (agg) {
    case "sum": return g.sum;
    case "count": return g.count;
    case "avg": return g.sum / g.count; // weighted by events, not a mean of the windows' means
    case "min": return g.min;
    case "max": return g.max;
    case "p99": return g.p99;
  }
}

export class StoreReadModel implements ReadModel {
  readonly labels: readonly string[];
  readonly specs: readonly string[];
  private readonly windowsStmt: Statement;
  private readonly anomalyStmt: Statement;
  private readonly topStmt: Statement;
  private readonly topRangeStmt: Statement;
  private readonly seriesWindowsStmt: Statement;
  private readonly alertsStmt: Statement;
  /** Each series' cooldown once resolved: the knobs are fixed at start-up. At most one entry a known series. */
  private readonly cooldownMsByKey = new Map<string, number>();

  constructor(private readonly d: StoreReadModelDeps) {
    this.labels = d.labels;
    this.specs = d.specs;
    this.windowsStmt = d.reader.prepare(
      `SELECT start, "end", count, sum, min, max, avg, p50, p95, p99, first, last FROM windows
       WHERE series = ? AND window = ? AND start >= ? AND start < ? ORDER BY start DESC LIMIT ?`,
    );
    this.anomalyStmt = d.reader.prepare(
      `SELECT series, ts, value, z, mean, std, severity, source, baseline_n AS baselineN, baseline_from AS baselineFromTs, test, expected_lo, expected_hi FROM anomalies
       WHERE ts >= ?1 AND (?2 IS NULL OR series = ?2) AND (?3 IS NULL OR severity = ?3) ORDER BY ts DESC, id DESC LIMIT ?4`,
    );
    this.alertsStmt = d.reader.prepare(
      `SELECT kind, rule, series, state, ts, value, threshold, severity, labels, advice FROM alerts
       WHERE ts >= ?1 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR rule = ?3) AND (?5 IS NULL OR kind = ?5) ORDER BY ts DESC LIMIT ?4`,
    );
    // The series of one name sort between "name{" and "name|" ('|' follows '{'), plus the untagged "name".
    this.topStmt = d.reader.prepare(
      `WITH s AS (SELECT series, "end", sum, count, min, max, p99 FROM windows WHERE window = ?1 AND (series = ?2 OR (series >= ?3 AND series < ?4)))
       SELECT series, "end", 1 AS windows, sum, count, min, max, p99 FROM s WHERE "end" = (SELECT max("end") FROM s)`,
    );
    // The windows in a range of the series listed (?1, [key, tag value] pairs), aggregated per tag value here, where
    // sums, counts, minima and maxima are exact. One primary-key range a series, so rows outside the range, of other
    // specs or of other series are never read; the windows staged (?5, "<series> <start>" strings: the start has no
    // space, so a string names one window; a row value (series, start) IN was 25× slower) are left out, their staged
    // rows count instead; the LIMIT bounds the rows read (TopQuery.windowsMax).
    this.topRangeStmt = d.reader.prepare(
      `SELECT grp, max("end") AS "end", count(*) AS windows, sum("sum") AS "sum", sum(count) AS count,
              min("min") AS "min", max("max") AS "max", max(p99) AS p99
       FROM (SELECT k.value ->> 1 AS grp, w."end", w."sum", w.count, w."min", w."max", w.p99
             FROM json_each(?1) AS k JOIN windows AS w ON w.series = k.value ->> 0 AND w.window = ?2 AND w.start >= ?3 AND w.start < ?4
             WHERE w."end" <= ?4 AND (w.series || ' ' || w.start) NOT IN (SELECT value FROM json_each(?5))
             LIMIT ?6)
       GROUP BY grp`,
    );
    this.seriesWindowsStmt = d.reader.prepare(
      `SELECT start, "end", count, sum, min, max, avg, p50, p95, p99, first, last FROM windows
       WHERE series = ? AND window = ? AND start >= ? AND "end" <= ? ORDER BY start DESC LIMIT ?`,
    );
  }

  series(match: GlobMatcher, limit: number, after = -1): SeriesEntry[] & { next?: number } {
    const reg = this.d.registry;
    const out: SeriesEntry[] & { next?: number } = [];
    let id = Math.max(0, after + 1);
    for (; id < reg.size && out.length < limit; id++) {
      const s = reg.info(id);
      if (!match.test(s.key)) continue;
      const ts = reg.lastTs[id];
      const trend = this.d.latestTrends.get(s.key)?.class ?? "unknown";
      const a = this.d.openAnomalies.get(s.key);
      const anomaly = a !== undefined && isAnomalyOpen(a.ts, ts, this.cooldownMsOf(s)) ? a : null;
      out.push({ key: s.key, name: s.name, tags: s.tags, last: Number.isNaN(ts) ? null : { ts, value: reg.lastValue[id] }, trend, anomaly });
    }
    // A full page with series left to look at: where the next page starts (they may not match; the next page says).
    if (out.length === limit && id < reg.size) out.next = id - 1;
    return out;
  }

  /** A series' anomaly cooldown: its knobs' (first entry picking it), else the default. */
  private cooldownMsOf(s: { key: string; name: string; tags: Record<string, string> }): number {
    const table = this.d.anomalyKnobs;
    if (table === undefined || table.size === 0) return anomalyDefaults.cooldownMs;
    let ms = this.cooldownMsByKey.get(s.key);
    if (ms === undefined) {
      ms = table.knobsOf(s.name, s.tags)?.cooldownMs ?? anomalyDefaults.cooldownMs;
      this.cooldownMsByKey.set(s.key, ms);
    }
    return ms;
  }

  windows(q: { series: string; window: string; from: number; to: number; limit: number }): WindowRow[] {
    const stored = this.windowsStmt.all(q.series, q.window, q.from, q.to, q.limit) as WindowRow[];
    const staged = this.d.staged.stagedWindows(
      (r) => r.series === q.series && r.window === q.window && r.start >= q.from && r.start < q.to,
      partitionOf(q.series, this.d.partitions),
    );
    return mergeWindows(stored, staged, q.limit); // newest `limit` in range, answered oldest first
  }

  ruleAlerts(q: { since: number; state?: string; rule?: string; kind?: "rule" | "view"; limit: number }): AlertRecord[] {
    const stored = (this.alertsStmt.all(q.since, q.state ?? null, q.rule ?? null, q.limit, q.kind ?? null) as Array<Record<string, string | number | null>>).map(
      (r): AlertRecord => ({
        kind: r.kind as "rule", rule: String(r.rule), series: String(r.series), state: r.state as AlertRecord["state"], ts: Number(r.ts),
        value: JSON.parse(String(r.value)), threshold: JSON.parse(String(r.threshold)), severity: r.severity as AlertRecord["severity"],
        labels: JSON.parse(String(r.labels)), advice: r.advice === null ? null : String(r.advice),
      }),
    );
    const keep = (a: AlertRecord) => a.ts >= q.since && (q.state === undefined || a.state === q.state) && (q.rule === undefined || a.rule === q.rule) && q.kind !== "view";
    const staged = this.d.staged.stagedAlerts(keep);
    if (staged.length === 0) return stored;
    // A staged transition may be stored already (its commit just written): one row per rule, series, instant and state.
    const byKey = new Map<string, AlertRecord>();
    for (const a of [...stored, ...staged]) byKey.set(`${a.rule}|${a.series}|${a.ts}|${a.state}`, a);
    return [...byKey.values()].sort((a, b) => b.ts - a.ts).slice(0, q.limit);
  }

  anomalies(q: { since: number; series?: string; severity?: string; limit: number }): AnomalyRow[] {
    type Stored = Omit<AnomalyRow, "expected"> & { expected_lo: number | null; expected_hi: number | null };
    const stored = (this.anomalyStmt.all(q.since, q.series ?? null, q.severity ?? null, q.limit) as Stored[]).map(({ expected_lo, expected_hi, ...a }) => (
      { ...a, expected: expectedOf(expected_lo, expected_hi) }
    ));
    const keep = (a: AnomalyRecord) =>
      a.ts >= q.since && (q.series === undefined || a.series === q.series) && (q.severity === undefined || a.severity === q.severity);
    const staged = this.d.staged.stagedAnomalies(keep, q.series === undefined ? undefined : partitionOf(q.series, this.d.partitions));
    return mergeAnomalies(stored, staged, q.limit);
  }

  trends(match: GlobMatcher): Array<{ series: string } & TrendView> {
    const out = [];
    for (const [series, t] of this.d.latestTrends) if (match.test(series)) out.push({ series, ...t });
    out.sort((a, b) => (a.series < b.series ? -1 : 1));
    return out.slice(0, limits.seriesListMax);
  }

  top(q: TopQuery): TopAnswer | { over: "windows"; max: number } {
    const got = q.from === undefined && q.to === undefined ? this.latestTop(q) : this.rangeTop(q);
    if ("over" in got) return got;
    const items = [...got.groups].map(([key, g]) => ({ key, value: topValue(g, q.agg) }));
    items.sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : 1));
    return { window: q.window, end: got.end, items: items.slice(0, q.k) };
  }

  /** Per tag value, the series' windows of the newest end, stored or staged; that end (of any series of the name). */
  private latestTop(q: TopQuery): { end: number | null; groups: Map<string, TopFigures> } {
    const stored = this.topStmt.all(q.window, q.name, q.name + "{", q.name + "|") as TopRow[];
    const rows = latestWindows(stored, this.d.staged.stagedWindows((r) => r.window === q.window && isOfName(r.series, q.name)));
    const groups = new Map<string, TopFigures>();
    for (const r of rows) {
      const id = this.d.registry.idOf(r.series);
      const key = id === undefined ? undefined : this.d.registry.info(id).tags[q.by];
      if (key === undefined) continue;
      const had = groups.get(key);
      groups.set(key, had === undefined ? r : combineTop(had, r));
    }
    return { end: rows[0]?.end ?? null, groups };
  }

  /**
   * Per tag value, the windows with from ≤ start and end ≤ to of the name's series that have the tag (no other
   * series is read), stored or staged, and the newest end among them; or the bound when they are more than windowsMax.
   */
  private rangeTop(q: TopQuery): { end: number | null; groups: Map<string, TopFigures> } | { over: "windows"; max: number } {
    const from = q.from ?? 0;
    const to = q.to ?? Number.MAX_SAFE_INTEGER;
    const reg = this.d.registry;
    const groupOf = new Map<string, string>();
    for (let id = 0; id < reg.size; id++) {
      const s = reg.info(id);
      const value = s.tags[q.by];
      if (s.name === q.name && value !== undefined) groupOf.set(s.key, value);
    }
    const keep = (r: WindowRecord) => r.window === q.window && r.start >= from && r.end <= to && groupOf.has(r.series);
    const staged = uniqueWindows(this.d.staged.stagedWindows(keep));
    const room = q.windowsMax - staged.length + 1; // one more than fits tells an answer over the bound from a full one
    if (room <= 0) return { over: "windows", max: q.windowsMax };
    const stagedKeys = JSON.stringify(staged.map((r) => `${r.series} ${r.start}`));
    const stored = this.topRangeStmt.all(JSON.stringify([...groupOf]), q.window, from, to, stagedKeys, room) as Array<TopFigures & { grp: string }>;
    let read = staged.length;
    for (const r of stored) read += r.windows;
    if (read > q.windowsMax) return { over: "windows", max: q.windowsMax };
    const groups = foldWindows(new Map(stored.map(({ grp, ...figures }) => [grp, figures])), staged, (series) => groupOf.get(series));
    let end: number | null = null;
    for (const g of groups.values()) end = Math.max(end ?? g.end, g.end);
    return { end, groups };
  }

  deadletters(since: number, limit: number): unknown[] {
    return this.d.deadletters.list(since, limit);
  }

  seriesWindows(q: SeriesWindowsQuery): SeriesWindowsAnswer {
    const reg = this.d.registry;
    const picked = new Map<string, SeriesWindows>();
    for (let id = 0; id < reg.size; id++) {
      const s = reg.info(id);
      if (!q.match(s.name, s.tags)) continue;
      if (picked.size === q.seriesMax) return { over: "series", max: q.seriesMax };
      picked.set(s.key, { key: s.key, name: s.name, tags: s.tags, windows: [] });
    }
    const staged = new Map<string, WindowRecord[]>(); // one pass over every partition's staged rows, not one per series
    const keep = (r: WindowRecord) => r.window === q.window && r.start >= q.from && r.end <= q.to && picked.has(r.series);
    for (const r of this.d.staged.stagedWindows(keep)) {
      const rows = staged.get(r.series);
      if (rows === undefined) staged.set(r.series, [r]);
      else rows.push(r);
    }
    let read = 0;
    for (const s of picked.values()) {
      const room = q.windowsMax - read + 1; // one more than fits tells an answer over the bound from a full one
      const stored = this.seriesWindowsStmt.all(s.key, q.window, q.from, q.to, room) as WindowRow[];
      s.windows = mergeWindows(stored, staged.get(s.key) ?? [], room);
      read += s.windows.length;
      if (read > q.windowsMax) return { over: "windows", max: q.windowsMax };
    }
    return { series: [...picked.values()] };
  }
}
