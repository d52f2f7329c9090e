import { describe, expect, test } from "bun:test";
import { CommitWatch } from "../src/engine/commit-watch.ts";

describe("commit watch", () => {
  test("commit watch - a record is done once every partition it reached has committed at or past it, in any order", () => {
    const watch = new CommitWatch(3, new Map([[1, { pos: 50 }]]));
    const done: string[] = [];
    watch.whenCommitted(40, [1], () => done.push("already")); // partition 1's checkpoint at 50 covers 40
    watch.whenCommitted(100, [0, 2], () => done.push("r100"));
    watch.whenCommitted(200, [2], () => done.push("r200"));
    watch.whenCommitted(150, [], () => done.push("none")); // no batches: nothing to wait for
    expect([done, watch.size]).toEqual([["already", "none"], 2]);
    watch.committed(2, 250);
    expect([done, watch.size]).toEqual([["already", "none", "r200"], 1]); // r100 waits for partition 0 too
    watch.committed(0, 99);
    expect(done.length).toBe(3);
    watch.committed(0, 100);
    expect([done, watch.size]).toEqual([["already", "none", "r200", "r100"], 0]);
    watch.committed(0, 90); // an older position changes nothing
    expect(watch.position(0)).toBe(100);
  });
});
