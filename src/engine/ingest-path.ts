/**
 * The ingest path: admission (disk, partitions, ring room), the raw log
 * and routing to the partitions' input rings, all or nothing per request.
 * Under WEIR_DURABILITY=durable, requests are appended, then answered
 * together after one fsync (group commit).
 *
 * @example
 *   const path = new IngestPath({ cfg, log, registry, dedupe, rings, ... });
 *   const out = await path.ingestBytes(body, "json"); // or throws
 *   await out.durable; // durable profile: answer only after this
 */
import { Encoder } from "@msgpack/msgpack";
import { fsyncSync } from "node:fs";
import { join } from "node:path";
import type { DeadLetters } from "../actors/deadletters.ts";
import type { DedupeSet } from "../actors/dedupe.ts";
import type { BodyFormat } from "../actors/ingest-body.ts";
import { parseEvents, type ParsedEvents } from "../actors/ingest-parse.ts";
import type { RejectReason } from "../actors/ingest-validate.ts";
import { encodeIngestRecord, ingestRecordFormat, markRecordFormat, type ExtraRow, seriesRowOf } from "../actors/ingest-record.ts";
import { Ingest, type IngestOutcome } from "../actors/ingest.ts";
import { SeriesBudget } from "../actors/series-budget.ts";
import type { SeriesRegistry } from "../actors/series-registry.ts";
import type { Config } from "../config.ts";
import { CrashPoints } from "../runtime/crash-points.ts";
import type { IngestClock } from "../runtime/ingest-clock.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import type { Ring } from "../runtime/ring.ts";
import { type DiskCheck, DiskGuard } from "../storage/disk-guard.ts";
import { RawLog } from "../storage/rawlog.ts";
import { parseBody } from "../ingest/parse-body.ts";
import { ParsePool } from "../ingest/parse-pool.ts";
import { OverloadedError } from "./errors.ts";
import type { EngineMetrics } from "./metrics.ts";

/**
 * What ingest answers. Under WEIR_DURABILITY=durable, `durable` settles when
 * the request's record is fsynced together with the others of its group
 * (group commit): answer 202 only then; it rejects with an OverloadedError
 * (503) if the sync failed, and then nothing of the request was kept.
 */
export type EngineOutcome = IngestOutcome & {
  durable?: Promise<void>;
  /** The raw-log position of the request's record, and the partitions its batches went to (none written: absent). */
  logged?: { position: number; partitions: number[] };
};

/**
 * Where a request came from when it can come again (a NATS message is
 * redelivered until acknowledged): its keys are de-duplicated like event
 * ids and written into its record, so it is logged once. `eventTimeMs`:
 * when it was first received upstream (HTTP in NATS mode), the default
 * event time and the reference of the age bounds.
 */
export interface MessageOrigin { keys: string[]; eventTimeMs?: number; source?: Record<string, unknown> }

/** A request of the pending group commit: written to the raw log, not yet synced, pushed or answered. */
interface GroupEntry {
  /** None for a request of duplicates only, which waits for the group's verdict on their first copies. */
  batches: Array<[number, Uint8Array]>;
  outcome: IngestOutcome;
  recvMs: number;
  source?: Record<string, unknown>;
  resolve: () => void;
  reject: (e: Error) => void;
}

export interface IngestPathDeps {
  cfg: Config;
  log: Log;
  registry: SeriesRegistry;
  dedupe: DedupeSet;
  /** Cluster mode: the prefix per partition of the event ids it remembers (see Ingest). */
  idScopes?: readonly string[];
  deadletters: DeadLetters;
  metrics: EngineMetrics;
  /** Each partition's input ring, by partition id. */
  rings: readonly Ring[];
  /** Receive times, shared with the workers: their quiet rule never passes a request still being admitted. */
  clock: IngestClock;
}

