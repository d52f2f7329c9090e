import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeadLetters } from "../src/actors/deadletters.ts";
import { postEvents, startTestWeir } from "./helpers/weir.ts";

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

describe("deadletters - across restarts", () => {
  test("deadletters - takeFresh hands over what was added since the last call, oldest first, late ones described; restore puts stored ones back without handing them over again", () => {
    const dl = new DeadLetters(3, (id, ts, value) => ({ id, ts, value }));
    dl.addRejected(1, "a", { n: 1 });
    dl.addLate(2, 7, 100, 1.5);
    expect(dl.takeFresh()).toEqual([{ ts: 1, reason: "a", event: { n: 1 } }, { ts: 2, reason: "late", event: { id: 7, ts: 100, value: 1.5 } }]);
    expect(dl.takeFresh()).toEqual([]);
    for (let i = 0; i < 5; i++) dl.addRejected(10 + i, `r${i}`, i, { nats: { seq: i } });
    expect(dl.takeFresh().map((d) => d.ts)).toEqual([12, 13, 14]); // the bound: the two overwritten are gone
    const again = new DeadLetters(3, () => null);
    again.restore([{ ts: 2, reason: "late", event: { id: 7 } }, { ts: 14, reason: "r4", event: 4, source: { nats: { seq: 4 } } }]);
    expect(again.takeFresh()).toEqual([]);
    expect(again.list(0, 10)).toEqual([{ ts: 14, reason: "r4", event: 4, source: { nats: { seq: 4 } } }, { ts: 2, reason: "late", event: { id: 7 } }]);
  });

  test("deadletters - the list survives a restart of weir on the same data directory, as it was listed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-dl-"));
    try {
      const w = await startTestWeir({}, dir);
      const r = await postEvents(w.url, JSON.stringify([{ name: "ok", value: 1 }, { name: "9bad", value: 1 }, { name: "x", value: "NaN" }, { name: "y", ts: 1 }]));
      expect([r.status, r.body.rejected]).toEqual([202, 3]);
      const before = await (await fetch(`${w.url}/api/v1/deadletters`)).json();
      expect((before as { deadletters: unknown[] }).deadletters.length).toBe(3);
      await w.stop();
      const w2 = await startTestWeir({}, dir);
      const after = await (await fetch(`${w2.url}/api/v1/deadletters`)).json();
      await w2.stop();
      expect(after).toEqual(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
