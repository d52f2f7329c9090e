/**
 * A partition's worker thread: drains its input ring (columnar event
 * batches), runs the window actor, and pushes results to its output ring.
 * When the output ring is full it stops draining input, so backpressure
 * travels up to ingest instead of growing a queue here.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { createWindowLogic, type LateEvent, type WindowResult } from "../actors/window.ts";
import type { WindowSpec } from "../actors/window-spec.ts";
import { BatchColumns, type LateRow, type Message, type WindowRow } from "./codec.ts";
import { limits } from "./limits.ts";
import { Ring } from "./ring.ts";
import { partitionStatSlots } from "./partition-worker-stats.ts";
import { childContext, isStop } from "./worker-child.ts";

export interface PartitionData extends Record<string, unknown> {
  partition: number;
  inSab: SharedArrayBuffer;
  outSab: SharedArrayBuffer;
  /** BigInt64 slots the worker counts into: see partitionStatSlots. */
  statsSab: SharedArrayBuffer;
  specs: WindowSpec[];
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
const logic = createWindowLogic({ specs: d.specs, latenessMs: d.latenessMs, seriesMax: d.seriesMax });
const state = logic.init();
const specIndex = new Map(d.specs.map((s, i) => [s.label, i]));
const dec = new Decoder();
const enc = new Encoder();
const columns = new BatchColumns(limits.batchEventsMax);
const scratch = new Uint8Array(inRing.messageBytesMax);
let windows: WindowRow[] = [];
let late: LateRow[] = [];
let closedMs = 0;
let stopping = false;
let paused = false; // failpoint "pause": beat but take no input, so tests can fill the ring

const emit = (r: WindowResult | LateEvent): void => {
  if (r.kind === "late") {
    late.push([r.sid, r.ts, r.value]);
    return;
  }
  windows.push([r.sid, specIndex.get(r.spec)!, r.start, r.end, r.count, r.sum, r.min, r.max, r.p50, r.p95, r.p99, r.first, r.last, closedMs]);
};

/** Pushes pending results; false while the output ring has no room. */
function flushOut(): boolean {
  while (windows.length > 0 || late.length > 0) {
    const w = windows.slice(0, outRowsPerMessageMax);
    const l = late.slice(0, outRowsPerMessageMax);
    if (!outRing.tryPush(enc.encodeSharedRef({ k: "out", w, late: l }))) return false;
    windows = windows.slice(w.length);
    late = late.slice(l.length);
  }
  return true;
}

function handle(bytes: Uint8Array): void {
  const m = dec.decode(bytes) as Message;
  if (m.k === "ev") {
    const batch = columns.view(m);
    closedMs = batch.recvMs;
    logic.handle(state, batch, emit);
    Atomics.add(stats, partitionStatSlots.events, BigInt(batch.n));
  }
}

function drain(): number {
  let handled = 0;
  while (handled < drainMessagesMax && windows.length + late.length < outRowsPerMessageMax * 4) {
    const len = inRing.popInto(scratch);
    if (len < 0) break;
    handle(scratch.subarray(0, len));
    handled++;
  }
  return handled;
}

function tick(now: number): void {
  closedMs = now;
  logic.tick!(state, now, emit);
}

async function run(): Promise<void> {
  let nextTickMs = 0;
  for (;;) {
    ctx.heartbeat();
    const room = flushOut();
    const handled = room && !paused ? drain() : 0;
    const now = Date.now();
    if (now >= nextTickMs) {
      tick(now);
      nextTickMs = now + limits.workerTickMs;
    }
    flushOut();
    if (stopping && inRing.isEmpty() && windows.length === 0 && late.length === 0) break;
    if (!room || paused) await Bun.sleep(1); // the main thread frees output room; nothing to wait on but time
    else if (handled === 0) {
      // Blocking wait, then a turn of the event loop for control messages. Not
      // waitForDataAsync: in Bun 1.4.5 Atomics.waitAsync inside a worker never
      // resolves, neither on notify nor on timeout (seen here; test/ring.test.ts).
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
