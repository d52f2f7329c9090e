/**
 * A partition's worker thread: drains its input ring (columnar event
 * batches), runs the partition's actors (PartitionPipeline: window →
 * anomaly → trend), and pushes their results to its output ring. When the
 * output ring is full it stops draining input, so backpressure travels up
 * to ingest instead of growing a queue here.
 */
import { heapSize } from "bun:jsc";
import { Decoder, Encoder } from "@msgpack/msgpack";
import { decodeIngestRecord, ingestRecordFormat } from "../actors/ingest-record.ts";
import { PartitionPipeline, type PipelineSnapshot, type Rollup } from "../actors/partition-pipeline.ts";
import { readRawLog } from "../storage/rawlog.ts";
import type { WindowSpec } from "../actors/window-spec.ts";
import { BatchColumns, type EventBatchMessage, type Message } from "../runtime/codec.ts";
import { limits } from "../runtime/limits.ts";
import { partitionStatSlots } from "./worker-stats.ts";
import { Ring } from "../runtime/ring.ts";
import { IngestClock } from "../runtime/ingest-clock.ts";
import { lowerThreadPriority } from "../runtime/thread-priority.ts";
import { childContext, isStop } from "../runtime/worker-child.ts";

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
  /** JS heap bytes (after a full GC) past which the worker fails on purpose, to be restarted from its checkpoint. */
  heapBytesMax: number;
  /** The engine's IngestClock: the quiet rule's "now" never passes a request still being admitted. */
  clockSab: SharedArrayBuffer;
}

/** Rows per output message: keeps a message well under the ring's message bound. */
const outRowsPerMessageMax = 4096;
/** Longest blocking wait for input before the event loop gets a turn (control messages wait at most this). */
const idleWaitMs = 20;
/** Input messages handled before yielding to the event loop (control messages, timers). */
const drainMessagesMax = 64;
/** Snapshot bytes per checkpoint message: well under the ring's message bound. */
const checkpointChunkBytes = limits.ringMessageBytesMax - 64 * 1024;

lowerThreadPriority(limits.backgroundThreadNice);
const ctx = childContext<PartitionData>();
const d = ctx.data;
const stats = new BigInt64Array(d.statsSab);
const inRing = Ring.attach(d.inSab);
const outRing = Ring.attach(d.outSab);
const clock = IngestClock.attach(d.clockSab);
const pipeline = new PartitionPipeline({ specs: d.specs, latenessMs: d.latenessMs, seriesMax: d.seriesMax, rollups: d.rollups });
const dec = new Decoder();
const enc = new Encoder();
const columns = new BatchColumns(limits.batchEventsMax);
const scratch = new Uint8Array(inRing.messageBytesMax);
let stopping = false;
let paused = false; // failpoint "pause": beat but take no input, so tests can fill the ring
/** The raw-log position of the last record fully handled (its last batch for this partition). */
let lastPos = d.checkpointPos;
/** Whether the last batch handled ended its record: checkpoints are taken only there. */
let atBoundary = true;
/** Input handled or output produced since the last checkpoint. */
let dirty = false;
let rowsSinceCheckpoint = 0;
let nextCheckpointMs = Date.now() + d.checkpointIntervalMs;
/** No interval checkpoint before this: a large state is snapshotted less often (limits.checkpointBytesPerSecondMax). */
let pacedUntilMs = 0;
/** An output message encoded but refused by the full ring: pushed as it is next time, not encoded again. */
let held: Uint8Array | null = null;
let heldRows = 0;
/** A wall-clock tick that closed limits.tickSeriesMax series and has more due at tickAtMs: it goes on before more input. */
let tickDone = true;
let tickAtMs = 0;
const myEpoch = BigInt(d.epoch);
/** Whether a newer incarnation of this partition's worker was started: then this one must not touch the rings. */
const superseded = () => Atomics.load(stats, partitionStatSlots.owner) !== myEpoch;

/** Pushes pending results; false while the output ring has no room (what did not fit is held for the next try). */
function flushOut(): boolean {
  for (;;) {
    if (held === null) {
      if (pipeline.pending === 0) return true;
      const out = pipeline.take(outRowsPerMessageMax);
      held = enc.encode({ k: "out", e: d.epoch, ...out }); // its own copy: it may wait for room
      heldRows = out.w.length + out.a.length + out.t.length + out.late.length;
    }
    if (superseded()) return false; // the output ring has a new producer
    if (!outRing.tryPush(held)) return false;
    held = null;
    dirty = true;
    rowsSinceCheckpoint += heldRows;
  }
}

