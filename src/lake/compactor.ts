/**
 * The raw zone as Parquet. Records not compacted yet (the open segment's,
 * and a closed one's until its turn) go to lake/tail/ as they arrive, in
 * chunks <segment>-<position>-<hour>.parquet (one file per event hour of a
 * pass's records, `hour` in hours since the epoch), so SQL sees an event
 * within one pass (WEIR_LAKE_INTERVAL) of its 202. A closed raw-log segment
 * (every one but the last) is compacted once into files by event hour,
 * lake/raw/date=YYYY-MM-DD/hour=HH/<segment>-data_0.parquet, each the
 * concatenation of that hour's tail chunks (DuckDB, Parquet to Parquet: the
 * raw log is decoded once, into the tail), and a marker
 * lake/.compacted/<segment> says so.
 *
 * The tail is written from the decoded records straight into DuckDB tables
 * (event-table.ts: columns through an appender, no text in between), and
 * its chunks are split by hour as they are written, so compaction copies
 * files whole instead of partitioning every row again (BENCHMARKS.md
 * "Lake": CPU per event of both stages).
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
import type { EventTable } from "./event-table.ts";
import { RawEvents, type SeriesLookup } from "./raw-events.ts";
import { eventColumns, lakePaths, sqlIdent, sqlString } from "./tables.ts";

/**
 * `duck`: the DuckDB connection, asked for only when there are rows to write
 * (lake.worker.ts opens DuckDB then). `tailChunkRowsMax`: limits.lakeTailChunkRowsMax
 * unless a test wants several chunks from a few events.
 */
export interface CompactorOptions { dataDir: string; duck: () => Promise<DuckDBConnection>; lookup: SeriesLookup; retentionMs: number; tailChunkRowsMax?: number }

/** `pending`: closed raw-log segments still not compacted after the pass (a lake that lags: lakeSegmentsPerPassMax a pass). */
export interface PassResult { compacted: number; tailEvents: number; hoursDeleted: number; pending: number }

const hourMs = 3_600_000;

/** A tail chunk's name: <segment>-<position>-<hour>[.<i>].parquet. */
const tailChunkName = /-(\d+)-(-?\d+)(?:\.(\d+))?\.parquet$/;

export class Compactor {
  private readonly rawLogDir: string;
  private readonly events: RawEvents;
  /** Where each uncompacted segment's tail chunks end. Rebuilt from scratch at start (the tail directory is wiped). */
  private readonly tailPos = new Map<number, number>();
  /** DuckDB's tables the tail is appended to, from the first event on (it loads DuckDB). */
  private table: EventTable | null = null;

  constructor(private readonly o: CompactorOptions) {
    this.rawLogDir = join(o.dataDir, "raw");
    this.events = new RawEvents(o.lookup);
    for (const f of safeList(lakePaths.tail(o.dataDir))) if (f !== "_empty.parquet") rmSync(join(lakePaths.tail(o.dataDir), f), { force: true });
    rmSync(lakePaths.staging(o.dataDir), { recursive: true, force: true });
    mkdirSync(lakePaths.compacted(o.dataDir), { recursive: true });
    mkdirSync(lakePaths.tail(o.dataDir), { recursive: true });
    mkdirSync(lakePaths.staging(o.dataDir), { recursive: true });
  }

  /** One pass: compacts up to lakeSegmentsPerPassMax closed segments, extends the tail, applies retention. */
  async pass(nowMs: number): Promise<PassResult> {
    const segs = existsSync(this.rawLogDir) ? listSegments(this.rawLogDir) : [];
    const done = new Set(safeList(lakePaths.compacted(this.o.dataDir)));
    const pending = segs.filter((s) => !done.has(segmentName(s)));
    let compacted = 0;
    let tailEvents = 0;
    for (const start of pending) {
      const next = segs[segs.indexOf(start) + 1];
      if (next === undefined || compacted >= limits.lakeSegmentsPerPassMax) break; // the open segment, or enough for one pass
      tailEvents += await this.compact(start, next);
      compacted++;
    }
    for (const start of pending.slice(compacted)) {
      const next = segs[segs.indexOf(start) + 1] ?? Number.POSITIVE_INFINITY;
      tailEvents += await this.extendTail(start, next);
    }
    this.forgetPruned(segs, done);
    return { compacted, tailEvents, hoursDeleted: this.applyRetention(nowMs), pending: Math.max(0, pending.length - compacted - 1) };
  }

  /** Deletes the markers of segments the raw log no longer has (pruned after compaction): one file per segment, not forever. */
  private forgetPruned(segs: number[], done: Set<string>): void {
    const names = new Set(segs.map(segmentName));
    for (const m of done) if (!names.has(m)) rmSync(join(lakePaths.compacted(this.o.dataDir), m), { force: true });
  }

