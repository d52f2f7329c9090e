/**
 * A partition's loop, as a class with what it touches injected (its rings,
 * the ingest clock, the raw-log reader, the heartbeat, the heap reading): it
 * drains its input ring (columnar event batches), runs the partition's
 * actors (PartitionPipeline: window → anomaly → trend), and pushes their
 * results to its output ring. When the output ring is full it stops draining
 * input, so backpressure travels up to ingest instead of growing a queue
 * here. The thread around it is src/partition/worker.ts; the test-only
 * failpoints are src/partition/failpoints.ts, loaded only with
 * WEIR_FAILPOINTS.
 *
 * @example
 *   const loop = new PartitionLoop({ data, inRing, outRing, stats, clock, readLog, beat, heapBytes });
 *   await loop.recover(); ready(); await loop.run(); // run() ends after stop() and a final checkpoint
 */
import { strict as assert } from "node:assert";
import { Decoder, Encoder } from "@msgpack/msgpack";
import { decodeIngestRecord, ingestRecordFormat } from "../actors/ingest-record.ts";
import { PartitionPipeline, type PipelineSnapshot, type Rollup } from "../actors/partition-pipeline.ts";
import type { AnomalyKnobRule } from "../actors/anomaly-knobs.ts";
import type { WindowSpec } from "../actors/window-spec.ts";
import { parseRule, type Rule } from "../actors/rules/rule.ts";
import { parseView } from "../actors/views/view.ts";
import type { TableLookup } from "../actors/views/view-set.ts";
import { BatchColumns, type EventBatchMessage, type Message } from "../runtime/codec.ts";
import { limits } from "../runtime/limits.ts";
import type { Ring } from "../runtime/ring.ts";
import type { RawRecord } from "../storage/rawlog.ts";
import { CheckpointStream } from "./checkpoint-stream.ts";
import { partitionStatSlots } from "./worker-stats.ts";

export interface PartitionData extends Record<string, unknown> {
  partition: number;
  inSab: SharedArrayBuffer;
  outSab: SharedArrayBuffer;
  /** BigInt64 slots the worker counts into: see partitionStatSlots. */
  statsSab: SharedArrayBuffer;
  specs: WindowSpec[];
  rollups: Rollup[];
  latenessMs: number;
  seriesMax: number;
  /** Test-only fault injection (WEIR_FAILPOINTS); off in production. */
  faults: boolean;
  /** This incarnation's number: every output message carries it, so the engine can drop a dead one's. */
  epoch: number;
  /** The last committed checkpoint (MessagePack of a PipelineSnapshot), or null to start empty. */
  checkpoint: Uint8Array | null;
  /** The raw-log position (a record boundary) of the last record the checkpoint includes; -1 for none. */
  checkpointPos: number;
  /** Replay the raw log in (checkpointPos, replayTo); records from replayTo on are on the ring. */
  replayTo: number;
  rawDir: string;
  checkpointIntervalMs: number;
  /** Output rows after which a checkpoint is taken early (bounds what the engine holds uncommitted). */
  checkpointRowsMax: number;
  /** A snapshot larger than this is not sent: the worker fails (its partition is restarted, then failed), not the process. */
  checkpointBytesMax: number;
  /** JS heap bytes (after a full GC) past which the worker fails on purpose, to be restarted from its checkpoint. */
  heapBytesMax: number;
  /** The engine's IngestClock: the quiet rule's "now" never passes a request still being admitted. */
  clockSab: SharedArrayBuffer;
  /** The partition's series registered so far, by local id: [name, tags] (later ones come as `sr` ring messages). */
  series: Array<[string, Record<string, string>]>;
  /** The alert rules as configured (validated by the engine; parsed again here). */
  rules: unknown[];
  /** The config's anomaly knobs per series selector (validated); absent: none. */
  anomalies?: AnomalyKnobRule[];
  /** The continuous views as configured (validated by the engine; parsed again here). */
  views?: unknown[];
  /** The reference tables the views join with: rows by key, with their versions. */
  tables?: TableData[];
  /**
   * Cluster mode: a batch's closes wait for the held receive clock (its
   * upstream floor), the watermark's as the quiet rule's (window.ts
   * handleCapped): shares of a message JetStream redelivered come after
   * newer ones. No raw-log replay exists in cluster mode to differ from it.
   */
  capCloses?: boolean;
  /** The running values live clients ask for (updates:<spec>:<glob>); later changes come as UpdatesMessage. */
  updates?: UpdatesInterest;
}

