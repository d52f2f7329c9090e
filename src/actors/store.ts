/**
 * The store actor, in two halves. `StagedResults` lives on the main thread:
 * a partition's window results, anomalies and trends are staged there as
 * they arrive (readable at once, merged into REST answers) until its next
 * checkpoint; `take()` hands them over as one CommitJob with that
 * checkpoint. `StoreWrites` is the only writer of the SQLite file and runs on
 * the store writer thread (src/storage/store-writer.ts): it writes a job's
 * rows, the pending series and the checkpoint (state and raw-log position)
 * in ONE transaction, so after a crash the store holds exactly the results
 * of the state it restores: replay recomputes the rest, and nothing is
 * written twice. The staged rows are bounded by the workers, which
 * checkpoint early past limits.checkpointRowsMax rows, and by the engine,
 * which keeps at most one job per partition in flight and one waiting;
 * while a commit fails (disk full, I/O) the engine stops draining that
 * partition's output ring (backpressure up the pipe) and retries.
 *
 * @example
 *   const staged = new StagedResults(2);
 *   staged.addWindow(0, { series: "cpu", window: "10s", start, end, count, ... });
 *   const job = staged.take(0, { pos: 4096, state, config });  // main thread
 *   new StoreWrites(db).commit(job);                            // writer thread: rows + checkpoint, atomically
 *   staged.settle(0);                                           // main thread, once it is written
 */
import type { DeadLetter } from "./deadletters.ts";
import type { Database, Statement } from "bun:sqlite";
import type { SeriesInfo } from "./series-registry.ts";
import type { RuleTransition } from "./rules/rule-set.ts";
import { decode, encode } from "@msgpack/msgpack";
import { resultValue, ViewAgg, type ViewAggSnapshot } from "./views/view-agg.ts";
import { compare } from "./rules/rule-set.ts";
import type { ViewDelta } from "./views/view-set.ts";

export interface WindowRecord {
  series: string; window: string; start: number; end: number; count: number;
  sum: number; min: number; max: number; avg: number; p50: number; p95: number; p99: number;
  first: number; last: number;
}
export interface AnomalyRecord {
  series: string; ts: number; value: number; z: number; mean: number; std: number;
  severity: string; source: string; baseline_n: number; baseline_from: number;
  /** The test that fired and the range the value was expected in (anomaly.ts). */
  test: string; expected_lo: number; expected_hi: number;
}
export interface TrendRecord { series: string; ts: number; slope: number; r2: number; n: number; change: number; level: number; class: string }
export interface Checkpoint { pos: number; state: Uint8Array; config: string }
/** A rule transition as stored (table alerts): the alert of API.md, `kind: "rule"`. */
export type AlertRecord = RuleTransition;

/** Results computed by another weir process (cluster mode), copied into this one's store: see src/nats/results-replica.ts. */
export interface ReplicaRows { windows: WindowRecord[]; anomalies: AnomalyRecord[]; trends: TrendRecord[]; alerts?: AlertRecord[] }
/** The tables of definitions the admin API changes (rules, views). */
export type DefinitionTable = "rules" | "views";
/** What names one stored transition. */
export interface AlertKey { rule: string; series: string; ts: number; state: string }

/** What the rules on views judged (src/engine/view-rules.ts): their transitions, the rule set's state and how far it judged, in one transaction. */
export interface ViewRulesCommit { judgedTo: number; state: Uint8Array; alerts: AlertRecord[] }

/** What one commit writes: a partition's results up to its checkpoint, the series registered meanwhile, and the checkpoint. */
export interface CommitJob {
  partition: number;
  checkpoint: Checkpoint;
  windows: WindowRecord[];
  anomalies: AnomalyRecord[];
  trends: TrendRecord[];
  alerts: AlertRecord[];
  /** The partition's parts of the views since its last checkpoint: merged into view_state and the views' windows in the same transaction. */
  viewDeltas: ViewDelta[];
  series: SeriesInfo[];
}

