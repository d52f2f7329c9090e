/**
 * The embedded engine: wires ingest → partition workers (rings) → store and
 * fanout, under a supervisor. One instance per process; the HTTP app and
 * the simulators talk to it.
 *
 * @example
 *   const engine = await Engine.start(loadConfig(), log);
 *   const out = engine.ingestBytes(body, "json"); // or throws
 *   await out.durable; // under WEIR_DURABILITY=durable: answer only after this
 *   await engine.stop();
 */
import { WeirError } from "./runtime/errors.ts";
import { Decoder, Encoder } from "@msgpack/msgpack";
import { fsyncSync } from "node:fs";
import { join } from "node:path";
import { DeadLetters } from "./actors/deadletters.ts";
import { DedupeSet } from "./actors/dedupe.ts";
import { Fanout } from "./actors/fanout.ts";
import {
  resultLabels, rollupsFor, type Rollup,
} from "./actors/partition-pipeline.ts";
import { Ingest, type IngestOutcome } from "./actors/ingest.ts";
import { anomalyRow, type AnomalyRow, type PartitionOutput, trendRow, type TrendRow, windowRow, type WindowRow } from "./actors/result-rows.ts";
import { decodeBody, formatCode, type BodyFormat } from "./actors/ingest-body.ts";
import { encodeIngestRecord, ingestRecordFormat, seriesRowOf } from "./actors/ingest-record.ts";
import { SeriesRegistry } from "./actors/series-registry.ts";
import { type AnomalyRecord, checkpointPositions, type CommitJob, loadCheckpoints, StagedResults, type WindowRecord } from "./actors/store.ts";
import type { Config } from "./config.ts";
import type { CheckpointMessage, OutputMessage as RingOutputMessage } from "./runtime/codec.ts";
import { CrashPoints } from "./runtime/crash-points.ts";
import { IngestClock } from "./runtime/ingest-clock.ts";
import { limits } from "./runtime/limits.ts";
import type { Log } from "./runtime/log.ts";
import { createEngineMetrics, type EngineMetrics } from "./engine-metrics.ts";
import { partitionOf } from "./runtime/series.ts";
import { Ring } from "./runtime/ring.ts";
import { partitionStatSlots } from "./partition/worker-stats.ts";
import type { PartitionData } from "./partition/partition-loop.ts";
import { Supervisor } from "./runtime/supervisor.ts";
import type { Database } from "bun:sqlite";
import { openStore } from "./storage/db.ts";
import { StoreWriter } from "./storage/store-writer.ts";
import { DiskGuard } from "./storage/disk-guard.ts";
import { RawLog } from "./storage/rawlog.ts";
import { recoverEngineState, type RecoveredState } from "./engine-recovery.ts";

export const version = "0.1.0";

/** A partition worker's output message: its result rows (partition-pipeline.ts) on the ring envelope. */
type OutputMessage = RingOutputMessage<PartitionOutput>;

/** Nothing of the request was accepted; answer 429/503 with Retry-After. */
export class OverloadedError extends WeirError {
  override name = "OverloadedError";
  constructor(message: string, readonly status: 429 | 503 = 503, readonly retryAfterSeconds: number = limits.retryAfterSeconds) {
    super("overloaded", message);
  }
}
/** A partition could not recover at start-up; the message says which and why. */
export class EngineStartError extends WeirError {
  override name = "EngineStartError";
  constructor(message: string) {
    super("start_failed", message);
  }
}
export class TooLargeError extends WeirError {
  override name = "TooLargeError";
  constructor(message: string) {
    super("too_large", message);
  }
}

/**
 * What ingest answers. Under WEIR_DURABILITY=durable, `durable` settles when
 * the request's record is fsynced together with the others of its group
 * (group commit): answer 202 only then; it rejects with an OverloadedError
 * (503) if the sync failed, and then nothing of the request was kept.
 */
export type EngineOutcome = IngestOutcome & { durable?: Promise<void> };

