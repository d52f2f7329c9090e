/**
 * The raw zone as Parquet. Records not compacted yet (the open segment's,
 * and a closed one's until its turn) go to lake/tail/ in chunks
 * <segment>-<position>.parquet as they arrive, so SQL sees an event within
 * one pass (WEIR_LAKE_INTERVAL) of its 202. A closed raw-log segment
 * (every one but the last) is compacted once into files by event hour,
 * lake/raw/date=YYYY-MM-DD/hour=HH/<segment>-data_N.parquet, and a marker
 * lake/.compacted/<segment> says so. Compaction reads the segment's tail
 * chunks (DuckDB, Parquet to Parquet), not the raw log again: each record
 * is decoded once, into the tail (measured: the compaction stage took
 * 0.37–0.55 of the CPU it took when it decoded the segment again,
 * BENCHMARKS.md "Lake", third session).
 *
 * Crash safety: every file is written under a temporary name and renamed;
 * a segment whose marker is missing is compacted again, to the same names.
 * A segment's tail chunks are deleted just before its hour files appear, so
 * SQL may miss that segment's events for an instant, never count them twice.
 *
 * @example
 *   const c = new Compactor({ dataDir, duck: async () => conn, lookup, retentionMs });
 *   await c.pass(Date.now());
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ingestRecordFormat } from "../actors/ingest-record.ts";
import { limits } from "../runtime/limits.ts";
import { listSegments, RawLogError, readRawLog, segmentName } from "../storage/rawlog.ts";
import { RawEvents, type SeriesLookup } from "./raw-events.ts";
import { selectColumns, Stage } from "./stage.ts";
import { eventColumns, lakePaths, sqlIdent, sqlString } from "./tables.ts";

/** `duck`: the DuckDB connection, asked for only when there are rows to write (lake.worker.ts opens DuckDB then). */
export interface CompactorOptions { dataDir: string; duck: () => Promise<DuckDBConnection>; lookup: SeriesLookup; retentionMs: number }

export interface PassResult { compacted: number; tailEvents: number; hoursDeleted: number }

/** The hour columns PARTITION_BY splits on: UTC date and two-digit hour of the event time. */
const hourColumns = `strftime(make_timestamp(ts * 1000), '%Y-%m-%d') AS date, strftime(make_timestamp(ts * 1000), '%H') AS hour`;

export class Compactor {
  private readonly rawLogDir: string;
  private readonly events: RawEvents;
  /** Where each uncompacted segment's tail chunks end. Rebuilt from scratch at start (the tail directory is wiped). */
  private readonly tailPos = new Map<number, number>();

  constructor(private readonly o: CompactorOptions) {
    this.rawLogDir = join(o.dataDir, "raw");
    this.events = new RawEvents(o.lookup);
    for (const f of safeList(lakePaths.tail(o.dataDir))) if (f !== "_empty.parquet") rmSync(join(lakePaths.tail(o.dataDir), f), { force: true });
    rmSync(lakePaths.staging(o.dataDir), { recursive: true, force: true });
    mkdirSync(lakePaths.compacted(o.dataDir), { recursive: true });
  }

  /** One pass: compacts up to lakeSegmentsPerPassMax closed segments, extends the tail, applies retention. */
  async pass(nowMs: number): Promise<PassResult> {
    const segs = existsSync(this.rawLogDir) ? listSegments(this.rawLogDir) : [];
    const done = new Set(safeList(lakePaths.compacted(this.o.dataDir)));
    const pending = segs.filter((s) => !done.has(segmentName(s)));
    let compacted = 0;
    for (const start of pending) {
      const next = segs[segs.indexOf(start) + 1];
      if (next === undefined || compacted >= limits.lakeSegmentsPerPassMax) break; // the open segment, or enough for one pass
      await this.compact(start, next);
      compacted++;
    }
    let tailEvents = 0;
    for (const start of pending.slice(compacted)) {
      const next = segs[segs.indexOf(start) + 1] ?? Number.POSITIVE_INFINITY;
      tailEvents += await this.extendTail(start, next);
    }
    return { compacted, tailEvents, hoursDeleted: this.applyRetention(nowMs) };
  }

