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
