/**
 * A single-producer/single-consumer byte ring on one SharedArrayBuffer, after
 * ringbuf.js: one thread pushes variable-length messages, another pops them,
 * and neither takes a lock.
 *
 * Layout: a 256-byte header, then a data area of `capacityBytes`, a power of
 * two so a position is `counter & mask`. The write and read counters count
 * bytes since creation mod 2^32, so `write - read` is the bytes in use; each
 * sits on its own 64-byte line so the threads do not share a cache line. A
 * record is `[i32 length][payload]` padded to 4 bytes. A record that does not
 * fit before the end goes to 0 behind a wrap marker: payloads stay contiguous
 * and popping is one copy, at the price of the wasted tail. Hence
 * `capacityBytes >= 2 * (4 + messageBytesMax)`, so that an empty ring always
 * takes a maximal message wherever its counters stand.
 *
 * Ordering: the producer writes a record, then publishes it by Atomics.store
 * of the write counter; the consumer Atomics.loads that counter before it
 * reads the bytes, and frees them the same way. JS atomics are sequentially
 * consistent, which also makes the sleeping flag safe (see sleepIfEmpty).
 */
import { strict as assert } from "node:assert";
import { limits } from "./limits.ts";

const headerBytes = 256;
const slotMagic = 0; // header slots are Int32Array indices
const slotCapacity = 1;
const slotMessageMax = 2;
const slotWrite = 16; // byte 64: written by the producer only
const slotRead = 32; // byte 128: written by the consumer only
const slotSleeping = 48; // byte 192: 1 while the consumer waits
const magic = 0x57524e47; // "WRNG"
const recordHeaderBytes = 4;
const wrapMarker = -1;
// Up to this many payload bytes, popInto copies in a loop; above, it allocates
// one view for set(). Measured in Bun 1.4.5: 16 B loop 14 ns vs set 68 ns,
// 64 B both 52 ns, 82 kB loop 46 µs vs set 1.4 µs.
const loopCopyBytesMax = 64;

assert(2 * (recordHeaderBytes + limits.ringMessageBytesMax) <= limits.ringBytesDefault, "two maximal records fit");

const pad4 = (n: number): number => (n + 3) & ~3;
const recordBytes = (byteLength: number): number => recordHeaderBytes + pad4(byteLength);

/**
 * @example
 *   const ring = Ring.create(1 << 20); worker.postMessage({ sab: ring.sab }); // main thread
 *   if (!Ring.attach(sab).tryPush(bytes)) backOff(); // in the worker: full is a return value
 *   const n = ring.popInto(scratch); // -1 when empty
 */
export class Ring {
  readonly sab: SharedArrayBuffer;
  readonly capacityBytes: number;
  readonly messageBytesMax: number;
  private readonly header: Int32Array;
  private readonly data: Uint8Array;
  private readonly words: Int32Array; // the data area again, for record lengths
  private readonly mask: number;

  /**
   * Allocates a ring. `capacityBytes` is rounded up to a power of two;
   * `messageBytesMax` defaults to the largest the capacity allows, capped at
   * `limits.ringMessageBytesMax`.
   * @example const ring = Ring.create(limits.ringBytesDefault);
   */
  static create(capacityBytes: number, messageBytesMax?: number): Ring {
    if (!(capacityBytes >= 1 && capacityBytes <= limits.ringBytesMax)) {
      throw new RangeError(`ring capacity ${capacityBytes} outside 1..${limits.ringBytesMax} bytes`);
    }
    const capacity = Math.max(limits.ringBytesMin, 2 ** Math.ceil(Math.log2(capacityBytes)));
    const largest = capacity / 2 - recordHeaderBytes;
    const messageMax = messageBytesMax ?? Math.min(largest, limits.ringMessageBytesMax);
    if (!(Number.isInteger(messageMax) && messageMax >= 0 && messageMax <= largest)) {
      throw new RangeError(`messageBytesMax ${messageMax} outside 0..${largest} for a ${capacity}-byte ring`);
    }
    const sab = new SharedArrayBuffer(headerBytes + capacity);
    const header = new Int32Array(sab, 0, headerBytes / 4);
    header[slotCapacity] = capacity;
    header[slotMessageMax] = messageMax;
    header[slotMagic] = magic; // plain stores: postMessage of the sab publishes them
    return new Ring(sab);
  }

