import { describe, expect, test } from "bun:test";
import { DeadLetters } from "../src/actors/deadletters.ts";

describe("deadletters - bounded list", () => {
  test("deadletters - newest first, bounded, filtered by since; late events built only when read", () => {
    const dl = new DeadLetters(3);
    let built = 0;
    for (let i = 1; i <= 5; i++) dl.add(i * 10, i % 2 ? "late" : "name: required string", () => (built++, { n: i }));
    expect(built).toBe(0);
    expect(dl.size).toBe(3);
    expect(dl.list(0, 10)).toEqual([
      { ts: 50, reason: "late", event: { n: 5 } },
      { ts: 40, reason: "name: required string", event: { n: 4 } },
      { ts: 30, reason: "late", event: { n: 3 } },
    ]);
    expect(dl.list(35, 10).map((d) => d.ts)).toEqual([50, 40]);
    expect(dl.list(0, 1).map((d) => d.ts)).toEqual([50]);
    dl.add(60, "value: must be a finite number", { name: "x", value: "y" });
    expect(dl.list(55, 10)).toEqual([{ ts: 60, reason: "value: must be a finite number", event: { name: "x", value: "y" } }]);
  });
});