  /**
   * Writes one closed segment's events as hour files (its tail chunks of each
   * hour, extended to its end first), then its marker; returns the events
   * that extension wrote.
   */
  private async compact(start: number, end: number): Promise<number> {
    const name = segmentName(start);
    const tailEvents = await this.extendTail(start, end);
    const byHour = new Map<number, string[]>();
    for (const c of this.tailChunks(start)) byHour.set(c.hour, [...(byHour.get(c.hour) ?? []), join(lakePaths.tail(this.o.dataDir), c.file)]);
    const parts = join(lakePaths.staging(this.o.dataDir), `${name}.parts`);
    rmSync(parts, { recursive: true, force: true });
    mkdirSync(parts, { recursive: true });
    const columns = eventColumns.map((c) => sqlIdent(c.name)).join(", ");
    for (const [hour, files] of byHour) {
      const conn = await this.o.duck();
      await conn.run(`COPY (SELECT ${columns} FROM read_parquet([${files.map(sqlString).join(", ")}])) TO ${sqlString(join(parts, `${hour}.parquet`))} (FORMAT parquet)`);
    }
    this.dropTail(start);
    for (const hour of byHour.keys()) {
      const iso = new Date(hour * hourMs).toISOString(); // YYYY-MM-DDTHH:…
      const dir = join(lakePaths.raw(this.o.dataDir), `date=${iso.slice(0, 10)}`, `hour=${iso.slice(11, 13)}`);
      mkdirSync(dir, { recursive: true });
      renameSync(join(parts, `${hour}.parquet`), join(dir, `${name}-data_0.parquet`));
    }
    rmSync(parts, { recursive: true, force: true });
    writeFileSync(join(lakePaths.compacted(this.o.dataDir), name), "");
    return tailEvents;
  }

  /**
   * Writes the segment's records from where its tail ended to `end` (or the
   * last whole record) as tail chunks: one per pass, or per
   * lakeTailChunkRowsMax events when a pass has more (bounds DuckDB's memory).
   */
  private async extendTail(start: number, end: number): Promise<number> {
    let from = this.tailPos.get(start) ?? start;
    let reached = from;
    let rows = 0;
    const write = async () => {
      if (this.table !== null && this.table.rows > 0) {
        rows += this.table.rows;
        await this.o.duck(); // lake.worker.ts lowers DuckDB's pool threads on each call
        const prefix = join(lakePaths.tail(this.o.dataDir), `${segmentName(start)}-${from}`);
        await this.table.write((hour, i) => `${prefix}-${hour}${i === 0 ? "" : `.${i}`}.parquet`, lakePaths.staging(this.o.dataDir));
      }
      this.tailPos.set(start, reached);
      from = reached;
    };
    try {
      try {
        for (const rec of readRawLog(this.rawLogDir, from, end)) {
          if (rec.format === ingestRecordFormat) this.events.decode(rec.payload, this.table ?? await this.openTable());
          reached = rec.next;
          if (this.table !== null && this.table.rows >= (this.o.tailChunkRowsMax ?? limits.lakeTailChunkRowsMax)) await write();
        }
      } catch (e) {
        // The open segment's last record may be mid-write: what came before it is whole, the rest waits.
        if (!(e instanceof RawLogError && /torn record/.test(e.message) && !Number.isFinite(end))) throw e;
      }
      await write();
    } catch (e) {
      await this.dropTable(); // what it held is read again from tailPos at the next pass
      throw e;
    }
    return rows;
  }

  private async openTable(): Promise<EventTable> {
    const { EventTable } = await import("./event-table.ts");
    this.table = await EventTable.open(await this.o.duck());
    return this.table;
  }

  private async dropTable(): Promise<void> {
    const t = this.table;
    this.table = null;
    this.events.forget(); // the series' indices named rows of the dropped table
    await t?.close().catch(() => {}); // the pass's own error is the one to report
  }

  /** The segment's tail chunks, in the order they were written. */
  private tailChunks(start: number): Array<{ file: string; pos: number; hour: number; i: number }> {
    const prefix = `${segmentName(start)}-`;
    const out: Array<{ file: string; pos: number; hour: number; i: number }> = [];
    for (const file of safeList(lakePaths.tail(this.o.dataDir))) {
      const m = file.startsWith(prefix) ? tailChunkName.exec(file) : null;
      if (m !== null) out.push({ file, pos: Number(m[1]), hour: Number(m[2]), i: Number(m[3] ?? 0) });
    }
    return out.sort((a, b) => a.pos - b.pos || a.i - b.i);
  }

  private dropTail(start: number): void {
    for (const c of this.tailChunks(start)) rmSync(join(lakePaths.tail(this.o.dataDir), c.file), { force: true });
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

/**
 * The start of the first raw-log segment the lake has not compacted (the
 * open one when every closed one is): what the raw log's retention must keep
 * (engine.holdRawLog). undefined when there is no raw log.
 */
export function lakeFloor(dataDir: string): number | undefined {
  const rawDir = join(dataDir, "raw");
  const segs = existsSync(rawDir) ? listSegments(rawDir) : [];
  const done = new Set(safeList(lakePaths.compacted(dataDir)));
  return segs.find((s) => !done.has(segmentName(s))) ?? segs.at(-1);
}

function safeList(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}