  /** The other thread's view of a ring made by create(). @example const ring = Ring.attach(e.data.sab); */
  static attach(sab: SharedArrayBuffer): Ring {
    return new Ring(sab);
  }

  private constructor(sab: SharedArrayBuffer) {
    const header = new Int32Array(sab, 0, headerBytes / 4);
    const capacity = header[slotCapacity];
    assert(header[slotMagic] === magic, "not a ring buffer");
    assert(sab.byteLength === headerBytes + capacity && (capacity & (capacity - 1)) === 0, "ring header corrupt");
    this.sab = sab;
    this.capacityBytes = capacity;
    this.messageBytesMax = header[slotMessageMax];
    this.header = header;
    this.data = new Uint8Array(sab, headerBytes, capacity);
    this.words = new Int32Array(sab, headerBytes, capacity / 4);
    this.mask = capacity - 1;
  }

  /**
   * Producer: copies `bytes` in as one message. False when there is no room
   * now; never blocks. Zero-length messages are allowed (e.g. end of stream).
   * @example while (!ring.tryPush(batch)) Atomics.wait(idle, 0, 0, 1);
   */
  tryPush(bytes: Uint8Array): boolean {
    const byteLength = bytes.length;
    if (byteLength > this.messageBytesMax) {
      throw new RangeError(`message of ${byteLength} bytes exceeds messageBytesMax ${this.messageBytesMax}`);
    }
    const write = Atomics.load(this.header, slotWrite);
    const cost = this.costAt(write, byteLength);
    if (this.freeBytes(write) < cost) return false;
    let at = write & this.mask;
    if (cost > recordBytes(byteLength)) {
      this.words[at >> 2] = wrapMarker;
      at = 0;
    }
    this.words[at >> 2] = byteLength;
    this.data.set(bytes, at + recordHeaderBytes);
    Atomics.store(this.header, slotWrite, (write + cost) | 0); // release: the record is complete
    // Only a sleeping consumer needs the notify syscall.
    if (Atomics.load(this.header, slotSleeping) !== 0) Atomics.notify(this.header, slotWrite);
    return true;
  }

  /**
   * Producer: would a message of this length fit now? Only the consumer frees
   * space, so a true stays true until this producer pushes.
   * @example if (!ring.canPush(bytes.length)) return reply429();
   */
  canPush(byteLength: number): boolean {
    const write = Atomics.load(this.header, slotWrite);
    return byteLength <= this.messageBytesMax && this.costAt(write, byteLength) <= this.freeBytes(write);
  }

  /**
   * Producer: would all these messages, pushed in this order, fit now? Lets a
   * caller accept a request all-or-nothing across several pushes.
   * @example if (!ring.canPushAll(parts.map((p) => p.length))) return reply429();
   */
  canPushAll(byteLengths: readonly number[]): boolean {
    const start = Atomics.load(this.header, slotWrite);
    const free = this.freeBytes(start);
    let write = start;
    for (const byteLength of byteLengths) {
      if (byteLength > this.messageBytesMax) return false;
      write += this.costAt(write, byteLength);
      if (write - start > free) return false;
    }
    return true;
  }

  /**
   * Consumer: copies the next message into `scratch` and returns its length,
   * or -1 when empty. Up to 64 bytes it allocates nothing; a longer message
   * costs one view object (see loopCopyBytesMax). `scratch` must hold
   * `messageBytesMax` bytes, checked on every call so a short buffer fails at
   * once, not on the first big message.
   * @example const scratch = new Uint8Array(ring.messageBytesMax);
   *          for (let n; (n = ring.popInto(scratch)) >= 0; ) handle(scratch, n);
   */
  popInto(scratch: Uint8Array): number {
    if (scratch.length < this.messageBytesMax) {
      throw new RangeError(`scratch of ${scratch.length} bytes is below messageBytesMax ${this.messageBytesMax}`);
    }
    const read = Atomics.load(this.header, slotRead);
    if (Atomics.load(this.header, slotWrite) === read) return -1; // acquire
    const at = this.recordAt(read);
    const byteLength = this.words[at >> 2];
    const from = at + recordHeaderBytes;
    if (byteLength <= loopCopyBytesMax) {
      for (let i = 0; i < byteLength; i++) scratch[i] = this.data[from + i];
    } else {
      // The one allocation on this path: a view object (no bytes) so set() can memcpy.
      scratch.set(this.data.subarray(from, from + byteLength));
    }
    this.release(read, at, byteLength);
    return byteLength;
  }