export class IngestPath {
  readonly rawLog: RawLog;
  /**
   * When set (rules on views), each record as it is logged, before any ring
   * has it: its position and, per partition, its earliest event time
   * (+Infinity: none), so a view window is not judged before every
   * partition has taken it (partition-outputs.ts).
   */
  onRecord: ((pos: number, minTs: Float64Array) => void) | null = null;
  /** fsync(2) calls on the raw log since start (durable profile: about one per group of requests). */
  rawLogSyncs = 0;
  private fsyncFault: Error | null = null;
  private readonly ingest: Ingest;
  /** The ingest threads that parse bodies (WEIR_INGEST_THREADS), or null: parsed here. */
  private readonly pool: ParsePool | null;
  private readonly disk: DiskGuard;
  private readonly crash: CrashPoints;
  private readonly recordEnc = new Encoder();
  private readonly enc = new Encoder();
  /** Durable profile: requests appended since the last fsync, answered together after one (group commit). */
  private readonly group: GroupEntry[] = [];
  /** Per partition, the byte lengths of the group's batches, in push order (for the room check). */
  private readonly groupLengths: number[][];
  private groupFrom = -1;
  private groupDedupeMark = 0;
  private groupScheduled = false;
  /** Per partition, markers waiting for ring room (pushMarker), in order: at most limits.tableMarkersWaitingMax (+1), TableBook's check. */
  private readonly markers: Uint8Array[][];
  /** Partitions past their restart budget: requests with events for them get 503. */
  private readonly failed = new Set<number>();
  private stopping = false;

  constructor(private readonly d: IngestPathDeps) {
    const cfg = d.cfg;
    this.crash = new CrashPoints(cfg.crashAt);
    this.rawLog = new RawLog(join(cfg.dataDir, "raw"), {
      profile: cfg.durability,
      segmentMs: cfg.rawSegmentMs,
      fsync: (fd) => this.fsync(fd),
      onRepair: (r) => d.log.warn("raw log: torn tail cut (a record never acknowledged)", r),
    });
    this.disk = new DiskGuard(cfg.dataDir, { reserveBytes: cfg.diskReserveBytes, checkIntervalMs: limits.diskCheckMs });
    this.ingest = new Ingest({
      partitions: cfg.partitions, registry: d.registry, bounds: cfg, dedupe: d.dedupe, idScopes: d.idScopes,
      newSeries: new SeriesBudget(cfg.newSeriesPerSec, cfg.newSeriesPerSec * limits.newSeriesBurstSeconds, Date.now()),
    });
    this.groupLengths = d.rings.map(() => []);
    this.markers = d.rings.map(() => []);
    this.pool = cfg.ingestThreads > 0 ? ParsePool.start(cfg.ingestThreads, cfg, d.log) : null;
  }

  /**
   * Decodes, validates and makes durable one request body, received now (the
   * engine stamps it: see IngestClock). The body is parsed on an ingest
   * thread (WEIR_INGEST_THREADS; with 0, here), the rest happens here.
   * Rejects with BodyError, TooLargeError or OverloadedError. The body's
   * buffer may move to an ingest thread: the caller must not use it after.
   */
  async ingestBytes(bytes: Uint8Array, format: BodyFormat): Promise<EngineOutcome> {
    return this.ingestMessage(bytes, format, noOrigin);
  }

  /**
   * A message that may come again (NATS): ingestBytes, unless one of its
   * origin keys is known, when nothing is taken and `known` is true.
   */
  ingestMessage(bytes: Uint8Array, format: BodyFormat, origin: MessageOrigin): Promise<EngineOutcome & { known: boolean }> {
    return this.take(origin, (eventTimeMs) => this.pool === null
      ? parseBody(bytes, format, eventTimeMs, this.d.cfg)
      : this.pool.parse(bytes, format, eventTimeMs).catch((e: Error) => this.refused(e)));
  }

  /**
   * Events validated elsewhere, as parseEvents leaves them (cluster mode: a
   * share of a message another process split), taken like ingestMessage.
   */
  ingestParsed(parsed: ParsedEvents, origin: MessageOrigin): Promise<EngineOutcome & { known: boolean }> {
    return this.take(origin, () => parsed);
  }

  private async take(origin: MessageOrigin, parse: (eventTimeMs: number) => ParsedEvents | Promise<ParsedEvents>): Promise<EngineOutcome & { known: boolean }> {
    if (this.stopping) throw new OverloadedError("shutting down", 503);
    const recvMs = this.d.clock.stamp();
    let held = false;
    try {
      if (origin.keys.some((k) => this.d.dedupe.has(k, recvMs))) return { ...emptyOutcome(), known: true };
      const got = parse(origin.eventTimeMs ?? recvMs);
      // Parsed here (no ingest threads): no await, so nothing else runs between the de-duplication check and the log.
      const parsed = got instanceof Promise ? await got : got;
      if (this.stopping) throw new OverloadedError("shutting down", 503); // stopped while the body was parsed
      const out = this.admit(parsed, recvMs, origin.keys, origin.source);
      held = out.durable !== undefined; // its group releases its receive time
      return { ...out, known: false };
    } finally {
      if (!held) this.d.clock.release(recvMs);
    }
  }