/** A reference table as the engine sends it to the workers: rows by key (null: the table is gone). */
export interface TableData { name: string; version: number; rows: Array<[string, Record<string, string>]> | null }
/** The engine's control messages when the views or a table change. */
export interface ViewsMessage { type: "views"; views: unknown[] }
export interface TableMessage { type: "table"; table: TableData }

export function isViewsMessage(msg: unknown): msg is ViewsMessage {
  return typeof msg === "object" && msg !== null && (msg as { type?: unknown }).type === "views" && Array.isArray((msg as { views?: unknown }).views);
}
export function isTableMessage(msg: unknown): msg is TableMessage {
  return typeof msg === "object" && msg !== null && (msg as { type?: unknown }).type === "table";
}

function tableLookup(t: TableData): TableLookup | null {
  if (t.rows === null) return null;
  const rows = new Map(t.rows);
  return { version: t.version, get: (k) => rows.get(k) };
}

/** The live subscriptions to running values: each spec with a series glob (see PartitionPipeline.setUpdates). */
export type UpdatesInterest = Array<{ spec: string; glob: string }>;
export interface UpdatesMessage { type: "updates"; subs: UpdatesInterest }

export function isUpdatesMessage(msg: unknown): msg is UpdatesMessage {
  return typeof msg === "object" && msg !== null && (msg as { type?: unknown }).type === "updates" && Array.isArray((msg as { subs?: unknown }).subs);
}

/** The engine's control message when the rules change: every rule definition, as in PartitionData.rules. */
export interface RulesMessage { type: "rules"; rules: unknown[] }

export function isRulesMessage(msg: unknown): msg is RulesMessage {
  return typeof msg === "object" && msg !== null && (msg as { type?: unknown }).type === "rules" && Array.isArray((msg as { rules?: unknown }).rules);
}

/** What the loop runs on: handed in by the worker thread, or by a test. */
export interface LoopDeps {
  data: PartitionData;
  inRing: Ring;
  outRing: Ring;
  /** BigInt64 slots shared with the engine: see partitionStatSlots. */
  stats: BigInt64Array;
  /** The quiet rule's "now" (IngestClock.now): never past a request still being admitted. */
  clock: { now(): number };
  /** The raw log's records in [from, to). */
  readLog: (from: number, to: number) => Iterable<RawRecord>;
  /** Tells the supervisor the thread is alive. */
  beat: () => void;
  /** The JS heap's size in bytes (bun:jsc heapSize). */
  heapBytes: () => number;
}

/** Rows per output message: keeps a message well under the ring's message bound. */
const outRowsPerMessageMax = 4096;
/** Longest blocking wait for input before the event loop gets a turn (control messages wait at most this). */
const idleWaitMs = 20;
/** Input messages handled before yielding to the event loop (control messages, timers). */
const drainMessagesMax = 64;
/** Snapshot bytes per checkpoint message: well under the ring's message bound. */
const checkpointChunkBytes = limits.ringMessageBytesMax - 64 * 1024;

const nextTurn = () => new Promise((r) => setImmediate(r));

/** The engine's rule definitions, compiled for these windows (they were validated there against the same). */
function parseRules(defs: unknown[], specs: WindowSpec[], rollups: Rollup[]): Rule[] {
  return defs.map((def, i) => parseRule(def, { path: `rules[${i}]`, windows: { specs, rollups } }));
}

