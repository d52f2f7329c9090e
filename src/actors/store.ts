/**
 * The store actor: the only writer of the SQLite file. Window results and
 * new series queue here and are written in one transaction per flush
 * (every limits.storeFlushMs), so a closed window is readable well within
 * the 1 s the API promises. The queue is bounded: when it is full the engine
 * stops draining the partitions' output rings (backpressure up the pipe).
 *
 * @example
 *   const store = new Store(openStore(path));
 *   store.addWindow({ series: "cpu", window: "10s", start, end, count, ... });
 *   store.flush();
 */
import type { Database, Statement } from "bun:sqlite";
import { limits } from "../runtime/limits.ts";
import type { SeriesInfo } from "./series-registry.ts";

export interface WindowRecord {
  series: string; window: string; start: number; end: number; count: number;
  sum: number; min: number; max: number; avg: number; p50: number; p95: number; p99: number;
  first: number; last: number;
}

export class Store {
  private windows: WindowRecord[] = [];
  private series: SeriesInfo[] = [];
  private readonly putWindow: Statement;
  private readonly putSeries: Statement;
  private readonly writeAll: (w: WindowRecord[], s: SeriesInfo[]) => void;
  rowsWritten = 0;

  constructor(readonly db: Database) {
    this.putWindow = db.prepare(
      `INSERT OR REPLACE INTO windows (series, window, start, "end", count, sum, min, max, avg, p50, p95, p99, first, last)
       VALUES ($series, $window, $start, $end, $count, $sum, $min, $max, $avg, $p50, $p95, $p99, $first, $last)`,
    );
    this.putSeries = db.prepare(`INSERT OR IGNORE INTO series (key, name, tags, partition, local) VALUES (?, ?, ?, ?, ?)`);
    this.writeAll = db.transaction((w: WindowRecord[], s: SeriesInfo[]) => {
      for (const x of s) this.putSeries.run(x.key, x.name, JSON.stringify(x.tags), x.partition, x.local);
      for (const r of w) this.putWindow.run(r as unknown as Record<string, number | string>);
    });
  }

  /** Whether the queue has room for more results (the engine stops draining rings when not). */
  hasRoom(): boolean {
    return this.windows.length < limits.storePendingRowsMax;
  }

  get pending(): number {
    return this.windows.length + this.series.length;
  }

  addWindow(r: WindowRecord): void {
    this.windows.push(r);
  }

  addSeries(s: SeriesInfo): void {
    this.series.push(s);
  }

  /** Writes everything queued in one transaction. Throws StoreError-worthy errors to the caller. */
  flush(): number {
    if (this.windows.length === 0 && this.series.length === 0) return 0;
    const w = this.windows;
    const s = this.series;
    this.writeAll(w, s);
    this.windows = [];
    this.series = [];
    this.rowsWritten += w.length;
    return w.length;
  }

  /** Series persisted earlier, in registration order per partition (for the registry at start-up). */
  loadSeries(): SeriesInfo[] {
    const rows = this.db.query(`SELECT key, name, tags, partition, local FROM series ORDER BY partition, local`).all() as Array<
      { key: string; name: string; tags: string; partition: number; local: number }
    >;
    return rows.map((r) => ({ ...r, tags: JSON.parse(r.tags) as Record<string, string> }));
  }
}
