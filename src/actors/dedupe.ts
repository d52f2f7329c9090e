/**
 * Event ids seen within WEIR_DEDUPE_WINDOW, for exactly-once counting of
 * re-sent events. Each id is kept as a 64-bit hash (two independent 32-bit
 * FNV-style hashes of its UTF-16 code units) in an open-addressing table of
 * typed arrays with linear probing, plus a FIFO of insertions in arrival
 * order that expires ids past the horizon. Memory: 8 bytes per table slot
 * (the table stays at most half full, so 16–32 bytes per id) plus 16 bytes
 * per FIFO entry (16–32 with its slack): at most 64 bytes per id, 40 in the
 * common case; both grow by doubling up to limits.dedupeIdsMax ids (at most
 * 64 MiB at 1 M ids); an attached base adds 16 bytes per id and 8–16 per
 * id for its table, until its last id leaves. Two different ids are
 * taken for one with probability ≈ n / 2⁶⁴ per lookup (n ids held):
 * below 10⁻¹³ at 1 M ids.
 *
 * When more than dedupeIdsMax ids arrive within the horizon, the oldest are
 * forgotten early and counted (`evicted`): the horizon shrinks, visibly, and
 * memory does not grow.
 *
 * What it holds can be taken out as hash pairs with the time each was
 * added (entriesBetween) and put back (addEntries) with the same outcome as
 * adding the ids again in order: start-up loads them from a persisted index
 * (src/storage/dedupe-index.ts) instead of re-reading the raw log. The
 * index's base comes back whole (attachBase): a read-only table of the
 * oldest ids, consulted after the set's own table and used where it lies,
 * so start-up does no work per id for it; its ids leave as they expire or
 * are evicted, in the same order as if they had been added one by one.
 *
 * The persisted table holds the same 64-bit hash pairs as the set, not
 * shorter fingerprints, so it adds no collision the set did not have (the
 * n / 2⁶⁴ above, taking the two hashes as independent and uniform: 5.4 ×
 * 10⁻¹⁴ per new id at 1 M held, about one wrongly refused event in 100
 * years of 6,000 new ids a second with the set full).
 *
 * @example
 *   const d = new DedupeSet(600_000);
 *   d.has("evt-1", now);   // false
 *   d.add("evt-1", now);
 *   d.has("evt-1", now);   // true until now + 600 s
 */
import { strict as assert } from "node:assert";
import { limits } from "../runtime/limits.ts";

const emptyHi = 0; // a hash pair with hi = 0 is remapped to 1, so 0 marks an empty slot

/** Ids as a DedupeSet holds them: hash pairs (hi never 0) and the time each was added (epoch ms), oldest first. */
export interface DedupeEntries { hi: Uint32Array; lo: Uint32Array; addedMs: Float64Array }

/**
 * Entries with an open-addressing table over them: `slots` (a power of two,
 * more than the entries: some are empty) holds an entry's index + 1, or 0,
 * probed linearly from `lo & (slots.length - 1)`. Built by fillBaseSlots.
 */
export interface DedupeBase extends DedupeEntries { slots: Uint32Array }

/** The table size for a base of `n` entries: a power of two, at most half full. */
export function baseSlotsFor(n: number): number {
  let slots = 16;
  while (slots < 2 * (n + 1)) slots *= 2;
  return slots;
}

/**
 * Puts entries [from, to) of `b` into its table (cleared by the caller
 * before the first call): a base's table is built in slices.
 *
 * @example const b = { ...d.entriesBetween(0, d.mark()), slots: new Uint32Array(baseSlotsFor(d.size)) }; fillBaseSlots(b, 0, b.hi.length);
 */
export function fillBaseSlots(b: DedupeBase, from: number, to: number): void {
  const mask = b.slots.length - 1;
  assert(b.slots.length > b.hi.length && (mask & b.slots.length) === 0, "a base table is a power of two with an empty slot");
  for (let k = from; k < to; k++) {
    let i = b.lo[k] & mask;
    while (b.slots[i] !== 0) i = (i + 1) & mask;
    b.slots[i] = k + 1;
  }
}

export class DedupeSet {
  private hi = new Uint32Array(1024);
  private lo = new Uint32Array(1024);
  private mask = 1023;
  private held = 0;
  /** FIFO of insertions: hash pair and expiry (epoch ms). */
  private fifoHi = new Uint32Array(512);
  private fifoLo = new Uint32Array(512);
  private fifoExpiry = new Float64Array(512);
  private fifoHead = 0;
  private fifoLen = 0;
  /** Ids added so far (never decreases but by rollbackTo): a mark for rollbackTo. */
  private inserted = 0;
  /** The attached base: its entries [baseHead, length) are the oldest ids held, before the FIFO's; null once all are gone. */
  private base: DedupeBase | null = null;
  private baseHead = 0;
  evicted = 0;

  constructor(readonly horizonMs: number, readonly idsMax: number = limits.dedupeIdsMax) {}

  get size(): number {
    return this.held + this.baseHeld();
  }

