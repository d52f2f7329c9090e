import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { limits } from "../../src/runtime/limits.ts";
import { compare, fetchWindows, parseSpecs, recount, windowKey, type CheckReport, type WindowAgg } from "./checker.ts";
import { Ledger, ledgerSeries, type LedgerEvent } from "./ledger.ts";
import { parseMetrics } from "./process.ts";

// A hand-made ledger. T is a multiple of every window size, so the windows are easy to list by hand.
const T = 1_700_000_000_000;
const a = ledgerSeries(0).key;
const b = ledgerSeries(1).key;
const e1: LedgerEvent = { id: "e1", series: a, ts: T + 1000, value: 5 };
const e2: LedgerEvent = { id: "e2", series: a, ts: T + 1000, value: 7 }; // same ts as e1, arrived after it
const e3: LedgerEvent = { id: "e3", series: a, ts: T + 12_000, value: -3 };
const e4: LedgerEvent = { id: "e4", series: b, ts: T + 9999, value: 10 };
const acked = [e1, e2, e3, e4];
const specs = parseSpecs("10s,20s/10s");

const w = (series: string, window: string, start: number, size: number, v: Omit<WindowAgg, "series" | "window" | "start" | "end">): WindowAgg =>
  ({ series, window, start, end: start + size, ...v });

/** The windows of `acked`, listed by hand: each event in one 10 s window and the two 20 s windows whose end is in (ts, ts + 20 s]. */
const handWindows: WindowAgg[] = [
  w(a, "10s", T, 10_000, { count: 2, sum: 12, min: 5, max: 7, avg: 6, first: 5, last: 7 }),
  w(a, "10s", T + 10_000, 10_000, { count: 1, sum: -3, min: -3, max: -3, avg: -3, first: -3, last: -3 }),
  w(b, "10s", T, 10_000, { count: 1, sum: 10, min: 10, max: 10, avg: 10, first: 10, last: 10 }),
  w(a, "20s/10s", T - 10_000, 20_000, { count: 2, sum: 12, min: 5, max: 7, avg: 6, first: 5, last: 7 }),
  w(a, "20s/10s", T, 20_000, { count: 3, sum: 9, min: -3, max: 7, avg: 3, first: 5, last: -3 }),
  w(a, "20s/10s", T + 10_000, 20_000, { count: 1, sum: -3, min: -3, max: -3, avg: -3, first: -3, last: -3 }),
  w(b, "20s/10s", T - 10_000, 20_000, { count: 1, sum: 10, min: 10, max: 10, avg: 10, first: 10, last: 10 }),
  w(b, "20s/10s", T, 20_000, { count: 1, sum: 10, min: 10, max: 10, avg: 10, first: 10, last: 10 }),
];
const byKey = (ws: WindowAgg[]) => new Map(ws.map((x) => [windowKey(x.series, x.window, x.start), x]));
const find = (series: string, window: string, start: number) => handWindows.find((x) => x.series === series && x.window === window && x.start === start)!;
const clone = () => handWindows.map((x) => ({ ...x }));

function report(over: Partial<CheckReport>, bySpec: Array<Partial<CheckReport["bySpec"][number]>>): CheckReport {
  const spec = (window: string, o: Partial<CheckReport["bySpec"][number]>) => ({
    window, windowsTotal: 0, windowsEqual: 0, windowsMissing: 0, windowsUnexpected: 0, windowsDiffering: 0, lost: 0, duplicated: 0, ...o,
  });
  return {
    acknowledged: 4, inDoubtUnacked: 0, lost: 0, duplicated: 0, windowsTotal: 8, windowsEqual: 8, windowsMissing: 0,
    windowsUnexpected: 0, windowsDiffering: 0, windowsAmbiguous: 0, lateEvents: 0, mismatches: [], ok: true,
    bySpec: [spec("10s", bySpec[0]), spec("20s/10s", bySpec[1])], ...over,
  };
}
const opts = { acknowledged: 4, lateEvents: 0 };

describe("checker - recount", () => {
  test("checker - specs parse into size and slide", () => {
    expect(parseSpecs("10s,60s/10s")).toEqual([{ label: "10s", sizeMs: 10_000, slideMs: 10_000 }, { label: "60s/10s", sizeMs: 60_000, slideMs: 10_000 }]);
    expect(() => parseSpecs("60s/7s")).toThrow("size a multiple of the slide");
  });

  test("checker - recount lists every window by hand, ties on ts broken by arrival", () => {
    expect(recount(acked, specs)).toEqual(byKey(handWindows));
  });

  test("checker - recount with the default specs puts each event in 1 tumbling and 6 sliding windows", () => {
    const got = [...recount([e3], parseSpecs("10s,60s/10s")).values()];
    expect(got.filter((x) => x.window === "10s").map((x) => x.start)).toEqual([T + 10_000]);
    expect(got.filter((x) => x.window === "60s/10s").map((x) => x.start)).toEqual([-40_000, -30_000, -20_000, -10_000, 0, 10_000].map((d) => T + d));
  });
});

