/**
 * A partition's worker thread: drains its input ring (columnar event
 * batches), runs the partition's actors (PartitionPipeline: window →
 * anomaly → trend), and pushes their results to its output ring. When the
 * output ring is full it stops draining input, so backpressure travels up
 * to ingest instead of growing a queue here.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { PartitionPipeline, type Rollup } from "../actors/partition-pipeline.ts";
import type { WindowSpec } from "../actors/window-spec.ts";
import { BatchColumns, type Message } from "./codec.ts";
import { limits } from "./limits.ts";
import { partitionStatSlots } from "./partition-worker-stats.ts";
import { Ring } from "./ring.ts";
import { childContext, isStop } from "./worker-child.ts";

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
}

/** Rows per output message: keeps a message well under the ring's message bound. */
const outRowsPerMessageMax = 4096;
/** Longest blocking wait for input before the event loop gets a turn (control messages wait at most this). */
const idleWaitMs = 20;
/** Input messages handled before yielding to the event loop (control messages, timers). */
const drainMessagesMax = 64;

const ctx = childContext<PartitionData>();
const d = ctx.data;
const stats = new BigInt64Array(d.statsSab);
const inRing = Ring.attach(d.inSab);
const outRing = Ring.attach(d.outSab);
const pipeline = new PartitionPipeline({ specs: d.specs, latenessMs: d.latenessMs, seriesMax: d.seriesMax, rollups: d.rollups });
const dec = new Decoder();
const enc = new Encoder();
const columns = new BatchColumns(limits.batchEventsMax);
const scratch = new Uint8Array(inRing.messageBytesMax);
let stopping = false;
let paused = false; // failpoint "pause": beat but take no input, so tests can fill the ring

/** Pushes pending results; false while the output ring has no room (what did not fit stays pending). */
function flushOut(): boolean {
  while (pipeline.pending > 0) {
    const out = pipeline.take(outRowsPerMessageMax);
    if (!outRing.tryPush(enc.encodeSharedRef({ k: "out", ...out }))) {
      pipeline.putBack(out);
      return false;
    }
  }
  return true;
}

function handle(bytes: Uint8Array): void {
  const m = dec.decode(bytes) as Message;
  if (m.k === "ev") {
    const batch = columns.view(m);
    pipeline.handleBatch(batch);
    Atomics.add(stats, partitionStatSlots.events, BigInt(batch.n));
  }
}

function drain(): number {
  let handled = 0;
  while (handled < drainMessagesMax && pipeline.pending < outRowsPerMessageMax * 4) {
    const len = inRing.popInto(scratch);
    if (len < 0) break;
    handle(scratch.subarray(0, len));
    handled++;
  }
  return handled;
}

async function run(): Promise<void> {
  let nextTickMs = 0;
  for (;;) {
    ctx.heartbeat();
    const room = flushOut();
    const handled = room && !paused ? drain() : 0;
    const now = Date.now();
    if (now >= nextTickMs) {
      pipeline.tick(now);
      nextTickMs = now + limits.workerTickMs;
    }
    flushOut();
    if (stopping && inRing.isEmpty() && pipeline.pending === 0) break;
    if (!room || paused) await Bun.sleep(1); // the main thread frees output room; nothing to wait on but time
    else if (handled === 0) {
      // Blocking wait, then a turn of the event loop for control messages. Not
      // waitForDataAsync: in Bun 1.4.5 Atomics.waitAsync inside a worker never
      // resolves, neither on notify nor on timeout (seen here).
      inRing.waitForData(idleWaitMs);
      await new Promise((r) => setImmediate(r));
    } else if (handled === drainMessagesMax) await new Promise((r) => setImmediate(r));
  }
  ctx.stopped();
}

ctx.onControl((msg) => {
  if (isStop(msg)) stopping = true;
  else if (d.faults) fault(msg as { type?: string; mode?: string });
});

/** Failpoints for the tests: throw, hang (no more beats), exit, pause/resume intake. */
function fault(msg: { type?: string; mode?: string }): void {
  if (msg.type !== "fault") return;
  if (msg.mode === "pause" || msg.mode === "resume") paused = msg.mode === "pause";
  if (msg.mode === "throw") setTimeout(() => { throw new Error("failpoint: throw"); }, 0);
  if (msg.mode === "hang") for (;;) { /* spin: stops the heartbeat */ }
  if (msg.mode === "exit") process.exit(3);
}

ctx.ready();
void run();