/** A request of the pending group commit: written to the raw log, not yet synced, pushed or answered. */
interface GroupEntry {
  /** None for a request of duplicates only, which waits for the group's verdict on their first copies. */
  batches: Array<[number, Uint8Array]>;
  outcome: IngestOutcome;
  recvMs: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

export interface TrendView { ts: number; slope: number; r2: number; n: number; change: number; level: number; class: string }
export interface AnomalyView { ts: number; value: number; z: number; mean: number; std: number; severity: string; source: string }

interface Partition {
  id: number; inRing: Ring; outRing: Ring; stats: BigInt64Array;
  /** The worker incarnation whose output is current; a dead one's leftovers on the ring are dropped. */
  epoch: number;
  /** The checkpoint being received: its bytes (sized by its first chunk, at most limits.checkpointBytesMax), chunks and bytes so far. */
  ck: Uint8Array | null; ckChunks: number; ckBytes: number;
  /** A checkpoint received and not yet sent to the store writer (one is in flight, at most one waits). */
  unwritten: { pos: number; state: Uint8Array } | null;
  /**
   * The commit on the store writer: its job (retried as it is until it is
   * written: its rows are exactly those up to its checkpoint), its
   * checkpoint (a restarted worker starts from it), and the keys of the
   * live results it covers.
   */
  inflight: { job: CommitJob; ck: { pos: number; state: Uint8Array }; liveSent: Set<string> } | null;
  /** Where replay starts when the store has no checkpoint for the partition: -1, or the log end after a config change. */
  floorPos: number;
  /**
   * Keys of the results pushed live since the last committed checkpoint. A
   * restarted worker replays from that checkpoint and computes them again:
   * they are stored, not pushed a second time. Bounded by liveSentMax.
   */
  liveSent: Set<string>;
}

/** A partition's uncommitted live results remembered at most (a checkpoint comes every checkpointRowsMax rows). */
const liveSentMax = limits.checkpointRowsMax * 4;

export class Engine {
  readonly registry: SeriesRegistry;
  readonly fanout: Fanout;
  readonly metrics: EngineMetrics;
  readonly supervisor: Supervisor;
  /** The latest trend of each series (bounded by the series count), for /api/v1/trends and the series listing. */
  readonly latestTrends = new Map<string, TrendView>();
  /** The latest anomaly of each series while it is open, for the series listing. */
  readonly openAnomalies = new Map<string, AnomalyView>();
  /** The newest rejected and late events (limits.deadlettersMax). */
  readonly deadletters = new DeadLetters(limits.deadlettersMax, (id, ts, value) => {
    const info = this.registry.info(id);
    return { name: info.name, tags: info.tags, ts, value };
  });
  private readonly ingest: Ingest;
  readonly dedupe: DedupeSet;
  /** The main thread's connection: start-up recovery and reads of checkpoints; the store writer thread does every write after. */
  private readonly db: Database;
  private readonly staged: StagedResults;
  private writer: StoreWriter | null = null;
  private readonly rawLog: RawLog;
  private readonly disk: DiskGuard;
  private readonly crash: CrashPoints;
  private readonly recordEnc = new Encoder();
  /** Receive times, shared with the workers: their quiet rule never passes a request still being admitted. */
  private readonly clock = IngestClock.create();
  /** Identifies the settings a checkpoint was taken with: a state restores only under the same ones. */
  private readonly checkpointConfig: string;
  private readonly partitions: Partition[];
  private readonly enc = new Encoder();
  private readonly timers: Array<ReturnType<typeof setInterval>> = [];
  private stopping = false;
  /** Set once the workers are stopped: the output drains end. */
  private drainsDone = false;
  /** What start-up recovered from the store and the raw log (for /metrics and the logs). */
  recovered: RecoveredState | null = null;
  /** Durable profile: requests appended since the last fsync, answered together after one (group commit). */
  private readonly group: GroupEntry[] = [];
  /** Per partition, the byte lengths of the group's batches, in push order (for the room check). */
  private readonly groupLengths: number[][];
  private groupFrom = -1;
  private groupDedupeMark = 0;
  private groupScheduled = false;
  /** Partitions past their restart budget: requests with events for them get 503. */
  private readonly failed = new Set<string>();
  /** Result labels by spec index: the configured specs, then the rollups. */
  readonly labels: string[];
  private readonly rollups: Rollup[];
  private storeError: string | null = null;
  private drains: Promise<void>[] = [];

  private constructor(readonly cfg: Config, readonly log: Log) {
    this.crash = new CrashPoints(cfg.crashAt);
    this.db = openStore(join(cfg.dataDir, "weir.db"));
    this.staged = new StagedResults(cfg.partitions);
    this.registry = new SeriesRegistry(cfg.partitions, cfg.maxSeries, (s) => this.staged.addSeries(s));
    this.rawLog = new RawLog(join(cfg.dataDir, "raw"), {
      profile: cfg.durability,
      segmentMs: cfg.rawSegmentMs,
      fsync: (fd) => this.fsync(fd),
      onRepair: (r) => log.warn("raw log: torn tail cut (a record never acknowledged)", r),
    });
    this.disk = new DiskGuard(cfg.dataDir, { reserveBytes: cfg.diskReserveBytes, checkIntervalMs: limits.diskCheckMs });
    this.dedupe = new DedupeSet(cfg.dedupeWindowMs);
    this.checkpointConfig = JSON.stringify({ partitions: cfg.partitions, windows: cfg.windowsText, latenessMs: cfg.latenessMs });
    this.ingest = new Ingest({ partitions: cfg.partitions, registry: this.registry, bounds: cfg, dedupe: this.dedupe });
    this.rollups = rollupsFor(cfg.windows);
    this.labels = resultLabels(cfg.windows, this.rollups);
    this.fanout = new Fanout({ windows: cfg.windows.map((w) => w.label), rollups: this.rollups.map((r) => r.label), version });
    this.supervisor = new Supervisor({ log: (level, msg, fields) => log[level](msg, fields) });
    this.partitions = Array.from({ length: cfg.partitions }, (_, id) => ({
      id,
      inRing: Ring.create(cfg.ringBytes),
      outRing: Ring.create(limits.outRingBytesDefault),
      stats: new BigInt64Array(new SharedArrayBuffer(8 * partitionStatSlots.count)),
      epoch: 0, ck: null, ckChunks: 0, ckBytes: 0, unwritten: null, inflight: null, floorPos: -1, liveSent: new Set<string>(),
    }));
    this.groupLengths = this.partitions.map(() => []);
    this.metrics = createEngineMetrics(this);
    this.fanout.onDelivered = (ms) => this.metrics.e2eLatency.observe(ms / 1000);
  }