  /**
   * Refuses a request before its body is read, when it would be refused
   * anyway or would add to what already strains the process: shutting
   * down; the process over WEIR_MEMORY_MAX (RSS, read at most every
   * limits.rssSampleMs); a partition's input ring at least
   * limits.ringShedFraction full (most requests reach every partition).
   * Each an OverloadedError: 503 + Retry-After, counted as overloaded.
   */
  shedEarly(): void {
    if (this.stopping) throw new OverloadedError("shutting down", 503);
    const now = Date.now();
    if (now - this.rssAtMs >= limits.rssSampleMs) {
      this.rssAtMs = now;
      this.rssBytes = process.memoryUsage.rss();
    }
    if (this.rssBytes > this.d.cfg.memoryBytesMax) {
      this.d.metrics.overloaded.inc();
      throw new OverloadedError(`memory ${mib(this.rssBytes)} MiB over WEIR_MEMORY_MAX (${mib(this.d.cfg.memoryBytesMax)} MiB)`, 503, limits.memoryRetryAfterSeconds);
    }
    for (let p = 0; p < this.d.rings.length; p++) {
      const ring = this.d.rings[p];
      if (ring.usedBytes() >= ring.capacityBytes * limits.ringShedFraction) {
        this.d.metrics.overloaded.inc();
        throw new OverloadedError(`partition ${p} queue full`, 503);
      }
    }
  }

  private rssAtMs = 0;
  private rssBytes = 0;

  /** The simulators' entry: the same path, on this thread, logged as JSON. */
  ingestEvents(events: readonly object[]): EngineOutcome {
    if (this.stopping) throw new OverloadedError("shutting down", 503);
    const recvMs = this.d.clock.stamp();
    let held = false;
    try {
      const out = this.admit(parseEvents(events, recvMs, this.d.cfg), recvMs);
      held = out.durable !== undefined;
      return out;
    } finally {
      if (!held) this.d.clock.release(recvMs);
    }
  }

  /** Counts and dead-letters events refused before they reached this path (see Engine.refusedElsewhere). */
  refusedElsewhere(rejects: ReadonlyArray<{ event: unknown; error: string; reason: RejectReason }>, recvMs: number, source?: Record<string, unknown>): void {
    const reasons: Partial<Record<RejectReason, number>> = {};
    for (const r of rejects) reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;
    this.answered({ ...emptyOutcome(), rejected: rejects.length, reasons, rejects: rejects.map((r) => ({ event: r.event, error: r.error })) }, recvMs, source);
  }

  /** Counts a request the ingest threads refused (busy, or their thread died) before rethrowing it. */
  private refused(e: Error): never {
    if (e instanceof OverloadedError) this.d.metrics.overloaded.inc();
    throw e;
  }

  /** A partition past its restart budget: its events are refused from now on. */
  markFailed(partition: number): void {
    this.failed.add(partition);
  }

  /** Where a new worker's replay ends: records of a pending group commit are not durable yet, they reach it on the ring or never. */
  get durableEnd(): number {
    return this.group.length > 0 ? this.groupFrom : this.rawLog.end;
  }

  /**
   * A consistent cut for the de-duplication index: a raw-log position and
   * the de-duplication set's mark of the ids of exactly the records before
   * it. Durable profile: without the pending group, whose records a failed
   * fsync would cut and whose ids it would forget.
   */
  dedupeCut(): { mark: number; pos: number } {
    return this.group.length > 0 ? { mark: this.groupDedupeMark, pos: this.groupFrom } : { mark: this.d.dedupe.mark(), pos: this.rawLog.end };
  }

  /** The disk's state, for /ready. */
  diskCheck(): DiskCheck {
    return this.disk.check();
  }

  /** Failpoint: the next raw-log fsync fails with EIO. */
  failNextFsync(): void {
    this.fsyncFault = Object.assign(new Error("EIO: i/o error, fsync (failpoint)"), { code: "EIO" });
  }

  /** Refuses requests from now on (503) and answers the ones already written. */
  stop(): void {
    this.stopping = true;
    this.commitGroup();
    this.pool?.close();
  }

  close(): void {
    this.pool?.close();
    this.rawLog.close();
  }

  private fsync(fd: number): void {
    this.rawLogSyncs++;
    const fault = this.fsyncFault;
    this.fsyncFault = null;
    if (fault !== null) throw fault;
    fsyncSync(fd);
  }