export class PartitionLoop {
  private readonly d: PartitionData;
  private readonly pipeline: PartitionPipeline;
  private readonly dec = new Decoder();
  private readonly enc = new Encoder();
  private readonly columns = new BatchColumns(limits.batchEventsMax);
  private readonly scratch: Uint8Array;
  /** A checkpoint chunk is copied here before it is sent. */
  private readonly chunk = new Uint8Array(checkpointChunkBytes);
  /** A batch taken off the ring whose quiet closes (those due by its receive time) are still being ticked: taken before any other input. */
  private waiting: { m: EventBatchMessage; cap: number } | null = null;
  private readonly myEpoch: bigint;
  private stopping = false;
  /** Taking no input: a failpoint's pause, a superseded incarnation, or a heap over its bound. */
  private paused = false;
  /** Each reference table's version in effect here. */
  private readonly tableVersions = new Map<string, number>();
  /** Tables received whose ring marker has not come yet (by name and version). */
  private readonly tablesWaiting = new Map<string, TableData>();
  /** A marker came before its table: the ring is not drained until the table arrives. */
  private awaitingTable: string | null = null;
  /** The raw-log position of the last record fully handled (its last batch for this partition). */
  private lastPos: number;
  /** Whether the last batch handled ended its record: checkpoints are taken only there. */
  private atBoundary = true;
  /** Input handled or output produced since the last checkpoint. */
  private dirty = false;
  private rowsSinceCheckpoint = 0;
  private nextCheckpointMs: number;
  /** No interval checkpoint before this: a large state is snapshotted less often (limits.checkpointBytesPerSecondMax). */
  private pacedUntilMs = 0;
  /** An output message encoded but refused by the full ring: pushed as it is next time, not encoded again. */
  private held: Uint8Array | null = null;
  private heldRows = 0;
  /** Whether the held message carries only a view frontier (no checkpoint is due for it). */
  private heldFrontierOnly = false;
  /** A wall-clock tick (or a waiting batch's) that closed limits.tickSeriesMax series and has more due at tickAtMs: it goes on before more input. */
  private tickDone = true;
  private tickAtMs = 0;
  private nextHeapCheckMs = 0;

  constructor(private readonly x: LoopDeps) {
    const d = (this.d = x.data);
    this.pipeline = new PartitionPipeline({
      specs: d.specs, latenessMs: d.latenessMs, seriesMax: d.seriesMax, rollups: d.rollups, rules: parseRules(d.rules ?? [], d.specs, d.rollups),
      anomalies: d.anomalies, views: (d.views ?? []).map((def, i) => parseView(def, { path: `views[${i}]` })),
    });
    (d.series ?? []).forEach(([name, tags], sid) => this.pipeline.addSeries(sid, name, tags));
    if (d.updates !== undefined) this.pipeline.setUpdates(d.updates);
    for (const t of d.tables ?? []) {
      this.tableVersions.set(t.name, t.version);
      this.pipeline.setTable(t.name, tableLookup(t));
    }
    this.scratch = new Uint8Array(x.inRing.messageBytesMax);
    this.myEpoch = BigInt(d.epoch);
    this.lastPos = d.checkpointPos;
    this.nextCheckpointMs = Date.now() + d.checkpointIntervalMs;
  }

  /** Ends run() once the input ring is drained and the results are out, with a final checkpoint. */
  stop(): void {
    this.stopping = true;
  }

  /** The views from now on (the engine's control message after a change; validated there). */
  setViews(views: unknown[]): void {
    this.pipeline.setViews(views.map((def, i) => parseView(def, { path: `views[${i}]` })));
  }