  static async start(cfg: Config, log: Log): Promise<Engine> {
    const e = new Engine(cfg, log);
    try {
      e.recovered = recoverEngineState({
        db: e.db, addSeries: (s) => e.staged.addSeries(s), registry: e.registry, dedupe: e.dedupe, rawDir: join(cfg.dataDir, "raw"),
        rawEnd: e.rawLog.end, checkpointConfig: e.checkpointConfig, dedupeWindowMs: cfg.dedupeWindowMs, log,
      });
      e.writer = await StoreWriter.start(join(cfg.dataDir, "weir.db"), cfg.crashAt);
    } catch (err) {
      e.rawLog.close();
      e.db.close();
      throw err;
    }
    for (const p of e.partitions) p.floorPos = e.recovered.floorPos;
    e.supervisor.onEvent((ev) => {
      if (ev.type === "failed") e.failed.add(ev.id);
    });
    for (const p of e.partitions) e.startPartition(p);
    e.drains = e.partitions.map((p) => e.drainOutput(p));
    e.timers.push(setInterval(() => e.flushStore(), limits.storeFlushMs));
    e.timers.push(setInterval(() => e.pruneRawLog(), limits.storePruneMs));
    e.timers.push(setInterval(() => e.prune(), limits.storePruneMs));
    e.timers.push(setInterval(() => e.publishStats(), limits.statsIntervalMs));
    e.timers.push(setInterval(() => e.fanout.flush(), fanoutTickMs));
    await e.waitRunning(limits.recoveryTimeoutMs);
    return e;
  }

  /**
   * Decodes, validates and makes durable one request body, received now (the
   * engine stamps it: see IngestClock). Throws BodyError, TooLargeError or
   * OverloadedError.
   */
  ingestBytes(bytes: Uint8Array, format: BodyFormat): EngineOutcome {
    const items = decodeBody(bytes, format);
    if (items.length > limits.eventsPerRequestMax) throw new TooLargeError(`body: over ${limits.eventsPerRequestMax} events`);
    return this.ingestItems(items, formatCode[format], bytes);
  }

  /** The simulators' entry: the same path, logged as JSON. */
  ingestEvents(events: readonly object[]): EngineOutcome {
    return this.ingestItems(events, formatCode.json, new TextEncoder().encode(JSON.stringify(events)));
  }

  /** Windows published but not yet committed that pass `keep` (StagedResults.stagedWindows); with `series`, only its partition is read. */
  uncommittedWindows(keep: (r: WindowRecord) => boolean, series?: string): WindowRecord[] {
    return this.staged.stagedWindows(keep, series === undefined ? undefined : partitionOf(series, this.cfg.partitions));
  }

  /** Anomalies published but not yet committed that pass `keep` (StagedResults.stagedAnomalies). */
  uncommittedAnomalies(keep: (a: AnomalyRecord) => boolean, series?: string): AnomalyRecord[] {
    return this.staged.stagedAnomalies(keep, series === undefined ? undefined : partitionOf(series, this.cfg.partitions));
  }

  /** Partitions and store, for /ready: an empty list means ready. */
  notReady(): string[] {
    const out: string[] = [];
    for (const s of this.supervisor.status()) if (s.state !== "running") out.push(`${s.id} is ${s.state}`);
    if (this.storeError) out.push(`store: ${this.storeError}`);
    const disk = this.disk.check();
    if (!disk.ok) out.push(disk.message);
    if (this.stopping) out.push("shutting down");
    return out;
  }

  /** Events the partition's worker has aggregated since start. */
  processedEvents(partition: number): number {
    return Number(Atomics.load(this.partitions[partition].stats, partitionStatSlots.events));
  }