describe("checker - compare", () => {
  const expected = recount(acked, specs);

  test("checker - equal windows give a clean report", () => {
    expect(compare(expected, clone().reverse(), specs, opts)).toEqual(report({}, [{ windowsTotal: 3, windowsEqual: 3 }, { windowsTotal: 5, windowsEqual: 5 }]));
  });

  test("checker - a lost event is a shortfall in each of its windows, counted once as an event", () => {
    // The engine dropped e2: the three windows holding it come out short.
    const rows = clone();
    Object.assign(rows[0], { count: 1, sum: 5, max: 5, avg: 5, last: 5 });
    Object.assign(rows[3], { count: 1, sum: 5, max: 5, avg: 5, last: 5 });
    Object.assign(rows[4], { count: 2, sum: 2, max: 5, avg: 1 });
    expect(compare(expected, rows, specs, opts)).toEqual(report({
      lost: 1, windowsEqual: 5, windowsDiffering: 3, ok: false,
      mismatches: [
        { kind: "differs", series: a, window: "10s", start: T, fields: ["count", "sum", "max", "avg", "last"], expected: find(a, "10s", T), actual: rows[0] },
        { kind: "differs", series: a, window: "20s/10s", start: T - 10_000, fields: ["count", "sum", "max", "avg", "last"], expected: find(a, "20s/10s", T - 10_000), actual: rows[3] },
        { kind: "differs", series: a, window: "20s/10s", start: T, fields: ["count", "sum", "max", "avg"], expected: find(a, "20s/10s", T), actual: rows[4] },
      ],
    }, [{ windowsTotal: 3, windowsEqual: 2, windowsDiffering: 1, lost: 1 }, { windowsTotal: 5, windowsEqual: 3, windowsDiffering: 2, lost: 2 }]));
  });

  test("checker - a duplicated event is an excess in each of its windows", () => {
    // The engine counted e3 twice.
    const rows = clone();
    Object.assign(rows[1], { count: 2, sum: -6 });
    Object.assign(rows[4], { count: 4, sum: 6, avg: 1.5 });
    Object.assign(rows[5], { count: 2, sum: -6 });
    const r = compare(expected, rows, specs, opts);
    expect(r).toEqual(report({
      duplicated: 1, windowsEqual: 5, windowsDiffering: 3, ok: false,
      mismatches: [
        { kind: "differs", series: a, window: "20s/10s", start: T, fields: ["count", "sum", "avg"], expected: find(a, "20s/10s", T), actual: rows[4] },
        { kind: "differs", series: a, window: "10s", start: T + 10_000, fields: ["count", "sum"], expected: find(a, "10s", T + 10_000), actual: rows[1] },
        { kind: "differs", series: a, window: "20s/10s", start: T + 10_000, fields: ["count", "sum"], expected: find(a, "20s/10s", T + 10_000), actual: rows[5] },
      ],
    }, [{ windowsTotal: 3, windowsEqual: 2, windowsDiffering: 1, duplicated: 1 }, { windowsTotal: 5, windowsEqual: 3, windowsDiffering: 2, duplicated: 2 }]));
  });

  test("checker - a missing window loses its whole count", () => {
    const rows = clone().filter((x) => !(x.series === b && x.window === "10s"));
    expect(compare(expected, rows, specs, opts)).toEqual(report({
      lost: 1, windowsEqual: 7, windowsMissing: 1, ok: false,
      mismatches: [{ kind: "missing", series: b, window: "10s", start: T, fields: [], expected: find(b, "10s", T), actual: null }],
    }, [{ windowsTotal: 3, windowsEqual: 2, windowsMissing: 1, lost: 1 }, { windowsTotal: 5, windowsEqual: 5 }]));
  });

  test("checker - an unexpected window duplicates its whole count", () => {
    const extra = w(b, "10s", T + 50_000, 10_000, { count: 2, sum: 1, min: 0, max: 1, avg: 0.5, first: 0, last: 1 });
    expect(compare(expected, [...clone(), extra], specs, opts)).toEqual(report({
      duplicated: 2, windowsTotal: 9, windowsUnexpected: 1, ok: false,
      mismatches: [{ kind: "unexpected", series: b, window: "10s", start: T + 50_000, fields: [], expected: null, actual: extra }],
    }, [{ windowsTotal: 4, windowsEqual: 3, windowsUnexpected: 1, duplicated: 2 }, { windowsTotal: 5, windowsEqual: 5 }]));
  });

  test("checker - windows of an in-doubt, never acknowledged event are ambiguous, not lost or duplicated", () => {
    const e5: LedgerEvent = { id: "e5", series: a, ts: T + 1500, value: 100 };
    const rows = [...recount([...acked, e5], specs).values()]; // the engine kept it: allowed
    expect(compare(expected, rows, specs, { ...opts, inDoubtUnacked: [e5] })).toEqual(report({
      inDoubtUnacked: 1, windowsTotal: 5, windowsEqual: 5, windowsAmbiguous: 3,
    }, [{ windowsTotal: 2, windowsEqual: 2 }, { windowsTotal: 3, windowsEqual: 3 }]));
  });

  test("checker - endMax leaves the windows still open out of the comparison", () => {
    const rows = clone().filter((x) => x.end <= T + 10_000);
    expect(compare(expected, rows, specs, { ...opts, endMax: T + 10_000 })).toEqual(report({
      windowsTotal: 4, windowsEqual: 4,
    }, [{ windowsTotal: 2, windowsEqual: 2 }, { windowsTotal: 2, windowsEqual: 2 }]));
  });

  test("checker - a late event fails the report even when every window is equal", () => {
    expect(compare(expected, clone(), specs, { ...opts, lateEvents: 2 })).toEqual(report({ lateEvents: 2, ok: false },
      [{ windowsTotal: 3, windowsEqual: 3 }, { windowsTotal: 5, windowsEqual: 5 }]));
  });
});