  /**
   * A reference table's new version (the engine's control message). It
   * takes effect where its marker (`tv`) stands on the input ring, so the
   * events received before the change join with the old rows and those
   * after with the new: until the marker comes it waits here, and a marker
   * that comes first holds the ring until its table does.
   */
  setTable(t: TableData): void {
    if (t.version <= (this.tableVersions.get(t.name) ?? -Infinity)) return; // older than what this incarnation started with
    this.tablesWaiting.set(`${t.name}\u0000${t.version}`, t);
    if (this.awaitingTable === `${t.name}\u0000${t.version}`) {
      this.awaitingTable = null;
      this.applyTable(t.name, t.version);
    }
  }

  private applyTable(name: string, version: number): void {
    const k = `${name}\u0000${version}`;
    const t = this.tablesWaiting.get(k)!;
    this.tablesWaiting.delete(k);
    this.tableVersions.set(name, version);
    this.pipeline.setTable(name, tableLookup(t));
  }

  /** A table's marker on the ring: its version applies now, or the ring waits for it (see setTable). */
  private tableMarker(name: string, version: number): void {
    if (version <= (this.tableVersions.get(name) ?? -Infinity)) return; // this incarnation started with it or a newer one
    if (this.tablesWaiting.has(`${name}\u0000${version}`)) this.applyTable(name, version);
    else this.awaitingTable = `${name}\u0000${version}`;
  }

  /** The running values live clients ask for from now on (the engine's control message). */
  setUpdates(subs: UpdatesInterest): void {
    this.pipeline.setUpdates(subs);
  }

  /** The rules to judge from now on (the engine's control message after a change; validated there). */
  setRules(rules: unknown[]): void {
    this.pipeline.setRules(parseRules(rules, this.d.specs, this.d.rollups));
  }

  /** Takes no input while paused (it still beats): how tests fill a ring. */
  pause(on: boolean): void {
    this.paused = on;
  }

  /** Whether a newer incarnation of this partition's worker was started: then this one must not touch the rings. */
  private superseded(): boolean {
    return Atomics.load(this.x.stats, partitionStatSlots.owner) !== this.myEpoch;
  }

  /** Pushes pending results; false while the output ring has no room (what did not fit is held for the next try). */
  private flushOut(): boolean {
    for (;;) {
      if (this.held === null) {
        if (this.pipeline.pending === 0) return true;
        const out = this.pipeline.take(outRowsPerMessageMax);
        this.held = this.enc.encode({ k: "out", e: this.d.epoch, ...out }); // its own copy: it may wait for room
        this.heldRows = out.w.length + out.a.length + out.t.length + out.late.length + out.r.length + out.v.length;
        this.heldFrontierOnly = this.heldRows === 0 && out.u.length === 0; // a view frontier alone changes no state: no checkpoint for it
      }
      if (this.superseded()) return false; // the output ring has a new producer
      if (!this.x.outRing.tryPush(this.held)) return false;
      this.held = null;
      if (!this.heldFrontierOnly) this.dirty = true;
      this.rowsSinceCheckpoint += this.heldRows;
    }
  }

  /** Pushes all pending results, waiting for the engine to make room (replay and checkpoints must not skip any). */
  private async flushOutAll(): Promise<void> {
    while (!this.flushOut()) {
      this.x.beat();
      await Bun.sleep(1);
    }
  }

  /**
   * The cap on batch m's watermark and quiet closes. `live`: off the ring (in
   * cluster mode the watermark then waits for the held clock as it is now:
   * no raw-log replay decides otherwise); else replayed from the raw log (the
   * cap the record carries).
   */
  private capOf(m: EventBatchMessage, live: boolean): number {
    return this.d.capCloses === true ? (live ? this.x.clock.now() : Infinity) : m.cap ?? Infinity;
  }

  /**
   * A batch off the ring. The quiet closes due by its receive time come
   * first, as handleBatch would take them in one piece (a replay does): at
   * most limits.tickSeriesMax series here, and if more are due the batch
   * waits while run() closes them a slice per turn, then goes before any
   * other input. So a round over 50,000 quiet series is not one stretch
   * without a heartbeat.
   */
  private takeBatch(m: EventBatchMessage): void {
    const cap = this.capOf(m, true);
    const at = Math.min(m.recv, cap);
    if (this.pipeline.tick(at, limits.tickSeriesMax)) {
      this.handleBatch(m, partitionStatSlots.events, cap);
      return;
    }
    // m's columns are views of this.scratch: nothing is popped into it until m is handled (drain() waits for the tick).
    this.waiting = { m, cap };
    this.tickAtMs = at;
    this.tickDone = false;
  }

