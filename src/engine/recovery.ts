/**
 * What the main thread restores at start-up, before any worker runs: the
 * series registry (from the store, then from the raw-log records no
 * checkpoint covers yet) and the de-duplication ids still inside
 * WEIR_DEDUPE_WINDOW: from the de-duplication index (src/storage/dedupe-index.ts)
 * up to the raw-log position it covers (its base used in place, the
 * deltas after it put back id by id), then from the log's records after
 * it. Without a usable index (none yet, torn, corrupt, past the log's
 * end) they come from every record of the window, as the log is kept at
 * least that long: slower, the same ids; the state is logged and counted.
 * The workers restore their own state from their checkpoints and replay
 * the log after them (src/partition/worker.ts).
 *
 * A store whose checkpoints were taken with other settings (partition
 * count, window specs, lateness) cannot be continued: its checkpoints are
 * dropped and the workers start empty at the log's end, with a warning.
 *
 * @example
 *   const r = recoverEngineState({ store, registry, dedupe, rawDir, rawEnd: log.end, checkpointConfig, dedupeWindowMs, log });
 *   r.floorPos // where replay starts for a partition without a checkpoint
 */
import { Decoder } from "@msgpack/msgpack";
import type { DedupeSet } from "../actors/dedupe.ts";
import { decodeIngestRecord, ingestRecordFormat, seriesInfoOf } from "../actors/ingest-record.ts";
import type { SeriesInfo, SeriesRegistry } from "../actors/series-registry.ts";
import type { Database } from "bun:sqlite";
import { loadCheckpoints, loadSeries } from "../actors/store.ts";
import type { Log } from "../runtime/log.ts";
import { partitionOf } from "../runtime/series.ts";
import { StoreError } from "../storage/db.ts";
import { type IndexState, readDedupeIndex } from "../storage/dedupe-index.ts";
import { rawLogPositionBefore, readRawLog } from "../storage/rawlog.ts";

export interface RecoveryInput {
  /** The store, read (and, after a settings change, cleared) before the store writer starts. */
  db: Database;
  /** Takes a series the raw log holds and the store does not: it is written with the next commit. */
  addSeries: (s: SeriesInfo) => void;
  registry: SeriesRegistry;
  dedupe: DedupeSet;
  rawDir: string;
  rawEnd: number;
  checkpointConfig: string;
  dedupeWindowMs: number;
  log: Log;
  nowMs?: number;
  /**
   * Cluster mode: the partitions start empty (each is taken from the shared
   * checkpoints when this process claims it), so local checkpoints are
   * dropped and the raw log is not read (the engine starts its partitions
   * after a mark record); series come back without their local ids.
   */
  cluster?: boolean;
}

export interface RecoveredState {
  /** The last record covered for partitions without a checkpoint: -1 (replay the whole log), or the log's last record after a settings change. */
  floorPos: number;
  checkpoints: number;
  seriesFromStore: number;
  seriesFromLog: number;
  idsFromLog: number;
  /** Ids taken from the de-duplication index (those still inside the window). */
  idsFromIndex: number;
  /** Of those, the ids of its base, used in place (no work per id): the rest were put back one by one. */
  idsInPlace: number;
  /** How the index read went; anything but "loaded" read more of the raw log ("missing", "corrupt" and "ahead" all of the window); "not used" in cluster mode. */
  dedupeIndex: IndexState | "not used";
  /** The raw-log position the index covered (0 without one): ids were read from the records after it. */
  dedupeIndexPos: number;
  recordsRead: number;
  /** How long this recovery took (ms): the store, the index and the raw log read. */
  ms: number;
}