describe("checker - ledger", () => {
  test("ledger - an unanswered attempt is in doubt until its request is acknowledged", () => {
    const l = new Ledger();
    l.recordUnanswered([e1, e2]);
    l.recordUnanswered([e1, e2]);
    expect(l.inDoubtUnacked().map((e) => e.id)).toEqual(["e1", "e2"]);
    l.recordAck([e1, e2]);
    expect({ acked: l.acked.length, inDoubt: l.inDoubt.length, unacked: l.inDoubtUnacked().length, unanswered: l.attemptsUnanswered }).toEqual(
      { acked: 2, inDoubt: 2, unacked: 0, unanswered: 2 });
    expect(() => l.recordAck([e1])).toThrow("acknowledged twice");
  });

  test("ledger - metrics text is summed by name over label sets", () => {
    const m = parseMetrics('# HELP x y\nweir_events_late_total 3\nweir_queue_depth{partition="0"} 5\nweir_queue_depth{partition="1"} 7\n');
    expect([...m]).toEqual([["weir_events_late_total", 3], ["weir_queue_depth", 12]]);
  });
});

describe("checker - fetchWindows", () => {
  // A fake of GET /api/v1/windows with the route's paging: rows with from ≤ start < to, the newest `limit`, oldest first.
  const rowsTotal = Math.floor(limits.queryRowsMax * 2.5);
  const stored = Array.from({ length: rowsTotal }, (_, i) => ({ start: T + i * 10_000, end: T + i * 10_000 + 10_000, count: i + 1, sum: i, min: 0, max: i, avg: i / (i + 1), p50: 0, p95: 0, p99: 0, first: 0, last: i }));
  let server: ReturnType<typeof Bun.serve>;
  let requests = 0;
  beforeAll(() => {
    server = Bun.serve({
      port: 0,
      fetch(req) {
        requests++;
        const q = new URL(req.url).searchParams;
        if (q.get("series") !== a || q.get("window") !== "10s") return Response.json({ series: q.get("series"), window: q.get("window"), windows: [] });
        const from = Number(q.get("from")), to = Number(q.get("to")), limit = Number(q.get("limit"));
        const inRange = stored.filter((r) => r.start >= from && r.start < to);
        return Response.json({ series: a, window: "10s", windows: inRange.slice(Math.max(0, inRange.length - limit)) });
      },
    });
  });
  afterAll(() => server.stop(true));

  test("checker - fetchWindows reads every page of a long series", async () => {
    const rows = await fetchWindows(`http://127.0.0.1:${server.port}`, [a], parseSpecs("10s"));
    expect(requests).toBe(3);
    expect(rows.length).toBe(rowsTotal);
    expect(new Set(rows.map((r) => r.start)).size).toBe(rowsTotal);
    expect(rows.find((r) => r.start === T + 10_000)).toEqual({ series: a, window: "10s", start: T + 10_000, end: T + 20_000, count: 2, sum: 1, min: 0, max: 1, avg: 0.5, first: 0, last: 1 });
  });
});