  /** `cap`: see capOf. Its quiet closes are taken here (pipeline.handleBatch) unless a sliced tick took them already. */
  private handleBatch(m: EventBatchMessage, slot: number, cap: number): void {
    const batch = this.columns.view(m);
    this.pipeline.handleBatch(batch, cap);
    Atomics.add(this.x.stats, slot, BigInt(batch.n));
    Atomics.store(this.x.stats, partitionStatSlots.viewsRefused, BigInt(this.pipeline.viewsRefused));
    this.dirty = true;
    if (m.pos >= 0) {
      this.atBoundary = m.last;
      if (m.last) this.lastPos = m.pos;
    }
  }

  private handle(bytes: Uint8Array): void {
    const m = this.dec.decode(bytes) as Message;
    // A record below replayTo was replayed from the log already (it may still be on the ring after a restart);
    // its series are in this incarnation's data (registered before the record was written).
    if (m.k === "ev" && !(m.pos >= 0 && m.pos < this.d.replayTo)) this.takeBatch(m);
    else if (m.k === "sr" && !(m.pos >= 0 && m.pos < this.d.replayTo)) for (const [sid, name, tags] of m.rows) this.pipeline.addSeries(sid, name, tags);
    else if (m.k === "tv") this.tableMarker(m.name, m.version);
  }

  /** Restores the checkpoint and replays this partition's batches of the raw log after it, in order. */
  async recover(): Promise<void> {
    const d = this.d;
    if (d.checkpoint !== null) {
      // In slices with a beat between: 50,000 series took 1-2 s to restore in one piece, a restart found hung again.
      const slices = this.pipeline.restoreSlices(this.dec.decode(d.checkpoint) as PipelineSnapshot, limits.snapshotSeriesPerSlice);
      for (let r = slices.next(); !r.done; r = slices.next()) this.x.beat();
    }
    if (d.replayTo <= 0) return;
    const recordDec = new Decoder();
    let lastSeen = -1; // the last record read: positions must be record boundaries
    for (const rec of this.x.readLog(Math.max(0, d.checkpointPos), d.replayTo)) {
      if (rec.position <= d.checkpointPos) continue;
      lastSeen = rec.position;
      this.x.beat();
      if (rec.format !== ingestRecordFormat) continue;
      const r = decodeIngestRecord(recordDec, rec.payload);
      let ticked = false;
      for (const [p, bytes] of r.b) {
        if (p !== d.partition) continue;
        ticked = true;
        // The batch's receive time first: the quiet closes the live run had taken by then (in slices, as takeBatch).
        const m = this.dec.decode(bytes) as EventBatchMessage;
        const cap = this.capOf(m, false);
        while (!this.pipeline.tick(Math.min(m.recv, cap), limits.tickSeriesMax)) {
          this.x.beat(); // a slice of at most tickSeriesMax series closed
          await this.flushOutAll();
        }
        this.handleBatch(m, partitionStatSlots.replayed, cap);
        await this.flushOutAll();
      }
      if (ticked) await this.maybeCheckpoint(rec.recvMs, false);
    }
    // Every record before replayTo is now reflected, this partition's or not: a checkpoint saying so,
    // taken at once, spares the next recovery (a crash loop's included) the same reading.
    if (lastSeen > this.lastPos) {
      this.lastPos = lastSeen;
      this.atBoundary = true;
      this.dirty = true;
    }
    if (lastSeen >= 0) await this.maybeCheckpoint(Date.now(), true);
  }