/** A view window as merged by a commit: its stored row, its count_distinct when the view asks for it, and whether its `having` first held now (an alert, stored). */
export interface ViewWindow { view: string; record: WindowRecord; distinct: number | null; tags: Record<string, string>; hit: AlertRecord | null }
/** What a commit wrote: its windows, and the view windows it merged (for the live feed). */
export interface CommitResult { windows: number; views: ViewWindow[] }

/** Test-only hooks at the commit boundaries (WEIR_CRASH_AT): before, mid (rows written, checkpoint not), after. */
export interface CommitHooks { before?: () => void; mid?: () => void; after?: () => void }

class Staged {
  windows: WindowRecord[] = [];
  anomalies: AnomalyRecord[] = [];
  trends = new Map<string, TrendRecord>(); // latest per series; bounded by the series count
  alerts: AlertRecord[] = [];
  viewDeltas: ViewDelta[] = [];
}

/** The main thread's half: results not yet in the file, per partition, and the series not yet written. */
export class StagedResults {
  private readonly staged: Staged[] = [];
  /** The rows of each partition's commit in flight: still answered by reads until it is written. */
  private readonly committing: Array<Staged | null> = [];
  private series: SeriesInfo[] = [];

  constructor(partitions: number) {
    for (let p = 0; p < partitions; p++) {
      this.staged.push(new Staged());
      this.committing.push(null);
    }
  }

  addWindow(partition: number, r: WindowRecord): void {
    this.staged[partition].windows.push(r);
  }
  addSeries(s: SeriesInfo): void {
    this.series.push(s);
  }
  addAnomaly(partition: number, a: AnomalyRecord): void {
    this.staged[partition].anomalies.push(a);
  }
  setTrend(partition: number, t: TrendRecord): void {
    this.staged[partition].trends.set(t.series, t);
  }
  addAlert(partition: number, a: AlertRecord): void {
    this.staged[partition].alerts.push(a);
  }
  addViewDelta(partition: number, d: ViewDelta): void {
    this.staged[partition].viewDeltas.push(d);
  }

  /** Hands a partition's staged rows and the pending series over as one job with its checkpoint; settle() once it is written. */
  take(partition: number, checkpoint: Checkpoint): CommitJob {
    if (this.committing[partition] !== null) throw new Error(`partition ${partition}: a commit is in flight already`); // programmer error
    const s = this.staged[partition];
    this.committing[partition] = s;
    this.staged[partition] = new Staged();
    const series = this.takeSeries();
    return { partition, checkpoint, windows: s.windows, anomalies: s.anomalies, trends: [...s.trends.values()], alerts: s.alerts, viewDeltas: s.viewDeltas, series };
  }

  /** The series registered since the last job: written with the next job, or alone by StoreWriter.writeSeries. */
  takeSeries(): SeriesInfo[] {
    const out = this.series;
    this.series = [];
    return out;
  }

  /** After a job is written: its rows leave (a failed job is sent again as it is, its rows still answered meanwhile). */
  settle(partition: number): void {
    this.committing[partition] = null;
  }

  /** Series of a write or a job that failed: they go with the next one, in their order. */
  restoreSeries(series: readonly SeriesInfo[]): void {
    this.series = [...series, ...this.series];
  }

  /**
   * Staged windows that pass `keep`, oldest first: results already pushed
   * live but not yet in the file. Readers merge them, so a client that
   * subscribes and then back-fills sees no gap. With `partition`, only that
   * partition's rows.
   */
  stagedWindows(keep: (r: WindowRecord) => boolean, partition?: number): WindowRecord[] {
    return this.stagedRows((s) => s.windows, keep, partition);
  }

  /** Staged anomalies that pass `keep`, oldest first per partition (see stagedWindows). */
  stagedAnomalies(keep: (a: AnomalyRecord) => boolean, partition?: number): AnomalyRecord[] {
    return this.stagedRows((s) => s.anomalies, keep, partition);
  }