/** Pushes all pending results, waiting for the engine to make room (replay and checkpoints must not skip any). */
async function flushOutAll(): Promise<void> {
  while (!flushOut()) {
    ctx.heartbeat();
    await Bun.sleep(1);
  }
}

function handleBatch(m: EventBatchMessage, slot: number): void {
  const batch = columns.view(m);
  pipeline.handleBatch(batch);
  Atomics.add(stats, slot, BigInt(batch.n));
  dirty = true;
  if (m.pos >= 0) {
    atBoundary = m.last;
    if (m.last) lastPos = m.pos;
  }
}

function handle(bytes: Uint8Array): void {
  const m = dec.decode(bytes) as Message;
  // A record below replayTo was replayed from the log already (it may still be on the ring after a restart).
  if (m.k === "ev" && !(m.pos >= 0 && m.pos < d.replayTo)) handleBatch(m, partitionStatSlots.events);
}

/** Restores the checkpoint and replays this partition's batches of the raw log after it, in order. */
async function recover(): Promise<void> {
  if (d.checkpoint !== null) pipeline.restore(dec.decode(d.checkpoint) as PipelineSnapshot);
  if (d.replayTo <= 0) return;
  const recordDec = new Decoder();
  let lastSeen = -1; // the last record read: positions must be record boundaries
  for (const rec of readRawLog(d.rawDir, Math.max(0, d.checkpointPos), d.replayTo)) {
    if (rec.position <= d.checkpointPos) continue;
    lastSeen = rec.position;
    ctx.heartbeat();
    if (rec.format !== ingestRecordFormat) continue;
    const r = decodeIngestRecord(recordDec, rec.payload);
    let ticked = false;
    for (const [p, bytes] of r.b) {
      if (p !== d.partition) continue;
      ticked = true;
      // handleBatch ticks at the batch's receive time first: the quiet closes the live run had taken by then.
      handleBatch(dec.decode(bytes) as EventBatchMessage, partitionStatSlots.replayed);
      await flushOutAll();
    }
    if (ticked) await maybeCheckpoint(rec.recvMs, false);
  }
  // Every record before replayTo is now reflected, this partition's or not: a checkpoint saying so,
  // taken at once, spares the next recovery (a crash loop's included) the same reading.
  if (lastSeen > lastPos) {
    lastPos = lastSeen;
    atBoundary = true;
    dirty = true;
  }
  if (lastSeen >= 0) await maybeCheckpoint(Date.now(), true);
}

/**
 * Whether a checkpoint is due: forced (shutdown), past checkpointRowsMax
 * rows (which bounds what the engine stages and writes in one commit), or at
 * the interval once the previous snapshot's pacing has passed: 50,000 series
 * a partition snapshot to ~25 MB, which is not worth writing every second.
 */
function checkpointDue(nowMs: number, force: boolean): boolean {
  if (force || rowsSinceCheckpoint >= d.checkpointRowsMax) return true;
  return nowMs >= pacedUntilMs && nowMs >= nextCheckpointMs;
}

/**
 * Commits the pipeline's state once its output is all on the ring, at a
 * record boundary, when due (checkpointDue). The snapshot travels in chunks
 * after the results it covers; the engine writes both in one transaction.
 */
async function maybeCheckpoint(nowMs: number, force: boolean): Promise<void> {
  if (!dirty || !atBoundary || !checkpointDue(nowMs, force)) return;
  await flushOutAll();
  const bytes = enc.encode(pipeline.snapshot());
  const chunks = Math.max(1, Math.ceil(bytes.byteLength / checkpointChunkBytes));
  for (let i = 0; i < chunks; i++) {
    const part = bytes.subarray(i * checkpointChunkBytes, (i + 1) * checkpointChunkBytes);
    const msg = enc.encodeSharedRef({ k: "ck", e: d.epoch, pos: lastPos, i, n: chunks, total: bytes.byteLength, bytes: part });
    while (superseded() || !outRing.tryPush(msg)) {
      ctx.heartbeat();
      await Bun.sleep(1);
    }
  }
  Atomics.add(stats, partitionStatSlots.checkpoints, 1n);
  dirty = false;
  rowsSinceCheckpoint = 0;
  nextCheckpointMs = nowMs + d.checkpointIntervalMs;
  pacedUntilMs = nowMs + (bytes.byteLength / limits.checkpointBytesPerSecondMax) * 1000;
}