  /**
   * Whether a checkpoint is due: forced (shutdown), past checkpointRowsMax
   * rows (which bounds what the engine stages and writes in one commit), or at
   * the interval once the previous snapshot's pacing has passed: 50,000 series
   * a partition snapshot to ~25 MB, which is not worth writing every second.
   */
  private checkpointDue(nowMs: number, force: boolean): boolean {
    if (force || this.rowsSinceCheckpoint >= this.d.checkpointRowsMax) return true;
    return nowMs >= this.pacedUntilMs && nowMs >= this.nextCheckpointMs;
  }

  /**
   * Commits the pipeline's state once its output is all on the ring, at a
   * record boundary, when due (checkpointDue). The snapshot travels in chunks
   * after the results it covers; the engine writes both in one transaction.
   * Taking it and encoding it are sliced (takeSnapshot, CheckpointStream),
   * with a beat after every slice and chunk: 50,000 series took 1-3 s in
   * one piece, under load past the heartbeat timeout.
   */
  private async maybeCheckpoint(nowMs: number, force: boolean): Promise<void> {
    if (!this.dirty || !this.atBoundary || !this.checkpointDue(nowMs, force)) return;
    this.pipeline.flushViews(force); // the views' parts due (all at a stop): committed with this checkpoint
    await this.flushOutAll();
    // Encoded chunk by chunk from the snapshot's own arrays: a control message handled while a chunk waits for room changes none of them.
    const stream = CheckpointStream.of(this.takeSnapshot(), this.enc);
    const total = stream.totalBytes;
    if (total > this.d.checkpointBytesMax) {
      throw new Error(`partition ${this.d.partition}: checkpoint of ${total} bytes, over ${this.d.checkpointBytesMax} (limits.checkpointBytesMax)`);
    }
    const n = stream.chunkCount(this.chunk.byteLength);
    let i = 0;
    for (const part of stream.chunks(this.chunk)) {
      const msg = this.enc.encodeSharedRef({ k: "ck", e: this.d.epoch, pos: this.lastPos, i, n, total, bytes: part });
      while (this.superseded() || !this.x.outRing.tryPush(msg)) {
        this.x.beat();
        await Bun.sleep(1);
      }
      this.x.beat(); // a chunk copied and sent
      i++;
    }
    assert(i === n, `checkpoint sent in ${i} chunks, announced ${n}`);
    Atomics.add(this.x.stats, partitionStatSlots.checkpoints, 1n);
    this.dirty = false;
    this.rowsSinceCheckpoint = 0;
    this.nextCheckpointMs = nowMs + this.d.checkpointIntervalMs;
    this.pacedUntilMs = nowMs + (total / limits.checkpointBytesPerSecondMax) * 1000;
  }

  /** The pipeline's snapshot, limits.snapshotSeriesPerSlice series at a time with a beat between; nothing else runs meanwhile. */
  private takeSnapshot(): PipelineSnapshot {
    const slices = this.pipeline.snapshotSlices(limits.snapshotSeriesPerSlice);
    for (;;) {
      const r = slices.next();
      if (r.done) return r.value;
      this.x.beat(); // a bounded slice done: the generator ends after about series / slice of them
    }
  }

  private drain(): number {
    let handled = 0;
    if (this.waiting !== null) {
      // Its quiet closes are all taken (drain runs once the tick is done): the batch itself now, before any other input.
      const { m, cap } = this.waiting;
      this.waiting = null;
      this.handleBatch(m, partitionStatSlots.events, cap);
      handled++;
    }
    while (handled < drainMessagesMax && this.tickDone && this.pipeline.pending < outRowsPerMessageMax * 4 && this.awaitingTable === null) {
      if (this.superseded()) {
        this.paused = true; // terminate() is on its way; take nothing more meanwhile
        break;
      }
      const len = this.x.inRing.popInto(this.scratch);
      if (len < 0) break;
      this.handle(this.scratch.subarray(0, len));
      handled++;
      this.x.beat(); // a message of at most batchEventsMax events (or series rows) handled: up to drainMessagesMax a turn
    }
    return handled;
  }

