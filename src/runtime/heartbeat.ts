/**
 * A shared heartbeat board: one slot per supervised worker, each holding the
 * wall-clock time (ms) of that worker's last beat. Workers write their slot
 * from their own loop; the supervisor reads all slots on its check tick. No
 * postMessage is involved, so a beat costs one atomic store.
 *
 * Slots are a BigInt64Array used through Atomics. A plain Float64Array would
 * hold the timestamp, but non-atomic accesses to shared memory may tear in
 * the JavaScript memory model, and Atomics refuses Float64Array. Int32 pairs
 * would tear between the two halves. BigInt64 with Atomics.store/load is
 * untorn and promptly visible across threads; the BigInt built per beat is a
 * small allocation at a few beats per second, not per event.
 *
 * @example
 *   const board = HeartbeatBoard.create(4);          // supervisor
 *   const mine = HeartbeatBoard.attach(board.sab);   // worker, via workerData
 *   mine.beat(2);
 *   board.lastBeatMs(2); // ≈ Date.now()
 */
import { strict as assert } from "node:assert";

const slotBytes = BigInt64Array.BYTES_PER_ELEMENT;

export class HeartbeatBoard {
  readonly sab: SharedArrayBuffer;
  private readonly slots: BigInt64Array;

  private constructor(sab: SharedArrayBuffer) {
    assert(sab instanceof SharedArrayBuffer, "heartbeat board needs a SharedArrayBuffer");
    assert(sab.byteLength > 0 && sab.byteLength % slotBytes === 0, "heartbeat board size is whole slots");
    this.sab = sab;
    this.slots = new BigInt64Array(sab);
  }

  /** A fresh board with `slots` slots, all at 0 (never beaten). */
  static create(slots: number): HeartbeatBoard {
    assert(Number.isInteger(slots) && slots > 0, `heartbeat slots must be a positive integer, got ${slots}`);
    return new HeartbeatBoard(new SharedArrayBuffer(slots * slotBytes));
  }

  /** The same board seen from another thread. */
  static attach(sab: SharedArrayBuffer): HeartbeatBoard {
    return new HeartbeatBoard(sab);
  }

  get slotCount(): number {
    return this.slots.length;
  }

  beat(slot: number, nowMs: number = Date.now()): void {
    this.checkSlot(slot);
    Atomics.store(this.slots, slot, BigInt(Math.trunc(nowMs)));
  }

  /** Time of the slot's last beat in ms, 0 if it never beat since reset. */
  lastBeatMs(slot: number): number {
    this.checkSlot(slot);
    return Number(Atomics.load(this.slots, slot));
  }

  /** Back to "never beaten", before a new worker takes the slot over. */
  reset(slot: number): void {
    this.checkSlot(slot);
    Atomics.store(this.slots, slot, 0n);
  }

  private checkSlot(slot: number): void {
    assert(Number.isInteger(slot) && slot >= 0 && slot < this.slots.length, `heartbeat slot ${slot} out of range`);
  }
}
