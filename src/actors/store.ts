/**
 * The store actor: the only writer of the SQLite file. A partition's window
 * results, anomalies and trends are staged here as they arrive and written
 * in ONE transaction with that partition's checkpoint (its state and raw-log
 * position), so after a crash the store holds exactly the results of the
 * state it restores: replay recomputes the rest, and nothing is written
 * twice. New series ride along with every transaction. The staged rows are
 * bounded by the workers, which checkpoint early past
 * limits.checkpointRowsMax rows; while a commit fails (disk full, I/O) the
 * engine stops draining that partition's output ring (backpressure up the
 * pipe) and retries.
 *
 * @example
 *   const store = new Store(openStore(path));
 *   store.addWindow(0, { series: "cpu", window: "10s", start, end, count, ... });
 *   store.commit(0, { pos: 4096, state: snapshotBytes, config }); // rows + checkpoint, atomically
 */
import type { Database, Statement } from "bun:sqlite";
import type { SeriesInfo } from "./series-registry.ts";

export interface WindowRecord {
  series: string; window: string; start: number; end: number; count: number;
  sum: number; min: number; max: number; avg: number; p50: number; p95: number; p99: number;
  first: number; last: number;
}
export interface AnomalyRecord {
  series: string; ts: number; value: number; z: number; mean: number; std: number;
  severity: string; source: string; baseline_n: number; baseline_from: number;
}
export interface TrendRecord { series: string; ts: number; slope: number; r2: number; n: number; change: number; level: number; class: string }
export interface Checkpoint { pos: number; state: Uint8Array; config: string }

/** Test-only hooks at the commit boundaries (WEIR_CRASH_AT): before, mid (rows written, checkpoint not), after. */
export interface CommitHooks { before?: () => void; mid?: () => void; after?: () => void }

class Staged {
  windows: WindowRecord[] = [];
  anomalies: AnomalyRecord[] = [];
  trends = new Map<string, TrendRecord>(); // latest per series; bounded by the series count
}

export class Store {
  private readonly staged: Staged[] = [];
  private series: SeriesInfo[] = [];
  private readonly commitTx: (p: number, c: Checkpoint) => void;
  private readonly seriesTx: () => void;
  rowsWritten = 0;

  constructor(readonly db: Database, partitions: number, private readonly hooks: CommitHooks = {}) {
    for (let p = 0; p < partitions; p++) this.staged.push(new Staged());
    // Positional parameters: binding 14 named ones per row cost 1.5× the time here.
    const putWindow = db.prepare(
      `INSERT OR REPLACE INTO windows (series, window, start, "end", count, sum, min, max, avg, p50, p95, p99, first, last)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const putSeries = db.prepare(`INSERT OR IGNORE INTO series (key, name, tags, partition, local) VALUES (?, ?, ?, ?, ?)`);
    const putAnomaly = db.prepare(
      `INSERT INTO anomalies (series, ts, value, z, mean, std, severity, source, baseline_n, baseline_from)
       VALUES ($series, $ts, $value, $z, $mean, $std, $severity, $source, $baseline_n, $baseline_from)`,
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
    const writeSeries = () => {
      for (const x of this.series) putSeries.run(x.key, x.name, JSON.stringify(x.tags), x.partition, x.local);
    };
    this.seriesTx = db.transaction(writeSeries);
    this.commitTx = db.transaction((p: number, c: Checkpoint) => {
      writeSeries();
      const s = this.staged[p];
      for (const r of s.windows) {
        putWindow.run(r.series, r.window, r.start, r.end, r.count, r.sum, r.min, r.max, r.avg, r.p50, r.p95, r.p99, r.first, r.last);
      }
      run(putAnomaly, s.anomalies);
      run(putTrend, [...s.trends.values()]);
      this.hooks.mid?.();
      putCheckpoint.run(p, c.pos, c.state, c.config, Date.now());
    });
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

  /**
   * Writes a partition's staged rows, the pending series and its checkpoint
   * in one transaction; on error nothing is written and the rows stay staged
   * (the partition's next checkpoint covers them). Returns the windows written.
   */
  commit(partition: number, c: Checkpoint): number {
    this.hooks.before?.();
    this.commitTx(partition, c);
    this.hooks.after?.();
    const s = this.staged[partition];
    const n = s.windows.length;
    this.staged[partition] = new Staged();
    this.series = [];
    this.rowsWritten += n;
    return n;
  }

  /**
   * Staged windows that pass `keep`, oldest first: results already pushed
   * live but not yet in the file (they are written with the partition's next
   * checkpoint). Readers merge them, so a client that subscribes and then
   * back-fills sees no gap. With `partition`, only that partition's rows.
   */
  stagedWindows(keep: (r: WindowRecord) => boolean, partition?: number): WindowRecord[] {
    return this.stagedRows((s) => s.windows, keep, partition);
  }

  /** Staged anomalies that pass `keep`, oldest first per partition (see stagedWindows). */
  stagedAnomalies(keep: (a: AnomalyRecord) => boolean, partition?: number): AnomalyRecord[] {
    return this.stagedRows((s) => s.anomalies, keep, partition);
  }

  private stagedRows<T>(rows: (s: Staged) => T[], keep: (r: T) => boolean, partition?: number): T[] {
    const out: T[] = [];
    const from = partition ?? 0;
    const to = partition === undefined ? this.staged.length : partition + 1;
    for (let p = from; p < to; p++) for (const r of rows(this.staged[p])) if (keep(r)) out.push(r);
    return out;
  }

  /** Drops a partition's uncommitted rows: its worker died, and its replay recomputes them. */
  discard(partition: number): void {
    this.staged[partition] = new Staged();
  }

  /** Writes new series now (their rows are also written with every commit). */
  flushSeries(): void {
    if (this.series.length === 0) return;
    this.seriesTx();
    this.series = [];
  }

  /** The last committed checkpoint of every partition that has one. */
  loadCheckpoints(): Map<number, Checkpoint> {
    const rows = this.db.query(`SELECT partition, pos, state, config FROM checkpoints`).all() as Array<
      { partition: number; pos: number; state: Uint8Array; config: string }
    >;
    return new Map(rows.map((r) => [r.partition, { pos: r.pos, state: r.state, config: r.config }]));
  }

  /** Forgets every checkpoint (the partitioning or the window specs changed: their states no longer apply). */
  dropCheckpoints(): void {
    this.db.exec("DELETE FROM checkpoints");
  }

  /**
   * Deletes windows past their resolution's retention and anomalies past the
   * 1m retention; returns the rows deleted.
   * @example store.prune(Date.now(), { "10s": 2 * 86400_000, "1m": 30 * 86400_000 }, 30 * 86400_000);
   */
  prune(nowMs: number, retentionByLabel: Record<string, number>, anomaliesMs: number): number {
    let n = 0;
    const del = this.db.prepare(`DELETE FROM windows WHERE window = ? AND "end" < ?`);
    for (const [label, ms] of Object.entries(retentionByLabel)) n += del.run(label, nowMs - ms).changes;
    n += this.db.prepare(`DELETE FROM anomalies WHERE ts < ?`).run(nowMs - anomaliesMs).changes;
    return n;
  }

  /** Series persisted earlier, in registration order per partition (for the registry at start-up). */
  loadSeries(): SeriesInfo[] {
    const rows = this.db.query(`SELECT key, name, tags, partition, local FROM series ORDER BY partition, local`).all() as Array<
      { key: string; name: string; tags: string; partition: number; local: number }
    >;
    return rows.map((r) => ({ ...r, tags: JSON.parse(r.tags) as Record<string, string> }));
  }
}