  /** Staged rule transitions that pass `keep`, oldest first per partition (see stagedWindows). */
  stagedAlerts(keep: (a: AlertRecord) => boolean): AlertRecord[] {
    return this.stagedRows((s) => s.alerts, keep);
  }

  private stagedRows<T>(rows: (s: Staged) => T[], keep: (r: T) => boolean, partition?: number): T[] {
    const out: T[] = [];
    const from = partition ?? 0;
    const to = partition === undefined ? this.staged.length : partition + 1;
    for (let p = from; p < to; p++) {
      for (const s of [this.committing[p], this.staged[p]]) if (s !== null) for (const r of rows(s)) if (keep(r)) out.push(r);
    }
    return out;
  }

  /** Drops a partition's staged rows (not a commit in flight): its worker died, and its replay recomputes them. */
  discard(partition: number): void {
    this.staged[partition] = new Staged();
  }
}

/** The writer thread's half: the SQLite writes. */
export class StoreWrites {
  private readonly commitTx: (job: CommitJob) => ViewWindow[];
  private readonly seriesTx: (series: readonly SeriesInfo[]) => void;
  private readonly replicaTx: (rows: ReplicaRows) => void;
  private readonly deadlettersTx: (rows: readonly DeadLetter[], keep: number) => void;
  private readonly putSeries: Statement;
  private readonly putAlerts: (rows: readonly AlertRecord[]) => void;
  private readonly handedTx: (rows: readonly AlertKey[]) => void;
  private readonly viewRulesTx: (c: ViewRulesCommit) => void;
  private readonly putDefinition: (table: DefinitionTable, name: string, def: unknown) => void;
  private readonly putTable: Statement;