  /** Whether `id` was added within the horizon before `nowMs`. */
  has(id: string, nowMs: number): boolean {
    this.expire(nowMs);
    hashId(id);
    return this.find(hashHi, hashLo) >= 0 || this.inBase(hashHi, hashLo);
  }

  /**
   * Takes a base (entries oldest first, with their table) as the oldest ids
   * of this empty set, used in place: the same answers as addEntries(base,
   * fromMs), but the entries added before `fromMs` are skipped as a prefix
   * (a FIFO's expiry). Past idsMax the oldest go, counted. Returns how many
   * it holds.
   *
   * @example const d = new DedupeSet(600_000); d.attachBase(read.base, now - 600_000); d.addEntries(delta, now - 600_000);
   */
  attachBase(b: DedupeBase, fromMs: number): number {
    assert(this.inserted === 0 && this.base === null, "a base is attached to an empty set, before any id");
    const n = b.hi.length;
    let head = 0;
    while (head < n && !(b.addedMs[head] >= fromMs)) head++; // a base is oldest first: expired ones lead
    const over = Math.max(0, n - head - this.idsMax);
    this.evicted += over;
    head += over;
    if (head === n) return 0;
    this.base = b;
    this.baseHead = head;
    this.inserted = n - head;
    return n - head;
  }

  /** Remembers `id` from `nowMs` for the horizon. Adding an id already held changes nothing. */
  add(id: string, nowMs: number): void {
    this.expire(nowMs);
    hashId(id);
    this.addHash(hashHi, hashLo, nowMs);
  }

  /**
   * The ids added at marks [from, to) that are still held, oldest first:
   * their hash pairs and the time each was added. A copy.
   *
   * @example const all = d.entriesBetween(0, d.mark()); // then e.g. d2.addEntries(all, now - horizon)
   */
  entriesBetween(from: number, to: number): DedupeEntries {
    const n = this.countBetween(from, to);
    const out: DedupeEntries = { hi: new Uint32Array(n), lo: new Uint32Array(n), addedMs: new Float64Array(n) };
    this.entriesInto(from, to, out);
    return out;
  }

  /** How many ids added at marks [from, to) are still held: the length entriesBetween gives. */
  countBetween(from: number, to: number): number {
    const first = this.inserted - this.fifoLen - this.baseHeld(); // the mark of the oldest id held
    return Math.max(0, Math.min(to, this.inserted) - Math.max(from, first));
  }

  /** entriesBetween into arrays of the caller's (at least countBetween long): a base's bytes are written in place. */
  entriesInto(from: number, to: number, out: DedupeEntries): void {
    const inBase = this.baseHeld();
    const first = this.inserted - this.fifoLen - inBase;
    const a = Math.max(from, first);
    const n = this.countBetween(from, to);
    let k = 0;
    const b = this.base;
    for (let j = a - first; b !== null && k < n && j < inBase; k++, j++) { // the base's part, then the FIFO's
      out.hi[k] = b.hi[this.baseHead + j];
      out.lo[k] = b.lo[this.baseHead + j];
      out.addedMs[k] = b.addedMs[this.baseHead + j];
    }
    const cap = this.fifoHi.length;
    for (let i = (this.fifoHead + Math.max(0, a - first - inBase)) % cap; k < n; k++, i = (i + 1) % cap) {
      out.hi[k] = this.fifoHi[i];
      out.lo[k] = this.fifoLo[i];
      out.addedMs[k] = this.fifoExpiry[i] - this.horizonMs;
    }
  }

  /**
   * Adds entries taken by entriesBetween (of this set or another with any
   * horizon), in order, as add() would have added their ids: each from the
   * time it was first added, for this set's horizon. Entries added before
   * `fromMs` are skipped (already past the horizon). Returns how many were added.
   */
  addEntries(e: DedupeEntries, fromMs: number): number {
    this.reserve(Math.min(this.idsMax, this.held + e.hi.length)); // grown once, not by doubling (each doubling rehashes)
    let n = 0;
    for (let k = 0; k < e.hi.length; k++) {
      const t = e.addedMs[k];
      if (!(t >= fromMs) || e.hi[k] === emptyHi) continue; // an empty slot's mark is no id
      this.expire(t);
      this.addHash(e.hi[k], e.lo[k], t);
      n++;
    }
    return n;
  }

  /** Grows the table and the FIFO to hold `ids` ids without growing again. */
  private reserve(ids: number): void {
    while ((ids + 1) * 2 > this.hi.length) this.growTable();
    while (ids > this.fifoHi.length) this.growFifo();
  }

  private addHash(h: number, l: number, nowMs: number): void {
    if (this.find(h, l) >= 0 || this.inBase(h, l)) return;
    if (this.size >= this.idsMax) this.evictOldest();
    if ((this.held + 1) * 2 > this.hi.length) this.growTable();
    this.insert(h, l);
    this.pushFifo(h, l, nowMs + this.horizonMs);
  }