  /**
   * All-or-nothing: check disk, route, check ring room, append the request's
   * record to the raw log, then push its batches and commit its side effects.
   * Anything thrown before the append leaves no trace; the 202 follows.
   */
  private admit(parsed: ParsedEvents, recvMs: number, origins: string[] = [], source?: Record<string, unknown>): EngineOutcome {
    const disk = this.disk.check();
    if (!disk.ok) {
      this.d.metrics.overloaded.inc();
      throw new OverloadedError(disk.message, 503, limits.diskRetryAfterSeconds);
    }
    const outcome = this.ingest.acceptParsed(parsed, recvMs);
    const grouped = this.d.cfg.durability === "durable";
    if (outcome.accepted === outcome.duplicates) {
      // The first copy may be in the pending group: this answer must not come before that one's.
      if (grouped && this.group.length > 0) return { ...outcome, durable: this.joinGroup({ batches: [], outcome, recvMs, source }) };
      this.answered(outcome, recvMs, source);
      return outcome; // nothing new to log or aggregate
    }
    this.checkRoom(grouped);
    const pos = this.rawLog.end;
    // Where the workers' clock is held now (NATS: a message still upstream): recorded with the batches, so the
    // watermark waits for it live and in a replay of this record alike (partition-loop.ts handleBatch).
    const cap = this.d.clock.holdFloor();
    const batches: Array<[number, Uint8Array]> = []; // the record's: events
    const pushes: Array<[number, Uint8Array]> = []; // the rings': each partition's new series (its worker's names and tags), then its events
    const extras: ExtraRow[] = [];
    for (let p = 0; p < this.d.rings.length; p++) {
      // A copy per message: the encoder's buffer is shared, and the record and the ring both take these bytes.
      for (const m of this.ingest.encodeSeries(p, this.enc, pos)) pushes.push([p, m.slice()]);
      for (const m of this.ingest.encode(p, this.enc, pos, cap)) {
        const b: [number, Uint8Array] = [p, m.slice()];
        batches.push(b);
        pushes.push(b);
      }
      for (const [i, id, props] of this.ingest.extrasFor(p)) extras.push([p, i, id, props]);
    }
    const record = encodeIngestRecord(this.recordEnc, {
      s: this.ingest.introducedSeries.map(seriesRowOf), b: batches, x: extras, o: origins,
    });
    if (grouped && this.group.length === 0) {
      this.groupFrom = pos;
      this.groupDedupeMark = this.d.dedupe.mark();
    }
    this.append(recvMs, record, pos);
    if (this.onRecord !== null) this.noteRecord(pos);
    this.crash.reach("ingest.after-log");
    for (const k of origins) this.d.dedupe.add(k, recvMs);
    const logged = { position: pos, partitions: [...new Set(batches.map(([p]) => p))] };
    if (grouped) {
      this.ingest.commit(); // series and ids at once: the next request must see them
      for (const [p, m] of pushes) this.groupLengths[p].push(m.byteLength);
      return { ...outcome, logged, durable: this.joinGroup({ batches: pushes, outcome, recvMs, source }) };
    }
    for (const [p, m] of pushes) {
      if (this.markers[p].length > 0) this.flushMarkers(p); // counted by the room check: it goes first
      if (!this.d.rings[p].tryPush(m)) throw new Error("ring refused a message it had room for"); // programmer error
    }
    this.ingest.commit();
    this.d.metrics.ingested.inc(outcome.accepted - outcome.duplicates);
    this.answered(outcome, recvMs, source);
    return { ...outcome, logged };
  }

  /**
   * A message every partition must see in order with the events (a
   * reference table's marker): pushed to each ring now, or queued there
   * until it has room; a queued one goes before the next request's events
   * (their room check counts it).
   */
  pushMarker(m: Uint8Array): void {
    for (let p = 0; p < this.d.rings.length; p++) {
      this.markers[p].push(m.slice());
      this.flushMarkers(p);
    }
  }

  /** The most markers waiting for one partition's ring room (TableBook refuses a change at limits.tableMarkersWaitingMax). */
  markersWaitingMax(): number {
    let n = 0;
    for (const q of this.markers) n = Math.max(n, q.length);
    return n;
  }

  /** Queued markers of every partition, where their rings have room (a timer's retry). */
  flushAllMarkers(): void {
    for (let p = 0; p < this.d.rings.length; p++) this.flushMarkers(p);
  }

