/**
 * Ingest in two halves: parseEvents (validation, series by signature; runs
 * on an ingest worker) and Ingest.acceptParsed (ids, de-duplication,
 * routing; runs where the registry is). Refusals from both halves come
 * back in body order, each with its event for the dead-letter list.
 */
import { describe, expect, test } from "bun:test";
import { DedupeSet } from "../src/actors/dedupe.ts";
import { parseEvents } from "../src/actors/ingest-parse.ts";
import { Ingest } from "../src/actors/ingest.ts";
import { SeriesBudget } from "../src/actors/series-budget.ts";
import { SeriesRegistry } from "../src/actors/series-registry.ts";

const bounds = { maxEventAgeMs: 7 * 86_400_000, maxFutureSkewMs: 300_000 };
const now = 1_700_000_000_000;

describe("ingest parse", () => {
  test("ingest parse - valid events columnar in body order, one entry per distinct series, ids only when carried, refusals by index", () => {
    const p = parseEvents([
      { name: "cpu", value: 2, ts: now - 5, tags: { host: "a" } },
      { name: "9bad" },
      { name: "cpu", value: 3, ts: now - 4, tags: { host: "a" }, id: "e1" },
      { name: "mem", ts: now - 3 },
      { name: "cpu", value: 4, ts: now + 400_000 },
    ], now, bounds);
    expect({ n: p.n, index: [...p.index.subarray(0, p.n)], ts: [...p.ts.subarray(0, p.n)], value: [...p.value.subarray(0, p.n)], series: [...p.series.subarray(0, p.n)] })
      .toEqual({ n: 3, index: [0, 2, 3], ts: [now - 5, now - 4, now - 3], value: [2, 3, 1], series: [0, 0, 1] });
    expect(p.distinct).toEqual([{ sig: "cpu\u0000host\u0000a", name: "cpu", tags: { host: "a" } }, { sig: "mem", name: "mem", tags: undefined }]);
    expect(p.ids).toEqual([undefined, "e1", undefined, undefined, undefined]);
    expect(p.rejects.map((r) => [r.index, r.error, r.reason])).toEqual([
      [1, "name: must match ^[A-Za-z_][A-Za-z0-9_.:-]*$", "invalid"],
      [4, "ts: further ahead than WEIR_MAX_FUTURE_SKEW", "out_of_range"],
    ]);
    expect(parseEvents([{ name: "a" }], now, bounds).ids).toBeNull();
  });

  test("ingest parse - a value with a NUL is its own entry, found by key: two such events are one series", () => {
    const registry = new SeriesRegistry(2, 10);
    const ingest = new Ingest({ partitions: 2, registry, bounds, dedupe: new DedupeSet(600_000) });
    const ev = { name: "x", ts: now, tags: { v: "a\u0000b" } };
    const p = parseEvents([ev, ev], now, bounds);
    expect(p.distinct.map((d) => d.sig)).toEqual([null, null]);
    expect(ingest.acceptParsed(p, now).accepted).toBe(2);
    ingest.commit();
    expect(registry.size).toBe(1);
  });

  test("ingest parse - over WEIR_MAX_SERIES: refused with the parse refusals in body order, the event as validated kept for the dead letters", () => {
    const registry = new SeriesRegistry(2, 2);
    const ingest = new Ingest({ partitions: 2, registry, bounds, dedupe: new DedupeSet(600_000) });
    const out = ingest.accept([
      { name: "s1", ts: now },
      { name: "s2", ts: now },
      { name: "s3", value: 7, ts: now, tags: { k: "v" }, props: { why: "dropped" } },
      { name: "?" },
      { name: "s1", ts: now, value: 5 },
    ], now);
    expect({ accepted: out.accepted, rejected: out.rejected, reasons: out.reasons, errors: out.errors }).toEqual({
      accepted: 3, rejected: 2, reasons: { series_limit: 1, invalid: 1 },
      errors: [
        { index: 2, error: "series: limit of 2 series reached (WEIR_MAX_SERIES)" },
        { index: 3, error: "name: must match ^[A-Za-z_][A-Za-z0-9_.:-]*$" },
      ],
    });
    expect(out.rejects.map((r) => r.event)).toEqual([{ name: "s3", tags: { k: "v" }, ts: now, value: 7 }, { name: "?" }]);
    ingest.commit();
    expect(registry.size).toBe(2);
  });

  test("ingest parse - over WEIR_NEW_SERIES_RATE: new series past the budget refused per event naming it, known ones flow; a refused request spends nothing; the budget refills", () => {
    const registry = new SeriesRegistry(2, 1_000);
    const budget = new SeriesBudget(2, 3, now); // 2 a second, bursts of 3
    const ingest = new Ingest({ partitions: 2, registry, bounds, dedupe: new DedupeSet(600_000), newSeries: budget });
    const out = ingest.accept(["n1", "n2", "n3", "n4", "n1", "n5"].map((name) => ({ name, ts: now })), now);
    expect({ accepted: out.accepted, reasons: out.reasons, errors: out.errors }).toEqual({
      accepted: 4, reasons: { series_rate: 2 },
      errors: [3, 5].map((index) => ({ index, error: "series: new series over WEIR_NEW_SERIES_RATE (2/s, bursts of 3); send it again later" })),
    });
    // Not committed (a 503 after this, say): nothing was spent.
    expect(budget.available(now)).toBe(3);
    ingest.accept(["n1", "n2", "n3"].map((name) => ({ name, ts: now })), now);
    ingest.commit();
    expect([registry.size, budget.available(now)]).toEqual([3, 0]);
    const later = ingest.accept([{ name: "n1", ts: now }, { name: "n9", ts: now }], now + 100); // known: flows; new: refused
    expect([later.accepted, later.reasons]).toEqual([1, { series_rate: 1 }]);
    expect(budget.available(now + 1_000)).toBe(2); // refilled at 2 a second
    expect(budget.available(now + 60_000)).toBe(3); // never past the burst
  });

  test("ingest parse - ids: a re-sent id within the request and one remembered are duplicates, accepted and routed nowhere", () => {
    const registry = new SeriesRegistry(2, 10);
    const dedupe = new DedupeSet(600_000);
    const ingest = new Ingest({ partitions: 2, registry, bounds, dedupe });
    expect(ingest.accept([{ name: "a", ts: now, id: "x" }, { name: "a", ts: now, id: "x" }], now)).toMatchObject({ accepted: 2, duplicates: 1 });
    ingest.commit();
    expect(ingest.acceptParsed(parseEvents([{ name: "a", ts: now, id: "x" }, { name: "a", ts: now, id: "y" }], now, bounds), now))
      .toMatchObject({ accepted: 2, duplicates: 1 });
    expect(ingest.eventsFor(0) + ingest.eventsFor(1)).toBe(1);
  });
});
