/**
 * The receive clock, shared between ingest and the partition workers so a
 * worker's quiet rule never runs ahead of data still on its way to it.
 *
 * Ingest stamps each request's receive time with stamp(), which first
 * publishes "a request is in flight since at most now" in a shared slot;
 * the slot is cleared with idle() once every stamped request's batches are
 * on the rings (or refused). A worker asks now(): the wall clock, held back
 * to that slot. It reads the wall clock before the slot, and checks its
 * input ring only after both, so any batch stamped before its reading is
 * either announced by the slot or already on the ring:
 *
 *   ingest: slot ← t0 = Date.now(); recv = Date.now() (≥ t0); …push…; slot ← idle
 *   worker: n = Date.now(); f = slot; ring empty? → tick(min(n, f))
 *
 * If the worker read the slot before ingest wrote it, ingest's t0 and recv
 * come after the worker's n; if after, f ≤ t0 ≤ recv. Either way the tick is
 * not later than the receive time of any batch it has not handled yet.
 *
 * @example
 *   const clock = IngestClock.create();          // engine
 *   const recvMs = clock.stamp(); …; clock.idle();
 *   const w = IngestClock.attach(clock.sab);      // worker
 *   const nowMs = w.now(); if (ring.isEmpty()) pipeline.tick(nowMs);
 */

/** The slot's value while nothing stamped is waiting to be pushed. */
const idleSlot = BigInt(Number.MAX_SAFE_INTEGER);

export class IngestClock {
  private readonly slot: BigInt64Array;
  private inFlight = false;

  private constructor(readonly sab: SharedArrayBuffer) {
    this.slot = new BigInt64Array(sab);
  }

  static create(): IngestClock {
    const c = new IngestClock(new SharedArrayBuffer(8));
    Atomics.store(c.slot, 0, idleSlot);
    return c;
  }

  static attach(sab: SharedArrayBuffer): IngestClock {
    return new IngestClock(sab);
  }

  /** Ingest: a receive time for a request, announced to the workers before it is taken. */
  stamp(): number {
    if (!this.inFlight) {
      Atomics.store(this.slot, 0, BigInt(Date.now()));
      this.inFlight = true;
    }
    return Date.now();
  }

  /** Ingest: every stamped request's batches are on the rings, or refused. */
  idle(): void {
    this.inFlight = false;
    Atomics.store(this.slot, 0, idleSlot);
  }

  /** Worker: the wall clock, but not past the oldest receive time still in flight. */
  now(): number {
    const wall = Date.now();
    const floor = Number(Atomics.load(this.slot, 0));
    return floor < wall ? floor : wall;
  }
}