  /**
   * Out of memory, on purpose and early: a heap over the bound after a full
   * collection fails this worker (the supervisor restarts it from its
   * checkpoint) before JSC's own out-of-memory can take the process down.
   */
  private checkHeap(nowMs: number): void {
    if (nowMs < this.nextHeapCheckMs) return;
    this.nextHeapCheckMs = nowMs + limits.workerHeapCheckMs;
    const max = this.d.heapBytesMax;
    if (this.x.heapBytes() <= max) return;
    Bun.gc(true);
    const bytes = this.x.heapBytes();
    if (bytes <= max) return;
    this.paused = true; // take no more input: this incarnation is done, its replacement replays from the checkpoint
    const mib = (n: number) => (n / 2 ** 20).toFixed(0);
    setTimeout(() => { throw new Error(`out of memory: heap ${mib(bytes)} MiB over WEIR_WORKER_HEAP_MAX ${mib(max)} MiB`); }, 0);
  }

  /** Runs until stop(): input, ticks, output and checkpoints; then a final checkpoint. */
  async run(): Promise<void> {
    const { inRing } = this.x;
    let nextTickMs = 0;
    let nextUpdatesMs = 0;
    let nextFrontierMs = 0;
    for (;;) {
      this.x.beat();
      const room = this.flushOut();
      // An unfinished tick goes on before any input: the next batch's own tick (handleBatch) then stays small.
      const handled = room && !this.paused && this.tickDone ? this.drain() : 0;
      const now = this.x.clock.now(); // read before the ring: see IngestClock
      if (room && !this.tickDone) {
        // One slice a turn, a beat between: not in the turn whose batch began it (takeBatch closed a slice then).
        if (handled === 0) this.tickDone = this.pipeline.tick(this.tickAtMs, limits.tickSeriesMax);
      } else if (room && now >= nextTickMs && inRing.isEmpty() && this.waiting === null) {
        // Only with nothing waiting (on the ring or taken off it): a waiting batch is ticked for at its receive time when
        // it is handled, so a backlog, a full output ring or a paused intake never makes a series look quiet.
        this.tickAtMs = now;
        this.tickDone = this.pipeline.tick(now, limits.tickSeriesMax);
        nextTickMs = now + limits.workerTickMs;
      }
      if (room && this.tickDone && now >= nextFrontierMs) {
        if (this.pipeline.flushViewFrontier(this.lastPos)) this.dirty = true; // a held view part is complete: the next checkpoint takes it
        nextFrontierMs = now + limits.viewFrontierEveryMs;
      }
      if (room && now >= nextUpdatesMs) {
        this.pipeline.flushUpdates(); // nothing to do unless a live client asked for running values
        nextUpdatesMs = now + limits.updatesEveryMs;
      }
      this.checkHeap(Date.now());
      // Checkpoints are paced by the wall clock: a held quiet rule (a takeover's catch-up, a handoff) must not stop them.
      if (this.flushOut()) await this.maybeCheckpoint(Date.now(), false);
      if (this.stopping && inRing.isEmpty() && this.pipeline.pending === 0 && this.held === null && this.waiting === null) break;
      if (!room || this.paused) await Bun.sleep(1); // the main thread frees output room; nothing to wait on but time
      else if (!this.tickDone) await nextTurn(); // a turn for control messages between tick slices
      else if (handled === 0 && this.waiting === null) {
        // Blocking wait, then a turn of the event loop for control messages. Not
        // waitForDataAsync: in Bun 1.4.5 Atomics.waitAsync inside a worker never
        // resolves, neither on notify nor on timeout (seen here).
        inRing.waitForData(idleWaitMs);
        await nextTurn();
      } else if (handled === drainMessagesMax) await nextTurn();
    }
    await this.maybeCheckpoint(Date.now(), true);
  }
}