export function recoverEngineState(x: RecoveryInput): RecoveredState {
  const t0 = performance.now();
  const out: RecoveredState = {
    floorPos: -1, checkpoints: 0, seriesFromStore: 0, seriesFromLog: 0, idsFromLog: 0, idsFromIndex: 0, idsInPlace: 0, dedupeIndex: "not used", dedupeIndexPos: 0, recordsRead: 0, ms: 0,
  };
  const partitions = x.registry.partitions;
  const rows = loadSeries(x.db);
  if (x.cluster === true) {
    x.db.exec("DELETE FROM checkpoints");
    for (const r of rows) if (r.partition === partitionOf(r.key, partitions)) x.registry.restoreUnordered(r);
    out.seriesFromStore = x.registry.size;
    out.ms = Math.round(performance.now() - t0);
    x.log.info("recovered (cluster mode: partitions start empty)", { ...out });
    return out;
  }
  const checkpoints = loadCheckpoints(x.db);
  for (const [p, c] of checkpoints) {
    if (c.pos < x.rawEnd) continue;
    // New records would take positions the checkpoint already claims, and replay would skip them.
    throw new StoreError(
      `store: partition ${p}'s checkpoint is at raw-log position ${c.pos} but the raw log ends at ${x.rawEnd}: ` +
      "the log lost its tail (a power loss under WEIR_DURABILITY=fast, or files removed); " +
      "stop weir and run 'bun run weir rebuild' to rebuild the store from what the log holds",
    );
  }
  const movedSeries = rows.some((r) => r.partition !== partitionOf(r.key, partitions));
  const otherSettings = [...checkpoints.values()].some((c) => c.config !== x.checkpointConfig);
  if (movedSeries || otherSettings) {
    x.log.warn("settings changed since the checkpoints were taken: open windows are dropped and the raw log is not replayed", {
      partitions, checkpointConfig: x.checkpointConfig,
    });
    if (movedSeries) x.db.exec("DELETE FROM series");
    x.db.exec("DELETE FROM checkpoints"); // their states no longer apply
    out.floorPos = lastRecordPosition(x.rawDir, x.rawEnd);
  }
  if (!movedSeries) for (const r of rows) x.registry.restore(r);
  out.seriesFromStore = x.registry.size;
  const remaining = out.floorPos >= 0 ? new Map() : checkpoints;
  out.checkpoints = remaining.size;
  // Series are needed from every record some partition replays; ids from every record inside the window.
  let seriesFrom = out.floorPos;
  if (out.floorPos < 0) {
    seriesFrom = Number.MAX_SAFE_INTEGER;
    for (let p = 0; p < partitions; p++) seriesFrom = Math.min(seriesFrom, checkpoints.get(p)?.pos ?? -1);
  }
  const idsFromMs = (x.nowMs ?? Date.now()) - x.dedupeWindowMs;
  const idsFromPos = restoreIndexedIds(x, idsFromMs, out);
  const dec = new Decoder();
  // Segments older than both needs are not read at all.
  const from = Math.min(Math.max(0, seriesFrom), idsFromPos);
  for (const rec of readRawLog(x.rawDir, from, x.rawEnd)) {
    const needSeries = rec.position > seriesFrom;
    const needIds = rec.position >= idsFromPos && rec.recvMs >= idsFromMs;
    if ((!needSeries && !needIds) || rec.format !== ingestRecordFormat) continue;
    out.recordsRead++;
    const r = decodeIngestRecord(dec, rec.payload);
    if (needSeries) {
      for (const row of r.s) {
        const info = seriesInfoOf(row);
        if (x.registry.idOf(info.key) !== undefined) continue;
        x.registry.restore(info);
        x.addSeries(info); // the crash came before a commit wrote it
        out.seriesFromLog++;
      }
    }
    if (needIds) for (const id of r.ids) x.dedupe.add(id, rec.recvMs);
    if (needIds) out.idsFromLog += r.ids.length;
  }
  out.ms = Math.round(performance.now() - t0);
  x.log.info("recovered", { ...out });
  return out;
}

/**
 * Adds the ids of the de-duplication index (those added at or after
 * `idsFromMs`) and returns the raw-log position from which the records'
 * ids are still to be read: the one the index covers, or without a usable
 * index the start of the segment holding the window's first record.
 */
function restoreIndexedIds(x: RecoveryInput, idsFromMs: number, out: RecoveredState): number {
  const windowFrom = rawLogPositionBefore(x.rawDir, idsFromMs);
  const r = readDedupeIndex(x.rawDir, x.rawEnd);
  out.dedupeIndex = r.state;
  if (r.state === "missing") x.log.info("no de-duplication index: ids are read from the raw log's whole window");
  else if (r.state !== "loaded") {
    x.log.warn(`de-duplication index ${r.state}: ${r.state === "torn" ? "its valid part is used and the raw log read after it" : "ids are read from the raw log's whole window"}`, {
      detail: r.detail, coveredPos: r.to,
    });
  }
  if (r.base === null && r.chunks.length === 0) return windowFrom;
  if (r.base !== null) out.idsInPlace = x.dedupe.attachBase(r.base, idsFromMs);
  out.idsFromIndex = out.idsInPlace;
  for (const c of r.chunks) out.idsFromIndex += x.dedupe.addEntries(c, idsFromMs);
  out.dedupeIndexPos = r.to;
  return Math.max(r.to, windowFrom);
}

/** The position of the last record before `end`, or -1 for an empty log. */
function lastRecordPosition(rawDir: string, end: number): number {
  let last = -1;
  for (const rec of readRawLog(rawDir, 0, end)) last = rec.position;
  return last;
}
