import { describe, expect, test } from "bun:test";
import { DeadLetters } from "../src/actors/deadletters.ts";

describe("deadletters - bounded list", () => {
  test("deadletters - newest first, bounded, filtered by since; late events described only when read", () => {
    let described = 0;
    const dl = new DeadLetters(3, (id, ts, value) => (described++, { id, ts, value }));
    for (let i = 1; i <= 5; i++) {
      if (i % 2) dl.addLate(i * 10, i, i * 100, i / 2);
      else dl.addRejected(i * 10, "name: required string", { n: i });
    }
    expect(described).toBe(0);
    expect(dl.size).toBe(3);
    expect(dl.list(0, 10)).toEqual([
      { ts: 50, reason: "late", event: { id: 5, ts: 500, value: 2.5 } },
      { ts: 40, reason: "name: required string", event: { n: 4 } },
      { ts: 30, reason: "late", event: { id: 3, ts: 300, value: 1.5 } },
    ]);
    expect(dl.list(35, 10).map((d) => d.ts)).toEqual([50, 40]);
    expect(dl.list(0, 1).map((d) => d.ts)).toEqual([50]);
    dl.addRejected(60, "value: must be a finite number", { name: "x", value: "y" });
    expect(dl.list(55, 10)).toEqual([{ ts: 60, reason: "value: must be a finite number", event: { name: "x", value: "y" } }]);
  });
});