  private flushMarkers(p: number): void {
    const q = this.markers[p];
    const ring = this.d.rings[p];
    while (q.length > 0 && ring.canPushAll([...this.groupLengths[p], q[0].byteLength]) && ring.tryPush(q[0])) q.shift();
  }

  /** Throws an OverloadedError unless every partition the request reaches runs and has ring room for it (and the pending group's). */
  private checkRoom(grouped: boolean): void {
    for (let p = 0; p < this.d.rings.length; p++) {
      if (this.ingest.eventsFor(p) === 0) continue;
      if (this.failed.has(p)) throw new OverloadedError(`partition ${p} failed`, 503, 30);
      const lengths = [...this.markers[p].map((m) => m.byteLength), ...this.ingest.messageBytes(p)];
      if (!this.d.rings[p].canPushAll(grouped ? [...this.groupLengths[p], ...lengths] : lengths)) {
        this.d.metrics.overloaded.inc();
        throw new OverloadedError(`partition ${p} queue full`, 503);
      }
    }
  }

  /**
   * Appends an empty mark record and returns its position: a record boundary
   * at which a partition's new state can start (cluster mode), with every
   * record before it behind. Throws OverloadedError when the log is not writable.
   */
  appendMark(): number {
    const pos = this.rawLog.end;
    try {
      if (this.rawLog.append(markRecordFormat, Date.now(), new Uint8Array(0), false) !== pos) throw new Error("raw log moved under ingest"); // programmer error
    } catch (e) {
      throw new OverloadedError(`raw log not writable: ${(e as Error).message}`, 503, limits.diskRetryAfterSeconds);
    }
    return pos;
  }

  /** Appends the request's record at `pos`; never syncs (`fast` does not, `durable` syncs once for the group). */
  private noteRecord(pos: number): void {
    const mins = new Float64Array(this.d.rings.length);
    for (let p = 0; p < mins.length; p++) mins[p] = this.ingest.minTsOf(p);
    this.onRecord!(pos, mins);
  }

  private append(recvMs: number, record: Uint8Array, pos: number): void {
    try {
      if (this.rawLog.append(ingestRecordFormat, recvMs, record, false) !== pos) throw new Error("raw log moved under ingest"); // programmer error
    } catch (e) {
      this.d.log.error("raw log append failed", { error: (e as Error).message });
      this.d.metrics.overloaded.inc();
      throw new OverloadedError(`raw log not writable: ${(e as Error).message}`, 503, limits.diskRetryAfterSeconds);
    }
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
      for (const g of entries) this.d.clock.release(g.recvMs); // the group's batches are on their rings, or it was refused
    }
  }

  private syncGroup(entries: GroupEntry[]): void {
    try {
      this.rawLog.sync(this.groupFrom);
    } catch (e) {
      this.d.dedupe.rollbackTo(this.groupDedupeMark);
      this.d.metrics.overloaded.inc(entries.length);
      this.d.log.error("raw log fsync failed; the group's requests are refused", { requests: entries.length, error: (e as Error).message });
      const err = new OverloadedError(`raw log not durable: ${(e as Error).message}`, 503, limits.diskRetryAfterSeconds);
      for (const g of entries) g.reject(err);
      return;
    }
    for (const g of entries) {
      for (const [p, m] of g.batches) {
        // A marker queued after this group was admitted waits behind it (the group's room was reserved without it).
        if (!this.d.rings[p].tryPush(m)) throw new Error("ring refused a message it had reserved room for"); // programmer error
      }
      if (g.batches.length > 0) this.d.metrics.ingested.inc(g.outcome.accepted - g.outcome.duplicates);
      this.answered(g.outcome, g.recvMs, g.source);
      g.resolve();
    }
    this.flushAllMarkers(); // a marker queued meanwhile follows the group's events (they were answered after it: ≤ one group apart)
  }

  /** Counts and dead-letters what a request that is being answered (202 or 400) refused or found re-sent. */
  private answered(outcome: IngestOutcome, recvMs: number, source?: Record<string, unknown>): void {
    this.d.metrics.duplicate.inc(outcome.duplicates);
    this.d.metrics.countRejects(outcome);
    for (const r of outcome.rejects) this.d.deadletters.addRejected(recvMs, r.error, r.event, source); // scrubbed and cut to size there
  }

}

const noOrigin: MessageOrigin = { keys: [] };

function emptyOutcome(): IngestOutcome {
  return { accepted: 0, duplicates: 0, rejected: 0, errors: [], reasons: {}, rejects: [] };
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}