  /** Consumer: a fresh copy of the next message, or null when empty. @example const b = ring.tryPop(); */
  tryPop(): Uint8Array | null {
    const read = Atomics.load(this.header, slotRead);
    if (Atomics.load(this.header, slotWrite) === read) return null;
    const at = this.recordAt(read);
    const byteLength = this.words[at >> 2];
    const copy = this.data.slice(at + recordHeaderBytes, at + recordHeaderBytes + byteLength);
    this.release(read, at, byteLength);
    return copy;
  }

  /** Bytes in use, headers and wrap waste included; approximate while the other side moves. @example gauge.set(ring.usedBytes()); */
  usedBytes(): number {
    return (Atomics.load(this.header, slotWrite) - Atomics.load(this.header, slotRead)) >>> 0;
  }

  /** @example if (ring.isEmpty()) await ring.waitForDataAsync(50); */
  isEmpty(): boolean {
    return Atomics.load(this.header, slotWrite) === Atomics.load(this.header, slotRead);
  }

  /**
   * Consumer on a worker thread: blocks until a message may be there or
   * `timeoutMs` passes. True if a message is there.
   * @example while (running) if (ring.waitForData(limits.workerTickMs)) drain(ring);
   */
  waitForData(timeoutMs: number): boolean {
    const write = this.sleepIfEmpty();
    if (write === null) return true;
    // Wakes on notify, or at once with "not-equal" if the producer moved on meanwhile.
    Atomics.wait(this.header, slotWrite, write, timeoutMs);
    Atomics.store(this.header, slotSleeping, 0);
    return !this.isEmpty();
  }

  /**
   * Consumer on the main thread, which must not block: resolves true when a
   * message is there, false when `timeoutMs` passes with none.
   * @example while (running) if (await ring.waitForDataAsync(50)) drain(ring);
   */
  async waitForDataAsync(timeoutMs: number): Promise<boolean> {
    const write = this.sleepIfEmpty();
    if (write === null) return true;
    const waiting = Atomics.waitAsync(this.header, slotWrite, write, timeoutMs);
    if (waiting.async) await waiting.value;
    Atomics.store(this.header, slotSleeping, 0);
    return !this.isEmpty();
  }

  /**
   * Sets the sleeping flag, then looks again: a producer that published before
   * seeing the flag will not notify, so this second look is what prevents a
   * lost wake-up. Returns the write counter to wait on, or null if data came.
   */
  private sleepIfEmpty(): number | null {
    if (!this.isEmpty()) return null;
    Atomics.store(this.header, slotSleeping, 1);
    const write = Atomics.load(this.header, slotWrite);
    if (write !== Atomics.load(this.header, slotRead)) {
      Atomics.store(this.header, slotSleeping, 0);
      return null;
    }
    return write;
  }

  /** Bytes a record of this length takes when written at `write`, wrap waste included. */
  private costAt(write: number, byteLength: number): number {
    const record = recordBytes(byteLength);
    const tail = this.capacityBytes - (write & this.mask);
    return record <= tail ? record : tail + record;
  }

  private freeBytes(write: number): number {
    return this.capacityBytes - ((write - Atomics.load(this.header, slotRead)) >>> 0);
  }

  /** Data offset of the record at `read`, past a wrap marker if there is one. */
  private recordAt(read: number): number {
    const at = read & this.mask;
    return this.words[at >> 2] === wrapMarker ? 0 : at;
  }

  /** Hands the record's bytes (and any wrap waste before it) back to the producer. */
  private release(read: number, at: number, byteLength: number): void {
    const skipped = at === (read & this.mask) ? 0 : this.capacityBytes - (read & this.mask);
    Atomics.store(this.header, slotRead, (read + skipped + recordBytes(byteLength)) | 0);
  }
}