  /**
   * Pushes an already validated columnar batch (codec.encodeEventBatch, ids
   * from the registry) to a partition, bypassing body parsing; false when its
   * ring is full. For producers that hold batches already: the benches.
   */
  pushBatch(partition: number, bytes: Uint8Array): boolean {
    return this.partitions[partition].inRing.tryPush(bytes);
  }

  queueDepthBytes(partition: number): number {
    return this.partitions[partition].inRing.usedBytes();
  }

  /** fsync(2) calls on the raw log since start (durable profile: about one per group of requests). */
  rawLogSyncs = 0;
  private fsyncFault: Error | null = null;

  private fsync(fd: number): void {
    this.rawLogSyncs++;
    const fault = this.fsyncFault;
    this.fsyncFault = null;
    if (fault !== null) throw fault;
    fsyncSync(fd);
  }

  /** Failpoint (WEIR_FAILPOINTS=1): the store writer blocks before its next job until the returned function is called. */
  holdStoreWriter(): () => void {
    if (!this.cfg.failpoints) throw new Error("holdStoreWriter needs WEIR_FAILPOINTS=1");
    return this.writer!.hold();
  }

  /** Whether a commit of the partition is on the store writer, not yet answered. */
  commitInFlight(partition: number): boolean {
    return this.partitions[partition].inflight !== null;
  }

  /** Failpoint (WEIR_FAILPOINTS=1): the next raw-log fsync fails with EIO. */
  failNextFsync(): void {
    if (!this.cfg.failpoints) throw new Error("failNextFsync needs WEIR_FAILPOINTS=1");
    this.fsyncFault = Object.assign(new Error("EIO: i/o error, fsync (failpoint)"), { code: "EIO" });
  }

  /** Events replayed from the raw log by the partition's workers since start. */
  replayedEvents(partition: number): number {
    return Number(Atomics.load(this.partitions[partition].stats, partitionStatSlots.replayed));
  }

  /** Checkpoints the partition's workers have taken since start. */
  checkpointsTaken(partition: number): number {
    return Number(Atomics.load(this.partitions[partition].stats, partitionStatSlots.checkpoints));
  }

  /**
   * Stops intake (503), lets the workers drain their rings and commit a
   * final checkpoint, commits it, closes the store: the next start replays
   * nothing.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.commitGroup(); // the requests already written are answered before the workers drain
    await this.supervisor.stop(); // the output drains keep running: a final checkpoint needs ring room
    this.drainsDone = true;
    await Promise.all(this.drains);
    for (const p of this.partitions) this.handleOutput(p, true);
    await this.settleCommits();
    for (const t of this.timers) clearInterval(t);
    await this.writer!.writeSeries(this.staged.takeSeries()).catch((e: Error) => this.log.error("store: series not written at stop", { error: e.message }));
    this.fanout.flush(Number.MAX_SAFE_INTEGER);
    this.rawLog.close();
    await this.writer!.close();
    this.db.close();
  }

  /** At stop: every partition's last checkpoint sent and answered (a failure now is not retried: the next start replays). */
  private async settleCommits(): Promise<void> {
    const deadline = Date.now() + limits.storeStopTimeoutMs;
    for (;;) {
      for (const p of this.partitions) this.commitCheckpoint(p);
      if (this.partitions.every((p) => p.inflight === null && (p.unwritten === null || this.storeError !== null))) return;
      if (Date.now() > deadline) {
        this.log.error("store: commits still unanswered at stop; the next start replays them", { timeoutMs: limits.storeStopTimeoutMs });
        return;
      }
      await Bun.sleep(5);
    }
  }

  /**
   * All-or-nothing: validate, check ring room and disk, append the request's
   * record to the raw log, then push its batches and commit its side effects.
   * Anything thrown before the append leaves no trace; the 202 follows.
   */
  private ingestItems(items: readonly unknown[], format: number, raw: Uint8Array): EngineOutcome {
    if (this.stopping) throw new OverloadedError("shutting down", 503);
    const recvMs = this.clock.stamp();
    try {
      return this.admit(items, recvMs, format, raw);
    } finally {
      // A pending group keeps the clock held at its first request until commitGroup pushes it.
      if (this.group.length === 0) this.clock.idle();
    }
  }