function drain(): number {
  let handled = 0;
  while (handled < drainMessagesMax && pipeline.pending < outRowsPerMessageMax * 4) {
    if (superseded()) {
      paused = true; // terminate() is on its way; take nothing more meanwhile
      break;
    }
    const len = inRing.popInto(scratch);
    if (len < 0) break;
    handle(scratch.subarray(0, len));
    handled++;
  }
  return handled;
}

/**
 * Out of memory, on purpose and early: a heap over the bound after a full
 * collection fails this worker (the supervisor restarts it from its
 * checkpoint) before JSC's own out-of-memory can take the process down.
 */
let nextHeapCheckMs = 0;
function checkHeap(nowMs: number): void {
  if (nowMs < nextHeapCheckMs) return;
  nextHeapCheckMs = nowMs + limits.workerHeapCheckMs;
  if (heapSize() <= d.heapBytesMax) return;
  Bun.gc(true);
  const bytes = heapSize();
  if (bytes <= d.heapBytesMax) return;
  paused = true; // take no more input: this incarnation is done, its replacement replays from the checkpoint
  const mib = (n: number) => (n / 2 ** 20).toFixed(0);
  setTimeout(() => { throw new Error(`out of memory: heap ${mib(bytes)} MiB over WEIR_WORKER_HEAP_MAX ${mib(d.heapBytesMax)} MiB`); }, 0);
}

async function run(): Promise<void> {
  let nextTickMs = 0;
  for (;;) {
    ctx.heartbeat();
    const room = flushOut();
    // An unfinished tick goes on before any input: the next batch's own tick (handleBatch) then stays small.
    const handled = room && !paused && tickDone ? drain() : 0;
    const now = clock.now(); // read before the ring: see IngestClock
    if (room && !tickDone) tickDone = pipeline.tick(tickAtMs, limits.tickSeriesMax);
    else if (room && now >= nextTickMs && inRing.isEmpty()) {
      // Only with nothing waiting: a waiting batch is ticked for at its receive time when it is handled, so a
      // backlog, a full output ring or a paused intake never makes a series look quiet.
      tickAtMs = now;
      tickDone = pipeline.tick(now, limits.tickSeriesMax);
      nextTickMs = now + limits.workerTickMs;
    }
    checkHeap(Date.now());
    if (flushOut()) await maybeCheckpoint(now, false);
    if (stopping && inRing.isEmpty() && pipeline.pending === 0 && held === null) break;
    if (!room || paused) await Bun.sleep(1); // the main thread frees output room; nothing to wait on but time
    else if (!tickDone) await new Promise((r) => setImmediate(r)); // a turn for control messages between tick slices
    else if (handled === 0) {
      // Blocking wait, then a turn of the event loop for control messages. Not
      // waitForDataAsync: in Bun 1.4.5 Atomics.waitAsync inside a worker never
      // resolves, neither on notify nor on timeout (seen here).
      inRing.waitForData(idleWaitMs);
      await new Promise((r) => setImmediate(r));
    } else if (handled === drainMessagesMax) await new Promise((r) => setImmediate(r));
  }
  await maybeCheckpoint(Date.now(), true);
  ctx.stopped();
}

ctx.onControl((msg) => {
  if (isStop(msg)) stopping = true;
  else if (d.faults) fault(msg as { type?: string; mode?: string });
});

/** Memory the "grow" failpoint holds: 8 MiB arrays, at most growChunksMax of them. */
const grown: number[][] = [];
const growChunksMax = 512;

/** Failpoints for the tests: throw, hang (no more beats), exit, pause/resume intake, grow (allocate until the heap bound trips). */
function fault(msg: { type?: string; mode?: string }): void {
  if (msg.type !== "fault") return;
  if (msg.mode === "pause" || msg.mode === "resume") paused = msg.mode === "pause";
  if (msg.mode === "throw") setTimeout(() => { throw new Error("failpoint: throw"); }, 0);
  if (msg.mode === "hang") for (;;) { /* spin: stops the heartbeat */ }
  if (msg.mode === "exit") process.exit(3);
  if (msg.mode === "grow") {
    const timer = setInterval(() => {
      if (grown.length >= growChunksMax) clearInterval(timer);
      else grown.push(new Array(2 ** 20).fill(grown.length + 0.5));
    }, 5);
  }
}

await recover();
ctx.ready();
void run();