  /** Writes one closed segment's events as hour files (from its tail chunks, extended to its end first), then its marker. */
  private async compact(start: number, end: number): Promise<void> {
    const name = segmentName(start);
    await this.extendTail(start, end);
    const chunks = this.tailChunks(start);
    const parts = join(lakePaths.staging(this.o.dataDir), `${name}.parts`);
    rmSync(parts, { recursive: true, force: true });
    mkdirSync(lakePaths.staging(this.o.dataDir), { recursive: true });
    if (chunks.length > 0) {
      const conn = await this.o.duck();
      const files = chunks.map((f) => sqlString(join(lakePaths.tail(this.o.dataDir), f))).join(", ");
      await conn.run(`COPY (SELECT ${eventColumns.map((c) => sqlIdent(c.name)).join(", ")}, ${hourColumns} FROM read_parquet([${files}])) TO ${sqlString(parts)} (FORMAT parquet, PARTITION_BY (date, hour))`);
    }
    this.dropTail(start);
    for (const file of partitionFiles(parts)) {
      const dir = join(lakePaths.raw(this.o.dataDir), file.date, file.hour);
      mkdirSync(dir, { recursive: true });
      renameSync(file.path, join(dir, `${name}-${file.base}`));
    }
    rmSync(parts, { recursive: true, force: true });
    writeFileSync(join(lakePaths.compacted(this.o.dataDir), name), "");
  }

  /** Writes the segment's records from where its tail ended to `end` (or the last whole record) as one chunk. */
  private async extendTail(start: number, end: number): Promise<number> {
    const from = this.tailPos.get(start) ?? start;
    const name = segmentName(start);
    const stage = new Stage(join(lakePaths.staging(this.o.dataDir), `${name}-${from}.ndjson`));
    let reached = from;
    try {
      for (const rec of readRawLog(this.rawLogDir, from, end)) {
        if (rec.format === ingestRecordFormat) this.events.lines(rec.payload, (line) => stage.addLine(line));
        reached = rec.next;
      }
    } catch (e) {
      // The open segment's last record may be mid-write: what came before it is whole, the rest waits.
      if (!(e instanceof RawLogError && /torn record/.test(e.message) && !Number.isFinite(end))) throw e;
    }
    const rows = stage.rows;
    if (rows === 0) stage.close();
    else await stage.toParquet(await this.o.duck(), eventColumns, selectColumns(eventColumns), join(lakePaths.tail(this.o.dataDir), `${name}-${from}.parquet`));
    this.tailPos.set(start, reached);
    return rows;
  }

  /** The segment's tail chunk files, by name. */
  private tailChunks(start: number): string[] {
    const prefix = `${segmentName(start)}-`;
    return safeList(lakePaths.tail(this.o.dataDir)).filter((f) => f.startsWith(prefix) && f.endsWith(".parquet"));
  }

  private dropTail(start: number): void {
    for (const f of this.tailChunks(start)) rmSync(join(lakePaths.tail(this.o.dataDir), f), { force: true });
    this.tailPos.delete(start);
  }

  /** Deletes hour directories older than the retention (the seed file's directory stays: the view's glob needs a file). */
  private applyRetention(nowMs: number): number {
    const raw = lakePaths.raw(this.o.dataDir);
    let deleted = 0;
    for (const d of safeList(raw)) {
      for (const h of safeList(join(raw, d))) {
        const m = /^date=(\d{4}-\d{2}-\d{2})$/.exec(d);
        const hm = /^hour=(\d{2})$/.exec(h);
        if (m === null || hm === null || existsSync(join(raw, d, h, "_empty.parquet"))) continue;
        const hourEndMs = Date.parse(`${m[1]}T${hm[1]}:00:00Z`) + 3600_000;
        if (hourEndMs > nowMs - this.o.retentionMs) continue;
        rmSync(join(raw, d, h), { recursive: true, force: true });
        deleted++;
      }
    }
    return deleted;
  }
}

/** The files COPY … PARTITION_BY (date, hour) wrote under `dir`. */
function partitionFiles(dir: string): Array<{ date: string; hour: string; base: string; path: string }> {
  const out: Array<{ date: string; hour: string; base: string; path: string }> = [];
  for (const date of safeList(dir)) {
    for (const hour of safeList(join(dir, date))) {
      for (const base of safeList(join(dir, date, hour))) out.push({ date, hour, base, path: join(dir, date, hour, base) });
    }
  }
  return out;
}

function safeList(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}