  private admit(items: readonly unknown[], recvMs: number, format: number, raw: Uint8Array): EngineOutcome {
    const disk = this.disk.check();
    if (!disk.ok) {
      this.metrics.overloaded.inc();
      throw new OverloadedError(disk.message, 503, limits.diskRetryAfterSeconds);
    }
    const outcome = this.ingest.accept(items, recvMs);
    const grouped = this.cfg.durability === "durable";
    if (outcome.accepted === outcome.duplicates) {
      // The first copy may be in the pending group: this answer must not come before that one's.
      if (grouped && this.group.length > 0) return { ...outcome, durable: this.joinGroup({ batches: [], outcome, recvMs }) };
      this.answered(outcome, recvMs);
      return outcome; // nothing new to log or aggregate
    }
    for (const p of this.partitions) {
      if (this.ingest.eventsFor(p.id) === 0) continue;
      if (this.failed.has(`partition-${p.id}`)) throw new OverloadedError(`partition ${p.id} failed`, 503, 30);
      const lengths = this.ingest.messageBytes(p.id);
      if (!p.inRing.canPushAll(grouped ? [...this.groupLengths[p.id], ...lengths] : lengths)) {
        this.metrics.overloaded.inc();
        throw new OverloadedError(`partition ${p.id} queue full`, 503);
      }
    }
    const pos = this.rawLog.end;
    const batches: Array<[number, Uint8Array]> = [];
    for (const p of this.partitions) {
      // A copy per message: the encoder's buffer is shared, and the record and the ring both take these bytes.
      for (const m of this.ingest.encode(p.id, this.enc, pos)) batches.push([p.id, m.slice()]);
    }
    const record = encodeIngestRecord(this.recordEnc, {
      f: format, raw, s: this.ingest.introducedSeries.map(seriesRowOf), ids: [...this.ingest.committedIds], b: batches,
    });
    if (grouped && this.group.length === 0) {
      this.groupFrom = pos;
      this.groupDedupeMark = this.dedupe.mark();
    }
    try {
      // Never synced here: `fast` does not sync, `durable` syncs once for the group (commitGroup).
      if (this.rawLog.append(ingestRecordFormat, recvMs, record, false) !== pos) throw new Error("raw log moved under ingest"); // programmer error
    } catch (e) {
      this.log.error("raw log append failed", { error: (e as Error).message });
      this.metrics.overloaded.inc();
      throw new OverloadedError(`raw log not writable: ${(e as Error).message}`, 503, limits.diskRetryAfterSeconds);
    }
    this.crash.reach("ingest.after-log");
    if (grouped) {
      this.ingest.commit(); // series and ids at once: the next request must see them
      for (const [p, m] of batches) this.groupLengths[p].push(m.byteLength);
      return { ...outcome, durable: this.joinGroup({ batches, outcome, recvMs }) };
    }
    for (const [p, m] of batches) {
      if (!this.partitions[p].inRing.tryPush(m)) throw new Error("ring refused a message it had room for"); // programmer error
    }
    this.ingest.commit();
    this.metrics.ingested.inc(outcome.accepted - outcome.duplicates);
    this.answered(outcome, recvMs);
    return outcome;
  }

