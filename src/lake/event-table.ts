/**
 * The DuckDB side of the raw tail: decoded events (raw-events.ts) are
 * appended to in-memory tables as columns, a DuckDB vector (2,048 rows) at
 * a time, and written out as one Parquet file per event hour. Three tables,
 * so that per event only numbers cross into DuckDB:
 *
 *   rows   (ts DOUBLE, value DOUBLE, s INTEGER)        every event, in order
 *   series (s INTEGER, name, series, tags MAP)          each series once, for the tables' life
 *   extras (r INTEGER, props VARCHAR, id VARCHAR)       the events with an id or props, by row
 *
 * and the Parquet file is their join, with the raw zone's columns and types
 * (tables.ts eventColumns). This replaced NDJSON staging text that DuckDB
 * parsed back: measured in BENCHMARKS.md "Lake".
 *
 * This module loads DuckDB's library: compactor.ts imports it at the first
 * event, so an idle weir's lake does not carry it.
 *
 * @example
 *   const t = await EventTable.open(conn);
 *   events.decode(payload, t);                    // RawEvents
 *   await t.write((hour) => join(tail, `x-${hour}.parquet`), staging);
 */
import {
  DOUBLE, DuckDBDataChunk, INTEGER, MAP, VARCHAR, mapValue,
  type DuckDBAppender, type DuckDBConnection, type DuckDBDoubleVector, type DuckDBIntegerVector,
} from "@duckdb/node-api";
import { strict as assert } from "node:assert";
import { mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { EventSink, SeriesRef } from "./raw-events.ts";
import { sqlString } from "./tables.ts";

/** Rows per appended chunk: DuckDB's vector size, the most one data chunk holds. */
const chunkRows = 2048;
const hourMs = 3_600_000;
const tagsType = MAP(VARCHAR, VARCHAR);
let opened = 0; // table names are unique per EventTable: tests share one connection among several

export class EventTable implements EventSink {
  /** Events appended since the last write. */
  rows = 0;
  private readonly hours = new Set<number>();
  private lastHour = Number.NaN;
  private readonly rowChunk = new RowChunk();
  private readonly extraChunk = new ExtraChunk();
  private appenders!: { rows: DuckDBAppender; extras: DuckDBAppender };
  private extrasCount = 0;

  private constructor(private readonly conn: DuckDBConnection, private readonly name: string, private readonly seriesAppender: DuckDBAppender) {}

  static async open(conn: DuckDBConnection): Promise<EventTable> {
    const name = `lake_events_${++opened}`;
    await conn.run(`CREATE OR REPLACE TEMP TABLE ${name}_series (s INTEGER, name VARCHAR, series VARCHAR, tags MAP(VARCHAR, VARCHAR))`);
    const t = new EventTable(conn, name, await conn.createAppender(`${name}_series`, "main", "temp"));
    await t.begin();
    return t;
  }

  series(index: number, s: SeriesRef): void {
    const a = this.seriesAppender;
    a.appendInteger(index);
    a.appendVarchar(s.name);
    a.appendVarchar(s.key);
    a.appendMap(mapValue(Object.entries(s.tags).map(([key, value]) => ({ key, value }))), tagsType);
    a.endRow();
  }

  event(ts: number, value: number, series: number, props: string | null, id: string | null): void {
    if (props !== null || id !== null) {
      if (this.extraChunk.add(this.rows, props, id)) this.appendExtras();
    }
    const h = Math.floor(ts / hourMs);
    if (h !== this.lastHour) {
      this.lastHour = h;
      this.hours.add(h);
    }
    this.rows++;
    if (this.rowChunk.add(ts, value, series)) this.appendRows();
  }

  /**
   * Writes the events appended since the last write as Parquet, one file per
   * event hour at `target(hour, i)` (i > 0 only if DuckDB split an hour),
   * each under a temporary name renamed into place; then starts empty.
   * `staging` is a scratch directory for a write that spans hours.
   */
  async write(target: (hour: number, i: number) => string, staging: string): Promise<void> {
    this.appendRows();
    this.appendExtras();
    this.appenders.rows.closeSync();
    this.appenders.extras.closeSync();
    this.seriesAppender.flushSync();
    const n = this.name;
    const extras = this.extrasCount > 0;
    const columns = `r.ts::BIGINT AS ts, s.name AS name, s.series AS series, r.value AS value, s.tags AS tags, ` +
      (extras ? `x.props::JSON AS props, x.id AS id` : `NULL::JSON AS props, NULL::VARCHAR AS id`);
    const from = `FROM ${n}_rows r JOIN ${n}_series s ON s.s = r.s` + (extras ? ` LEFT JOIN ${n}_extras x ON x.r = r.rowid` : "");
    if (this.hours.size === 1) {
      const path = target([...this.hours][0], 0);
      await this.conn.run(`COPY (SELECT ${columns} ${from}) TO ${sqlString(`${path}.tmp`)} (FORMAT parquet)`);
      renameSync(`${path}.tmp`, path);
    } else if (this.hours.size > 1) {
      // Rarely more than one hour (a pass across the hour's end): one statement, partitioned by hour, whatever their number.
      const parts = join(staging, `${n}.parts`);
      rmSync(parts, { recursive: true, force: true });
      try {
        await this.conn.run(`COPY (SELECT ${columns}, floor(r.ts / ${hourMs})::BIGINT AS h ${from}) TO ${sqlString(parts)} (FORMAT parquet, PARTITION_BY (h))`);
        for (const dir of readdirSync(parts)) {
          const m = /^h=(-?\d+)$/.exec(dir);
          assert(m !== null, `PARTITION_BY (h) wrote ${dir}`);
          readdirSync(join(parts, dir)).sort().forEach((f, i) => renameSync(join(parts, dir, f), target(Number(m[1]), i)));
        }
      } finally {
        rmSync(parts, { recursive: true, force: true });
      }
    }
    await this.begin();
  }

  /** Drops the tables (after a failed write, or when done). */
  async close(): Promise<void> {
    for (const a of [this.appenders.rows, this.appenders.extras, this.seriesAppender]) {
      try {
        a.closeSync();
      } catch { /* already closed, or its table is gone: nothing to keep */ }
    }
    for (const t of ["rows", "extras", "series"]) await this.conn.run(`DROP TABLE IF EXISTS ${this.name}_${t}`);
  }

  /** Fresh row and extras tables (insertion order is rowid order: extras join on it). */
  private async begin(): Promise<void> {
    const n = this.name;
    await this.conn.run(`CREATE OR REPLACE TEMP TABLE ${n}_rows (ts DOUBLE, value DOUBLE, s INTEGER)`);
    await this.conn.run(`CREATE OR REPLACE TEMP TABLE ${n}_extras (r INTEGER, props VARCHAR, id VARCHAR)`);
    this.appenders = { rows: await this.conn.createAppender(`${n}_rows`, "main", "temp"), extras: await this.conn.createAppender(`${n}_extras`, "main", "temp") };
    this.rows = 0;
    this.extrasCount = 0;
    this.hours.clear();
    this.lastHour = Number.NaN;
  }

  private appendRows(): void {
    this.rowChunk.appendTo(this.appenders.rows);
  }

  private appendExtras(): void {
    this.extrasCount += this.extraChunk.appendTo(this.appenders.extras);
  }
}

/** One data chunk of rows (ts, value, s), filled in place and appended when full; allocated once. */
class RowChunk {
  private chunk = DuckDBDataChunk.create([DOUBLE, DOUBLE, INTEGER], chunkRows);
  private ts = this.chunk.getColumnVector(0) as DuckDBDoubleVector;
  private value = this.chunk.getColumnVector(1) as DuckDBDoubleVector;
  private s = this.chunk.getColumnVector(2) as DuckDBIntegerVector;
  private fill = 0;

  /** True when the chunk is full (appendTo next). */
  add(ts: number, value: number, s: number): boolean {
    const i = this.fill++;
    this.ts.setItem(i, ts);
    this.value.setItem(i, Number.isFinite(value) ? value : null); // as before: NaN and ±Infinity are NULL in the raw zone
    this.s.setItem(i, s);
    return this.fill === chunkRows;
  }

  /** Appends the rows filled so far; returns how many. */
  appendTo(appender: DuckDBAppender): number {
    const n = this.fill;
    if (n === 0) return 0;
    this.ts.flush();
    this.value.flush();
    this.s.flush();
    if (n < chunkRows) this.chunk.rowCount = n; // the vectors' data stays: only the chunk's size changes
    appender.appendDataChunk(this.chunk);
    if (n < chunkRows) {
      this.chunk.rowCount = chunkRows;
      this.ts = this.chunk.getColumnVector(0) as DuckDBDoubleVector;
      this.value = this.chunk.getColumnVector(1) as DuckDBDoubleVector;
      this.s = this.chunk.getColumnVector(2) as DuckDBIntegerVector;
    }
    this.fill = 0;
    return n;
  }
}

/** The same for the extras (r, props, id): strings cross one by one, so only the events that carry them are here. */
class ExtraChunk {
  private r: number[] = [];
  private props: Array<string | null> = [];
  private id: Array<string | null> = [];

  add(r: number, props: string | null, id: string | null): boolean {
    this.r.push(r);
    this.props.push(props);
    this.id.push(id);
    return this.r.length === chunkRows;
  }

  appendTo(appender: DuckDBAppender): number {
    const n = this.r.length;
    if (n === 0) return 0;
    const chunk = DuckDBDataChunk.create([INTEGER, VARCHAR, VARCHAR], n); // at most one per 2,048 events with extras
    chunk.setColumnValues(0, this.r);
    chunk.setColumnValues(1, this.props);
    chunk.setColumnValues(2, this.id);
    appender.appendDataChunk(chunk);
    this.r = [];
    this.props = [];
    this.id = [];
    return n;
  }
}