  /** A mark of the ids added so far. @example const m = d.mark(); d.add("a", now); d.rollbackTo(m); d.has("a", now) // false */
  mark(): number {
    return this.inserted;
  }

  /** Forgets the ids added since `mark`, newest first: their request was refused after all (a failed group commit). */
  rollbackTo(mark: number): void {
    while (this.inserted > mark && this.fifoLen > 0) {
      const i = (this.fifoHead + this.fifoLen - 1) % this.fifoHi.length;
      this.remove(this.fifoHi[i], this.fifoLo[i]);
      this.fifoLen--;
      this.inserted--;
    }
  }

  private expire(nowMs: number): void {
    while (this.base !== null && this.base.addedMs[this.baseHead] + this.horizonMs <= nowMs) this.popBase();
    if (this.base !== null) return; // the base's ids are older than the FIFO's: none of those expires first
    while (this.fifoLen > 0 && this.fifoExpiry[this.fifoHead] <= nowMs) this.popFifo();
  }

  private evictOldest(): void {
    if (this.base !== null) this.popBase();
    else this.popFifo();
    this.evicted++;
  }

  private baseHeld(): number {
    return this.base === null ? 0 : this.base.hi.length - this.baseHead;
  }

  /** The base's oldest id goes: only its head moves (the table keeps it, below the head, so not held); a base emptied is dropped. */
  private popBase(): void {
    this.baseHead++;
    if (this.baseHead === this.base!.hi.length) this.base = null;
  }

  /** Whether the base holds the pair at or after its head. */
  private inBase(h: number, l: number): boolean {
    const b = this.base;
    if (b === null) return false;
    const mask = b.slots.length - 1;
    for (let i = l & mask, probes = 0; probes <= mask; i = (i + 1) & mask, probes++) {
      const r = b.slots[i] - 1;
      if (r < 0) return false;
      if (b.hi[r] === h && b.lo[r] === l) return r >= this.baseHead;
    }
    return false; // a table without an empty slot: not one fillBaseSlots built, but no endless probe either
  }

  private popFifo(): void {
    const i = this.fifoHead;
    this.remove(this.fifoHi[i], this.fifoLo[i]);
    this.fifoHead = (i + 1) % this.fifoHi.length;
    this.fifoLen--;
  }

  private pushFifo(h: number, l: number, expiryMs: number): void {
    if (this.fifoLen === this.fifoHi.length) this.growFifo();
    const i = (this.fifoHead + this.fifoLen) % this.fifoHi.length;
    this.fifoHi[i] = h;
    this.fifoLo[i] = l;
    this.fifoExpiry[i] = expiryMs;
    this.fifoLen++;
    this.inserted++;
  }

  private find(h: number, l: number): number {
    for (let i = l & this.mask; ; i = (i + 1) & this.mask) {
      const x = this.hi[i];
      if (x === emptyHi) return -1;
      if (x === h && this.lo[i] === l) return i;
    }
  }

  private insert(h: number, l: number): void {
    let i = l & this.mask;
    while (this.hi[i] !== emptyHi) i = (i + 1) & this.mask;
    this.hi[i] = h;
    this.lo[i] = l;
    this.held++;
  }

  /** Backward-shift deletion: keeps every probe chain unbroken without tombstones. */
  private remove(h: number, l: number): void {
    let i = this.find(h, l);
    if (i < 0) return;
    this.held--;
    for (let j = (i + 1) & this.mask; this.hi[j] !== emptyHi; j = (j + 1) & this.mask) {
      const home = this.lo[j] & this.mask;
      // Move j back to the hole at i unless its home lies cyclically in (i, j].
      if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
        this.hi[i] = this.hi[j];
        this.lo[i] = this.lo[j];
        i = j;
      }
    }
    this.hi[i] = emptyHi;
    this.lo[i] = 0;
  }

  private growTable(): void {
    const oldHi = this.hi;
    const oldLo = this.lo;
    this.hi = new Uint32Array(oldHi.length * 2);
    this.lo = new Uint32Array(oldHi.length * 2);
    this.mask = this.hi.length - 1;
    this.held = 0;
    for (let i = 0; i < oldHi.length; i++) if (oldHi[i] !== emptyHi) this.insert(oldHi[i], oldLo[i]);
  }

  private growFifo(): void {
    const n = this.fifoHi.length;
    const order = <T extends Uint32Array | Float64Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(n * 2);
      for (let k = 0; k < this.fifoLen; k++) b[k] = a[(this.fifoHead + k) % n];
      return b;
    };
    this.fifoHi = order(this.fifoHi);
    this.fifoLo = order(this.fifoLo);
    this.fifoExpiry = order(this.fifoExpiry);
    this.fifoHead = 0;
  }
}

let hashHi = 0;
let hashLo = 0;

/** Two 32-bit hashes of one string in one pass (FNV-1a, and a murmur-style mix), into hashHi/hashLo. */
function hashId(id: string): void {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  hashHi = (a >>> 0) || 1;
  hashLo = (b ^ (b >>> 16)) >>> 0;
}