  /** Adds a request to the pending group commit; resolves once the group is synced and the request's batches are on their rings. */
  private joinGroup(entry: Omit<GroupEntry, "resolve" | "reject">): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.group.push({ ...entry, resolve, reject }));
    if (this.group.length >= limits.groupCommitRequestsMax) this.commitGroup();
    else if (!this.groupScheduled) {
      this.groupScheduled = true;
      setImmediate(() => this.commitGroup()); // after the requests this turn of the event loop brings
    }
    return done;
  }

  /**
   * One fsync for every request of the group, then their batches go to the
   * rings in log order and they are answered. A failed sync cuts their
   * records off the log and forgets their ids: each gets a 503, nothing of
   * it kept (the series they introduced stay registered).
   */
  private commitGroup(): void {
    this.groupScheduled = false;
    if (this.group.length === 0) return;
    const entries = this.group.splice(0);
    for (const l of this.groupLengths) l.length = 0;
    try {
      this.syncGroup(entries);
    } finally {
      this.clock.idle(); // the group's batches are on their rings, or it was refused
    }
  }

  private syncGroup(entries: GroupEntry[]): void {
    try {
      this.rawLog.sync(this.groupFrom);
    } catch (e) {
      this.dedupe.rollbackTo(this.groupDedupeMark);
      this.metrics.overloaded.inc(entries.length);
      this.log.error("raw log fsync failed; the group's requests are refused", { requests: entries.length, error: (e as Error).message });
      const err = new OverloadedError(`raw log not durable: ${(e as Error).message}`, 503, limits.diskRetryAfterSeconds);
      for (const g of entries) g.reject(err);
      return;
    }
    for (const g of entries) {
      for (const [p, m] of g.batches) {
        if (!this.partitions[p].inRing.tryPush(m)) throw new Error("ring refused a message it had reserved room for"); // programmer error
      }
      if (g.batches.length > 0) this.metrics.ingested.inc(g.outcome.accepted - g.outcome.duplicates);
      this.answered(g.outcome, g.recvMs);
      g.resolve();
    }
  }

  /** Counts and dead-letters what a request that is being answered (202 or 400) refused or found re-sent. */
  private answered(outcome: IngestOutcome, recvMs: number): void {
    this.metrics.duplicate.inc(outcome.duplicates);
    this.metrics.countRejects(outcome);
    for (const r of outcome.rejects) this.deadletters.addRejected(recvMs, r.error, boundedEvent(r.event));
  }

  private startPartition(p: Partition): void {
    const cfg = this.cfg;
    this.supervisor.start({
      id: `partition-${p.id}`,
      script: new URL("./partition/worker.ts", import.meta.url),
      data: () => this.workerData(p),
    });
  }

  /**
   * What a new incarnation of a partition's worker starts from: the last
   * committed checkpoint and the raw log after it. Whatever the previous
   * incarnation staged or left on the output ring is dropped: replay
   * recomputes it.
   */
  private workerData(p: Partition): PartitionData {
    p.epoch++;
    Atomics.store(p.stats, partitionStatSlots.owner, BigInt(p.epoch)); // the previous incarnation stops consuming
    this.staged.discard(p.id); // a commit in flight is not: the new worker starts from its checkpoint
    p.ck = null;
    p.ckChunks = 0;
    p.ckBytes = 0;
    p.unwritten = null;
    const ck = p.inflight?.ck ?? loadCheckpoints(this.db).get(p.id);
    const cfg = this.cfg;
    return {
      partition: p.id, inSab: p.inRing.sab, outSab: p.outRing.sab, statsSab: p.stats.buffer as SharedArrayBuffer, specs: cfg.windows, rollups: this.rollups,
      latenessMs: cfg.latenessMs, seriesMax: cfg.maxSeries, faults: cfg.failpoints, epoch: p.epoch,
      checkpoint: ck?.state ?? null, checkpointPos: ck?.pos ?? p.floorPos,
      // Records of a pending group commit are not durable yet: they reach the new worker on the ring, or never.
      replayTo: this.group.length > 0 ? this.groupFrom : this.rawLog.end, rawDir: join(cfg.dataDir, "raw"),
      checkpointIntervalMs: cfg.checkpointIntervalMs, checkpointRowsMax: limits.checkpointRowsMax,
      heapBytesMax: cfg.workerHeapBytesMax, clockSab: this.clock.sab,
    };
  }

  private async drainOutput(p: Partition): Promise<void> {
    while (!this.drainsDone) {
      // Staging is bounded by the worker: it checkpoints after limits.checkpointRowsMax rows, at the next
      // record boundary. Waiting here for room before its checkpoint arrived would deadlock; only a commit
      // that failed (disk full, I/O) stops the drain, and the worker then stops at its full output ring.
      if (p.unwritten !== null) {
        await Bun.sleep(limits.storeFlushMs);
        this.commitCheckpoint(p);
        continue;
      }
      if (!this.handleOutput(p, false)) await p.outRing.waitForDataAsync(limits.workerTickMs);
      else await new Promise((r) => setImmediate(r)); // a turn for ingest and reads between rounds of a burst
    }
  }

  private readonly outScratch = new Uint8Array(limits.ringMessageBytesMax);
  private readonly dec = new Decoder();

  /** Handles the output messages waiting on a partition's ring; false when there were none. */
  private handleOutput(p: Partition, all: boolean): boolean {
    let any = false;
    for (let i = 0; all || i < limits.outMessagesPerTurnMax; i++) {
      const len = p.outRing.popInto(this.outScratch);
      if (len < 0) break;
      any = true;
      const m = this.dec.decode(this.outScratch.subarray(0, len)) as OutputMessage | CheckpointMessage;
      if (m.e !== p.epoch) continue; // left by a dead incarnation: its replacement recomputes it
      if (m.k === "ck") {
        this.onCheckpointChunk(p, m);
        continue;
      }
      for (const row of m.w) this.publishWindow(p.id, row);
      for (const row of m.a) this.publishAnomaly(p.id, row);
      for (const row of m.t) this.publishTrend(p.id, row);
      this.metrics.late.inc(m.late.length);
      const now = Date.now();
      for (const [sid, ts, value] of m.late) this.deadletters.addLate(now, this.registry.idAt(p.id, sid), ts, value);
    }
    if (any) this.fanout.flush(); // clients not inside their throttle get results now, not at the next tick
    return any;
  }

  private publishWindow(partition: number, row: WindowRow): void {
    const { sid, spec, start, end, count, sum, min, max, p50, p95, p99, first, last, closedMs } = windowRow.decode(row);
    const series = this.registry.keyOf(partition, sid);
    const window = this.labels[spec];
    const r: WindowRecord = { series, window, start, end, count, sum, min, max, avg: sum / count, p50, p95, p99, first, last };
    this.staged.addWindow(partition, r);
    if (!this.firstLive(partition, `w|${window}|${series}|${start}`)) return;
    this.metrics.windowsEmitted.inc();
    // A window result is final: two windows of a series are two points, so only repeats of one window conflate.
    this.fanout.publish("windows", window, series, { type: "window", ...r }, closedMs, `${series}|${start}`);
  }

  private publishAnomaly(partition: number, row: AnomalyRow): void {
    const { sid, ts, value, z, mean, std, severity, source, baselineN, baselineFromTs, closedMs } = anomalyRow.decode(row);
    const series = this.registry.keyOf(partition, sid);
    const view: AnomalyView = { ts, value, z, mean, std, severity, source };
    this.openAnomalies.set(series, view);
    this.staged.addAnomaly(partition, { series, ts, value, z, mean, std, severity, source, baseline_n: baselineN, baseline_from: baselineFromTs });
    if (!this.firstLive(partition, `a|${series}|${ts}`)) return;
    const msg = { series, ...view, baselineN, baselineFromTs };
    this.fanout.publish("anomalies", undefined, series, { type: "anomaly", ...msg }, closedMs, `${series}|${ts}`);
    this.fanout.publish("alerts", undefined, series, { type: "alert", kind: "anomaly", ...msg }, closedMs, `${series}|${ts}`);
  }

  private publishTrend(partition: number, row: TrendRow): void {
    const { sid, end, slope, r2, n, change, level, class: cls } = trendRow.decode(row);
    const series = this.registry.keyOf(partition, sid);
    const view: TrendView = { ts: end, slope, r2, n, change, level, class: cls };
    this.latestTrends.set(series, view);
    this.staged.setTrend(partition, { series, ...view });
    if (!this.firstLive(partition, `t|${series}|${end}`)) return;
    this.fanout.publish("trends", undefined, series, { type: "trend", series, ...view }, 0, series);
  }

  /** Whether a result is pushed live now: not when a replay after a worker restart computes it again. */
  private firstLive(partition: number, key: string): boolean {
    const p = this.partitions[partition];
    const sent = p.liveSent;
    if (sent.has(key) || p.inflight?.liveSent.has(key)) return false;
    if (sent.size >= liveSentMax) sent.clear(); // no checkpoint for that long: a repeat is then possible, a leak is not
    sent.add(key);
    return true;
  }

  private lastStats = { atMs: Date.now(), ingested: 0, windows: 0 };

  /** The `stats` topic: engine figures each second (rates over the last interval, totals since start). */
  private publishStats(nowMs = Date.now()): void {
    const m = this.metrics;
    const ingested = m.ingested.get();
    const windows = m.windowsEmitted.get();
    const seconds = Math.max(0.001, (nowMs - this.lastStats.atMs) / 1000);
    const msg = {
      type: "stats", ts: nowMs,
      eventsPerSec: (ingested - this.lastStats.ingested) / seconds,
      windowsPerSec: (windows - this.lastStats.windows) / seconds,
      queueDepthBytes: this.partitions.map((p) => p.inRing.usedBytes()),
      ingested, windows, late: m.late.get(), duplicates: m.duplicate.get(),
      rejected: m.rejected.total(), series: this.registry.size, clients: this.fanout.size,
      rssBytes: process.memoryUsage.rss(),
    };
    this.lastStats = { atMs: nowMs, ingested, windows };
    this.fanout.publish("stats", undefined, "", msg, 0, "stats");
  }

  /** Applies the retention of each resolution (WEIR_RETENTION_*), on the store writer thread; resolves to the rows deleted. */
  async prune(nowMs = Date.now()): Promise<number> {
    const r = this.cfg.retentionMs;
    const byLabel: Record<string, number> = {};
    for (const x of this.rollups) byLabel[x.label] = r[x.label as "1m" | "1h"];
    for (const w of this.cfg.windows) byLabel[w.label] = r.windows;
    try {
      return await this.writer!.prune(nowMs, byLabel, r["1m"]);
    } catch (e) {
      this.log.error("store prune failed", { error: (e as Error).message });
      return 0;
    }
  }

  /**
   * Collects a checkpoint's chunks into one buffer of its announced size (one
   * copy out of the ring's scratch: a 50,000-series partition's state is ~25 MB); the last
   * chunk commits it with the partition's staged results.
   */
  private onCheckpointChunk(p: Partition, m: CheckpointMessage): void {
    if (m.i !== p.ckChunks) throw new Error(`checkpoint chunk ${m.i} after ${p.ckChunks}`); // programmer error
    if (m.i === 0) {
      if (m.total > limits.checkpointBytesMax) throw new Error(`partition ${p.id}: checkpoint over ${limits.checkpointBytesMax} bytes`);
      p.ck = new Uint8Array(m.total);
      p.ckBytes = 0;
    }
    if (p.ckBytes + m.bytes.byteLength > p.ck!.byteLength) throw new Error(`partition ${p.id}: checkpoint chunks over their total`); // programmer error
    p.ck!.set(m.bytes, p.ckBytes); // the decoder's bytes are a view of the scratch buffer
    p.ckBytes += m.bytes.byteLength;
    p.ckChunks++;
    if (m.i + 1 < m.n) return;
    if (p.ckBytes !== p.ck!.byteLength) throw new Error(`partition ${p.id}: checkpoint of ${p.ckBytes} bytes, announced ${p.ck!.byteLength}`);
    p.unwritten = { pos: m.pos, state: p.ck! };
    p.ck = null;
    p.ckChunks = 0;
    this.commitCheckpoint(p);
  }

  /**
   * Sends a partition's waiting checkpoint, with its staged results, to the
   * store writer, unless one of its commits is in flight (then it waits for
   * that one).
   */
  private commitCheckpoint(p: Partition): void {
    const ck = p.unwritten;
    if (ck === null || p.inflight !== null) return;
    p.unwritten = null;
    const job = this.staged.take(p.id, { pos: ck.pos, state: ck.state, config: this.checkpointConfig });
    p.inflight = { job, ck, liveSent: p.liveSent };
    p.liveSent = new Set();
    this.sendCommit(p);
  }

  /** One try of the partition's commit in flight; a failure (disk full, I/O) tries the same job again, until stop. */
  private sendCommit(p: Partition): void {
    const f = p.inflight!;
    this.writer!.commit(f.job).then(() => {
      this.staged.settle(p.id);
      p.inflight = null; // its live results are committed: no replay computes them again
      this.storeError = null;
      this.commitCheckpoint(p); // one that waited goes now
    }, (e: Error) => {
      // Retried every storeFlushMs: said once per cause, not at every try.
      if (this.storeError !== e.message) this.log.error("checkpoint commit failed; retrying", { partition: p.id, error: e.message });
      this.storeError = e.message;
      if (this.stopping) {
        p.inflight = null;
        return;
      }
      setTimeout(() => this.sendCommit(p), limits.storeFlushMs);
    });
  }

  /** A series write on the store writer: at most one in flight, so a slow writer never piles up jobs. */
  private seriesWriting = false;

  private flushStore(): void {
    for (const p of this.partitions) this.commitCheckpoint(p);
    if (this.seriesWriting) return;
    const series = this.staged.takeSeries();
    if (series.length === 0) return;
    this.seriesWriting = true;
    this.writer!.writeSeries(series).catch((e: Error) => {
      this.staged.restoreSeries(series);
      if (this.storeError !== e.message) this.log.error("store flush failed", { error: e.message });
      this.storeError = e.message;
    }).finally(() => {
      this.seriesWriting = false;
    });
  }

  /** Deletes raw-log segments past WEIR_RETENTION_RAW that no partition's replay needs. */
  private pruneRawLog(nowMs = Date.now()): void {
    const cks = checkpointPositions(this.db);
    let keepFrom = Number.MAX_SAFE_INTEGER;
    // Replay re-reads the record at a checkpoint's position (and skips it): its segment stays.
    for (const p of this.partitions) keepFrom = Math.min(keepFrom, cks.get(p.id) ?? p.floorPos);
    try {
      const n = this.rawLog.prune({ olderThanMs: nowMs - this.cfg.rawRetentionMs, keepFrom: Math.max(0, keepFrom) });
      if (n > 0) this.log.info("raw log segments pruned", { segments: n });
    } catch (e) {
      this.log.error("raw log prune failed", { error: (e as Error).message });
    }
  }

  /**
   * Waits until every partition has recovered and runs. A partition that
   * fails during recovery (a damaged log, a checkpoint that does not
   * restore) would fail again on every retry: start-up stops and says why.
   */
  private async waitRunning(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = this.supervisor.status();
      if (status.every((s) => s.state === "running")) return;
      const down = status.find((s) => s.lastError !== undefined);
      const why = down ? `${down.id}: ${down.lastError}` : Date.now() > deadline ? `partitions not running after ${timeoutMs} ms` : null;
      if (why !== null) {
        await this.stop();
        throw new EngineStartError(`start-up failed: ${why}`);
      }
      await Bun.sleep(10);
    }
  }
}

/**
 * A rejected event as kept in the dead-letter list: itself when its JSON is
 * small, else that JSON cut to limits.deadletterEventCharsMax (an invalid
 * event can be as large as a body; the list must not hold megabytes each).
 */
function boundedEvent(event: unknown): unknown {
  let text: string;
  try {
    text = JSON.stringify(event) ?? String(event);
  } catch {
    text = String(event); // e.g. a MessagePack body holding a BigInt
  }
  return text.length <= limits.deadletterEventCharsMax ? event : text.slice(0, limits.deadletterEventCharsMax) + "…";
}

/** How often the fanout sends what is due (the per-client throttle is on top). */
const fanoutTickMs = 20;