  constructor(readonly db: Database, private readonly hooks: CommitHooks = {}) {
    // Positional parameters: binding 14 named ones per row cost 1.5× the time here.
    const putWindow = db.prepare(
      `INSERT OR REPLACE INTO windows (series, window, start, "end", count, sum, min, max, avg, p50, p95, p99, first, last)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.putSeries = db.prepare(`INSERT OR IGNORE INTO series (key, name, tags, partition, local) VALUES (?, ?, ?, ?, ?)`);
    const putAnomaly = db.prepare(
      `INSERT INTO anomalies (series, ts, value, z, mean, std, severity, source, baseline_n, baseline_from, test, expected_lo, expected_hi)
       VALUES ($series, $ts, $value, $z, $mean, $std, $severity, $source, $baseline_n, $baseline_from, $test, $expected_lo, $expected_hi)`,
    );
    const putTrend = db.prepare(
      `INSERT OR REPLACE INTO trends (series, ts, slope, r2, n, change, level, class) VALUES ($series, $ts, $slope, $r2, $n, $change, $level, $class)`,
    );
    const putCheckpoint = db.prepare(
      `INSERT OR REPLACE INTO checkpoints (partition, pos, state, config, committed_ms) VALUES (?, ?, ?, ?, ?)`,
    );
    const run = (stmt: Statement, rows: readonly object[]) => {
      for (const r of rows) stmt.run(r as Record<string, string | number>);
    };
    this.seriesTx = db.transaction((series: readonly SeriesInfo[]) => this.writeSeries(series));
    // A copied anomaly may come twice (its owner and the next one both computed it): kept once per series and time.
    const putAnomalyOnce = db.prepare(
      `INSERT INTO anomalies (series, ts, value, z, mean, std, severity, source, baseline_n, baseline_from, test, expected_lo, expected_hi)
       SELECT $series, $ts, $value, $z, $mean, $std, $severity, $source, $baseline_n, $baseline_from, $test, $expected_lo, $expected_hi
       WHERE NOT EXISTS (SELECT 1 FROM anomalies WHERE series = $series AND ts = $ts)`,
    );
    // A transition is one row per rule, series, instant and state: one computed again (a replay) is the same row.
    const putAlert = db.prepare(
      `INSERT OR IGNORE INTO alerts (rule, series, state, ts, value, threshold, severity, labels, advice) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.putAlerts = (rows) => {
      for (const a of rows) {
        putAlert.run(a.rule, a.series, a.state, a.ts, JSON.stringify(a.value), JSON.stringify(a.threshold), a.severity, JSON.stringify(a.labels), a.advice);
      }
    };
    const putViewRules = db.prepare(`INSERT OR REPLACE INTO view_rules (id, judged_to, state, updated_ms) VALUES (1, ?, ?, ?)`);
    this.viewRulesTx = db.transaction((c: ViewRulesCommit) => {
      this.putAlerts(c.alerts);
      putViewRules.run(c.judgedTo, c.state, Date.now());
    });
    const markHanded = db.prepare(`UPDATE alerts SET handed = 1 WHERE rule = ? AND series = ? AND ts = ? AND state = ?`);
    this.handedTx = db.transaction((rows: readonly AlertKey[]) => {
      for (const k of rows) markHanded.run(k.rule, k.series, k.ts, k.state);
    });
    const putDefs = {
      rules: db.prepare(`INSERT OR REPLACE INTO rules (name, def, updated_ms) VALUES (?, ?, ?)`),
      views: db.prepare(`INSERT OR REPLACE INTO views (name, def, updated_ms) VALUES (?, ?, ?)`),
    };
    this.putDefinition = (table, name, def) => putDefs[table].run(name, def === null ? null : JSON.stringify(def), Date.now());
    this.putTable = db.prepare(`INSERT OR REPLACE INTO ref_tables (name, key, version, rows, updated_ms) VALUES (?, ?, ?, ?, ?)`);
    const putDeadletter = db.prepare(`INSERT INTO deadletters (ts, reason, event, source) VALUES (?, ?, ?, ?)`);
    const trimDeadletters = db.prepare(`DELETE FROM deadletters WHERE id <= (SELECT id FROM deadletters ORDER BY id DESC LIMIT 1 OFFSET ?)`);
    this.deadlettersTx = db.transaction((rows: readonly DeadLetter[], keep: number) => {
      for (const d of rows) putDeadletter.run(d.ts, d.reason, JSON.stringify(d.event ?? null), d.source === undefined ? null : JSON.stringify(d.source));
      trimDeadletters.run(keep);
    });
    this.replicaTx = db.transaction((rows: ReplicaRows) => {
      for (const r of rows.windows) {
        putWindow.run(r.series, r.window, r.start, r.end, r.count, r.sum, r.min, r.max, r.avg, r.p50, r.p95, r.p99, r.first, r.last);
      }
      run(putAnomalyOnce, rows.anomalies);
      run(putTrend, rows.trends);
      this.putAlerts(rows.alerts ?? []);
    });
    const getViewState = db.prepare(`SELECT agg FROM view_state WHERE series = ? AND window = ? AND start = ?`);
    const putViewState = db.prepare(`INSERT OR REPLACE INTO view_state (series, window, start, "end", view, agg) VALUES (?, ?, ?, ?, ?, ?)`);
    const putNull = (v: number | null) => (v === null || Number.isNaN(v) ? null : v);
    // A view's `having` hit: one alert per view, group and window (its start), however often the merged window changes.
    const putHit = db.prepare(
      `INSERT OR IGNORE INTO alerts (rule, series, state, ts, value, threshold, severity, labels, advice, handed, kind) VALUES (?, ?, 'firing', ?, ?, ?, 'warning', ?, ?, 1, 'view')`,
    );
    /** Each delta into its view window's merged state, and that window's row: in the commit's transaction, so exactly once. */
    const mergeViews = (deltas: readonly ViewDelta[]): ViewWindow[] => {
      const out = new Map<string, ViewWindow>();
      for (const d of deltas) {
        const row = getViewState.get(d.k, d.w, d.s) as { agg: Uint8Array } | null;
        const agg = row === null ? ViewAgg.restore(d.a) : ViewAgg.restore(decode(row.agg) as ViewAggSnapshot);
        if (row !== null) agg.merge(ViewAgg.restore(d.a));
        putViewState.run(d.k, d.w, d.s, d.e, d.v, encode(agg.snapshot()));
        const r = agg.result();
        const record: WindowRecord = {
          series: d.k, window: d.w, start: d.s, end: d.e, count: r.count, sum: r.sum, min: r.min, max: r.max, avg: r.avg,
          p50: r.p50 ?? NaN, p95: r.p95 ?? NaN, p99: r.p99 ?? NaN, first: r.first, last: r.last,
        };
        putWindow.run(d.k, d.w, d.s, d.e, r.count, r.sum, r.min, r.max, r.avg, putNull(r.p50), putNull(r.p95), putNull(r.p99), r.first, r.last);
        let hit: AlertRecord | null = null;
        const value = d.h === null ? null : resultValue(r, d.h.agg);
        if (d.h !== null && value !== null && compare(d.h.op, value, d.h.threshold)) {
          const advice = `${d.h.text}: ${d.h.agg} ${value} in ${d.w} from ${new Date(d.s).toISOString()}`;
          if (putHit.run(d.v, d.k, d.s, JSON.stringify(value), JSON.stringify(d.h.threshold), JSON.stringify(d.g), advice).changes > 0) {
            hit = { kind: "view", rule: d.v, series: d.k, state: "firing", ts: d.s, value, threshold: d.h.threshold, severity: "warning", labels: d.g, advice } as unknown as AlertRecord;
          }
        }
        out.set(`${d.k}|${d.w}|${d.s}`, { view: d.v, record, distinct: r.distinct, tags: d.g, hit: hit ?? out.get(`${d.k}|${d.w}|${d.s}`)?.hit ?? null });
      }
      return [...out.values()];
    };
    this.commitTx = db.transaction((job: CommitJob) => {
      this.writeSeries(job.series);
      for (const r of job.windows) {
        putWindow.run(r.series, r.window, r.start, r.end, r.count, r.sum, r.min, r.max, r.avg, r.p50, r.p95, r.p99, r.first, r.last);
      }
      run(putAnomaly, job.anomalies);
      run(putTrend, job.trends);
      this.putAlerts(job.alerts);
      const views = job.viewDeltas.length === 0 ? [] : mergeViews(job.viewDeltas);
      this.hooks.mid?.();
      const c = job.checkpoint;
      putCheckpoint.run(job.partition, c.pos, c.state, c.config, Date.now());
      return views;
    });
  }

  /** Writes a job in one transaction; on error nothing of it is written. Returns the windows written and the view windows merged. */
  commit(job: CommitJob): CommitResult {
    this.hooks.before?.();
    const views = this.commitTx(job);
    this.hooks.after?.();
    return { windows: job.windows.length, views };
  }

  /** Writes results copied from another process in one transaction (windows and trends replace, anomalies once). */
  replicate(rows: ReplicaRows): number {
    this.replicaTx(rows);
    return rows.windows.length + rows.anomalies.length + rows.trends.length;
  }

  /** Appends dead letters and keeps the newest `keep`, in one transaction; returns the rows appended. */
  writeDeadletters(rows: readonly DeadLetter[], keep: number): number {
    this.deadlettersTx(rows, keep);
    return rows.length;
  }

  /** The rules on views' transitions with their state and how far they judged, in one transaction. */
  commitViewRules(c: ViewRulesCommit): number {
    this.viewRulesTx(c);
    return c.alerts.length;
  }

  /** Marks committed transitions as handed to their actions (a start hands over those left unmarked). */
  markHanded(rows: readonly AlertKey[]): number {
    this.handedTx(rows);
    return rows.length;
  }

  /** Keeps an admin API change of a rule or a view: its definition, or null for one deleted (also one of the config file). */
  writeDefinition(table: DefinitionTable, name: string, def: unknown): void {
    this.putDefinition(table, name, def);
  }

  /** Keeps an admin API change of a reference table: its rows as JSON, or null for one deleted (also one of the config file). */
  writeTable(name: string, key: string | null, version: number, rows: string | null): void {
    this.putTable.run(name, key, version, rows, Date.now());
  }

  /** Writes series now (they are also written with every commit). */
  flushSeries(series: readonly SeriesInfo[]): void {
    if (series.length > 0) this.seriesTx(series);
  }

  /**
   * Deletes windows past their resolution's retention, and anomalies and
   * rule transitions past the 1m retention; returns the rows deleted.
   * @example writes.prune(Date.now(), { "10s": 2 * 86400_000, "1m": 30 * 86400_000 }, 30 * 86400_000);
   */
  prune(nowMs: number, retentionByLabel: Record<string, number>, anomaliesMs: number): number {
    let n = 0;
    const del = this.db.prepare(`DELETE FROM windows WHERE window = ? AND "end" < ?`);
    for (const [label, ms] of Object.entries(retentionByLabel)) n += del.run(label, nowMs - ms).changes;
    n += this.db.prepare(`DELETE FROM anomalies WHERE ts < ?`).run(nowMs - anomaliesMs).changes;
    n += this.db.prepare(`DELETE FROM alerts WHERE ts < ?`).run(nowMs - anomaliesMs).changes; // kept as long as anomalies
    // The views' windows (any spec) and their merged states: as long as the 1m resolution.
    n += this.db.prepare(`DELETE FROM windows WHERE series >= 'view.' AND series < 'view/' AND "end" < ?`).run(nowMs - anomaliesMs).changes;
    n += this.db.prepare(`DELETE FROM view_state WHERE "end" < ?`).run(nowMs - anomaliesMs).changes;
    return n;
  }

  private writeSeries(series: readonly SeriesInfo[]): void {
    for (const x of series) this.putSeries.run(x.key, x.name, JSON.stringify(x.tags), x.partition, x.local);
  }
}

/** The last committed checkpoint of every partition that has one (read on any connection). */
export function loadCheckpoints(db: Database): Map<number, Checkpoint> {
  const rows = db.query(`SELECT partition, pos, state, config FROM checkpoints`).all() as Array<
    { partition: number; pos: number; state: Uint8Array; config: string }
  >;
  return new Map(rows.map((r) => [r.partition, { pos: r.pos, state: r.state, config: r.config }]));
}

/** The raw-log position of every partition's last committed checkpoint (without their states, which can be large). */
export function checkpointPositions(db: Database): Map<number, number> {
  const rows = db.query(`SELECT partition, pos FROM checkpoints`).all() as Array<{ partition: number; pos: number }>;
  return new Map(rows.map((r) => [r.partition, r.pos]));
}

/** The newest `max` dead letters stored, oldest first (for the list at start-up). */
export function loadDeadletters(db: Database, max: number): DeadLetter[] {
  const rows = db.query(`SELECT ts, reason, event, source FROM deadletters ORDER BY id DESC LIMIT ?`).all(max) as Array<
    { ts: number; reason: string; event: string; source: string | null }
  >;
  return rows.reverse().map((r) => ({ ts: r.ts, reason: r.reason, event: JSON.parse(r.event) as unknown, ...(r.source === null ? {} : { source: JSON.parse(r.source) as Record<string, unknown> }) }));
}

/** Series persisted earlier, in registration order per partition (for the registry at start-up). */
export function loadSeries(db: Database): SeriesInfo[] {
  const rows = db.query(`SELECT key, name, tags, partition, local FROM series ORDER BY partition, local`).all() as Array<
    { key: string; name: string; tags: string; partition: number; local: number }
  >;
  return rows.map((r) => ({ ...r, tags: JSON.parse(r.tags) as Record<string, string> }));
}
