/**
 * The series registry's cluster-mode parts: a partition taken over adopts
 * the previous owner's local ids (its checkpoint's state refers to them),
 * series known here that the owner did not list follow, and global ids
 * never change; keys parse back into the name and tags they were made of.
 */
import { describe, expect, test } from "bun:test";
import { SeriesRegistry } from "../src/actors/series-registry.ts";
import { parseSeriesKey, partitionOf, seriesKey } from "../src/runtime/series.ts";

/** Series names whose keys land in partition 0 of 2. */
const inP0 = Array.from({ length: 40 }, (_, i) => `s${i}`).filter((k) => partitionOf(k, 2) === 0).slice(0, 4);

describe("series registry", () => {
  test("series registry - adoptPartition: local ids become the owner's list; series known here and not listed follow; global ids unchanged", () => {
    const added: string[] = [];
    const reg = new SeriesRegistry(2, 1_000, (s) => added.push(s.key));
    const [a, b, c, d] = inP0;
    const gA = reg.register(a, a, undefined);
    const gB = reg.register(b, b, undefined);
    added.length = 0;
    // The owner had d at 0, b at 1, c at 2; this process knew a and b (a, unknown to the owner, registered after its checkpoint).
    reg.adoptPartition(0, [d, b, c].map((k) => ({ key: k, name: k, tags: {} })));
    expect(reg.partitionSeries(0).map((s) => s.key)).toEqual([d, b, c, a]);
    expect([0, 1, 2, 3].map((l) => reg.keyOf(0, l))).toEqual([d, b, c, a]);
    expect([reg.idOf(a), reg.idOf(b), reg.localOf(gA), reg.localOf(gB)]).toEqual([gA, gB, 3, 1]);
    expect(reg.idAt(0, 0)).toBe(reg.idOf(d)!);
    expect(added).toEqual([d, c]); // new here: written to the store
    expect(() => reg.adoptPartition(0, [d, d].map((k) => ({ key: k, name: k, tags: {} })))).toThrow(`series ${d} twice in partition 0's list`);
  });

  test("series registry - restoreUnordered takes the next local id whatever the store said, once per key", () => {
    const reg = new SeriesRegistry(2, 1_000);
    const [a, b] = inP0;
    reg.restoreUnordered({ key: b, name: b, tags: {}, partition: 0 });
    reg.restoreUnordered({ key: a, name: a, tags: {}, partition: 0 });
    reg.restoreUnordered({ key: a, name: a, tags: {}, partition: 0 });
    expect([reg.keyOf(0, 0), reg.keyOf(0, 1), reg.size]).toEqual([b, a, 2]);
  });

  test("series registry - a key parses back into its name and tags, escapes included; a malformed key is null", () => {
    for (const [name, tags] of [["cpu", {}], ["cpu", { host: "a", dc: "x" }], ["m", { a: 'q"u\\o\nte', b: "" }], ["x", { k: 'a,b="c"' }]] as const) {
      const key = seriesKey(name, tags as Record<string, string>);
      expect(parseSeriesKey(key)).toEqual({ name, tags: { ...tags } });
    }
    expect([parseSeriesKey(""), parseSeriesKey("{a=\"b\"}"), parseSeriesKey('m{a="b"'), parseSeriesKey('m{a=b}'), parseSeriesKey('m{a="b"c="d"}')]).toEqual([null, null, null, null, null]);
  });
});
