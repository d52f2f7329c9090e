import { describe, expect, test } from "bun:test";
import { DedupeSet } from "../src/actors/dedupe.ts";

describe("dedupe - ids within the horizon", () => {
  test("dedupe - an id is held until its horizon passes", () => {
    const d = new DedupeSet(600_000);
    expect(d.has("a", 0)).toBe(false);
    d.add("a", 0);
    expect(d.has("a", 1000)).toBe(true);
    expect(d.has("b", 1000)).toBe(false);
    expect(d.has("a", 599_000)).toBe(true);
    expect(d.has("a", 600_000)).toBe(false);
    expect(d.size).toBe(0);
  });

  test("dedupe - rollbackTo forgets exactly the ids added since the mark, across table growth", () => {
    const d = new DedupeSet(600_000);
    for (let i = 0; i < 1500; i++) d.add(`old-${i}`, 0);
    const m = d.mark();
    for (let i = 0; i < 3000; i++) d.add(`new-${i}`, 10); // grows the table and the FIFO past their first size
    d.add("old-7", 10); // held already: not added again, so not rolled back either
    d.rollbackTo(m);
    expect(d.size).toBe(1500);
    expect([d.has("old-0", 20), d.has("old-7", 20), d.has("old-1499", 20)]).toEqual([true, true, true]);
    expect([d.has("new-0", 20), d.has("new-2999", 20)]).toEqual([false, false]);
    d.add("new-0", 30); // and it can be added again
    expect(d.has("new-0", 40)).toBe(true);
    expect(d.has("old-0", 600_000)).toBe(false); // the survivors still expire on time
    expect(d.has("new-0", 600_000)).toBe(true);
  });

  test("dedupe - 200,000 ids with growth and expiry agree with a Set over the same horizon", () => {
    const d = new DedupeSet(10_000);
    const ref = new Map<string, number>();
    let mismatches = 0;
    for (let i = 0; i < 200_000; i++) {
      const now = i * 10; // 100 ids per second of clock: ~1,000 held at a time
      const id = `id-${(i * 7919) % 150_000}`;
      for (const [k, t] of ref) if (t + 10_000 <= now) ref.delete(k); else break;
      const want = ref.has(id);
      if (d.has(id, now) !== want) mismatches++;
      if (!want) {
        d.add(id, now);
        ref.set(id, now);
      }
    }
    expect(mismatches).toBe(0);
    expect(d.size).toBe(ref.size);
  });

  test("dedupe - past idsMax the oldest ids go early and are counted; memory does not grow", () => {
    const d = new DedupeSet(600_000, 1000);
    for (let i = 0; i < 5000; i++) d.add(`x${i}`, 0);
    expect(d.size).toBe(1000);
    expect(d.evicted).toBe(4000);
    expect(d.has("x4999", 1)).toBe(true);
    expect(d.has("x0", 1)).toBe(false);
  });
});
