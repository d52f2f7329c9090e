/**
 * The receive clock, shared between ingest and the partition workers so a
 * worker's quiet rule never runs ahead of data still on its way to it.
 *
 * Ingest stamps each request's receive time with stamp(), which first
 * publishes "a request is in flight since at most now" in a shared slot;
 * each request is released once its batches are on the rings (or it was
 * refused), and the slot then holds the oldest receive time still in
 * flight, or nothing. Requests overlap (bodies parse on ingest threads, the
 * durable profile's group waits for its fsync) and finish out of order. A worker asks now(): the wall clock, held back
 * to that slot. It reads the wall clock before the slot, and checks its
 * input ring only after both, so any batch stamped before its reading is
 * either announced by the slot or already on the ring:
 *
 *   ingest: slot ← t0 = Date.now() (if none in flight); recv = Date.now() (≥ t0); …push…; slot ← oldest recv in flight, or idle
 *   worker: n = Date.now(); f = slot; ring empty? → tick(min(n, f))
 *
 * If the worker read the slot before ingest wrote it, ingest's t0 and recv
 * come after the worker's n; if after, f ≤ t0 ≤ recv. Either way the tick is
 * not later than the receive time of any batch it has not handled yet.
 *
 * @example
 *   const clock = IngestClock.create();          // engine
 *   const recvMs = clock.stamp(); …; clock.release(recvMs);
 *   const w = IngestClock.attach(clock.sab);      // worker
 *   const nowMs = w.now(); if (ring.isEmpty()) pipeline.tick(nowMs);
 */

/** The slot's value while nothing stamped is waiting to be pushed. */
const idleSlot = BigInt(Number.MAX_SAFE_INTEGER);

export class IngestClock {
  private readonly slot: BigInt64Array;
  /** Receive times stamped and not yet released, in stamp order (nondecreasing: see stamp()). */
  private readonly held: number[] = [];
  private head = 0;
  /** Released receive times still behind the head (requests finish out of order). */
  private readonly released = new Map<number, number>();
  private last = 0;
  /** Stamped and not released (the held list may still hold released ones behind an older one). */
  private outstanding = 0;
  /** hold(): older receive times still to come (a partition's backlog being caught up), by holder. */
  private readonly holds = new Map<object, number>();

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

  /**
   * Ingest: a receive time for a request, announced to the workers before it
   * is taken; release() it once the request's batches are on the rings or it
   * was refused. Never earlier than the previous one (a wall clock stepped
   * back does not reorder requests).
   */
  stamp(): number {
    if (this.pending === 0) this.publish(Date.now());
    const recvMs = Math.max(Date.now(), this.last);
    this.last = recvMs;
    this.held.push(recvMs);
    this.outstanding++;
    return recvMs;
  }

  /** Ingest: a stamped request's batches are on the rings, or it was refused; the slot moves to the oldest still held. */
  release(recvMs: number): void {
    this.outstanding--;
    this.released.set(recvMs, (this.released.get(recvMs) ?? 0) + 1);
    for (;;) {
      const t = this.held[this.head];
      const n = t === undefined ? 0 : this.released.get(t) ?? 0;
      if (n === 0) break;
      if (n === 1) this.released.delete(t);
      else this.released.set(t, n - 1);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.held.length) {
      this.held.splice(0, this.head); // bounded by the requests in flight (the ingest threads' and the group commit's bounds)
      this.head = 0;
    }
    this.publish(this.pending === 0 ? Number.MAX_SAFE_INTEGER : this.held[this.head]);
  }

  /**
   * Holds the workers' clock at `atMs` until the returned function is
   * called: data received from `atMs` on is still to come (cluster mode: a
   * partition taken over catches up its stream). Several holds: the oldest counts.
   */
  hold(atMs: number): () => void {
    const holder = {};
    this.holds.set(holder, atMs);
    this.publish(this.pending === 0 ? Number.MAX_SAFE_INTEGER : this.held[this.head]);
    return () => {
      if (!this.holds.delete(holder)) return;
      this.publish(this.pending === 0 ? Number.MAX_SAFE_INTEGER : this.held[this.head]);
    };
  }

  /** The oldest hold (+Infinity: none): what a request logged now carries as its watermark cap (Ingest.encode). */
  holdFloor(): number {
    let v = Infinity;
    for (const ms of this.holds.values()) if (ms < v) v = ms;
    return v;
  }

  /** The slot: the oldest of `inFlightMs` (a stamp, or MAX_SAFE_INTEGER for none) and the holds. */
  private publish(inFlightMs: number): void {
    let v = inFlightMs;
    for (const ms of this.holds.values()) if (ms < v) v = ms;
    Atomics.store(this.slot, 0, v === Number.MAX_SAFE_INTEGER ? idleSlot : BigInt(v));
  }

  /** Requests stamped and not yet released. */
  get pending(): number {
    return this.outstanding;
  }

  /** Worker: the wall clock, but not past the oldest receive time still in flight. */
  now(): number {
    const wall = Date.now();
    const floor = Number(Atomics.load(this.slot, 0));
    return floor < wall ? floor : wall;
  }
}
