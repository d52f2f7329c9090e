/**
 * A mergeable count of distinct values (a view's count_distinct): exact up
 * to limits.viewDistinctExactMax values, then a HyperLogLog (Flajolet et
 * al. 2007) of 2^12 one-byte registers (standard error 1.04/√4096 ≈ 1.6 %),
 * with linear counting while many registers are empty. A merge of two exact
 * sets stays exact while the union fits; anything merged into a
 * HyperLogLog is added register by register (max), so merging is
 * associative and commutative and the estimate does not depend on the
 * order of adds and merges.
 *
 * @example
 *   const d = new DistinctCounter();
 *   d.add("u1"); d.add("u2"); d.add("u1");
 *   d.estimate(); // 2 (exact)
 *   const e = DistinctCounter.restore(d.snapshot());
 */
import { limits } from "../../runtime/limits.ts";

const p = 12;
const m = 1 << p;
const alphaM = 0.7213 / (1 + 1.079 / m);

/** Plain data: the exact values, or the registers. */
export type DistinctSnapshot = { s: string[] } | { r: Uint8Array };

export class DistinctCounter {
  private exact: Set<string> | null = new Set();
  private regs: Uint8Array | null = null;

  add(v: string): void {
    if (this.exact !== null) {
      this.exact.add(v);
      if (this.exact.size > limits.viewDistinctExactMax) this.toRegisters();
      return;
    }
    addHash(this.regs!, v);
  }

  merge(o: DistinctCounter): void {
    if (o.exact !== null) {
      for (const v of o.exact) this.add(v);
      return;
    }
    if (this.exact !== null) this.toRegisters();
    const a = this.regs!;
    const b = o.regs!;
    for (let i = 0; i < m; i++) if (b[i] > a[i]) a[i] = b[i];
  }

  estimate(): number {
    if (this.exact !== null) return this.exact.size;
    const r = this.regs!;
    let sum = 0;
    let zeros = 0;
    for (let i = 0; i < m; i++) {
      sum += 2 ** -r[i];
      if (r[i] === 0) zeros++;
    }
    const e = (alphaM * m * m) / sum;
    if (e <= 2.5 * m && zeros > 0) return Math.round(m * Math.log(m / zeros)); // linear counting
    return Math.round(e);
  }

  snapshot(): DistinctSnapshot {
    return this.exact !== null ? { s: [...this.exact] } : { r: this.regs!.slice() };
  }

  static restore(snap: DistinctSnapshot): DistinctCounter {
    const d = new DistinctCounter();
    if ("s" in snap) {
      for (const v of snap.s) d.add(v);
      return d;
    }
    const r = snap.r instanceof Uint8Array ? snap.r : new Uint8Array(snap.r as ArrayLike<number>);
    if (r.length !== m) throw new Error(`distinct counter snapshot: ${r.length} registers, expected ${m}`);
    d.exact = null;
    d.regs = r.slice();
    return d;
  }

  private toRegisters(): void {
    const regs = new Uint8Array(m);
    for (const v of this.exact!) addHash(regs, v);
    this.exact = null;
    this.regs = regs;
  }
}

/** Two independent 32-bit hashes of a string: 12 bits pick the register, the next 32 its run of zeros. */
function addHash(regs: Uint8Array, v: string): void {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  b ^= b >>> 16;
  const idx = a >>> (32 - p);
  const rank = b === 0 ? 33 : Math.clz32(b) + 1;
  if (rank > regs[idx]) regs[idx] = rank;
}
