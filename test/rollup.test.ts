import { describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { readdirSync, readFileSync } from "node:fs";
import { rollupFields, type RollupOption } from "../src/actors/rollup.ts";
import { createWindowLogic, type WindowOutput, type WindowResult, type WindowSnapshot } from "../src/actors/window.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import { limits } from "../src/runtime/limits.ts";
import { float64Of, QuantileSketch, sketchCount } from "../src/sketch/quantile.ts";
import { toBatch, type Event } from "./fixtures/windows/generate.ts";
import { seededStream, type RollupFixture, type Stream } from "./fixtures/windows/rollups/generate.ts";
import { NaiveDelays } from "./helpers/delay-model.ts";

const engineRollups: RollupOption[] = [{ label: "1m", sizeMs: 60_000 }, { label: "1h", sizeMs: 3_600_000 }];
const windowsOf = (out: WindowOutput[]) => out.filter((o): o is WindowResult => o.kind === "window");
const isRollup = (o: WindowOutput) => o.kind === "window" && (o.spec === "1m" || o.spec === "1h");

/** Runs a stream; before each step in `restoreAt` the state goes through snapshot → MessagePack → restore; `watch` sees the state after each step. */
function run(
  s: Stream, rollups: RollupOption[] | undefined, restoreAt: ReadonlySet<number> = new Set(),
  watch?: (i: number, snap: () => WindowSnapshot, openPanes: number) => void,
) {
  const logic = createWindowLogic({ specs: parseWindowSpecs(s.specs), latenessMs: s.latenessMs, seriesMax: s.seriesMax, rollups });
  let st = logic.init();
  const perStep = s.steps.map((step, i) => {
    if (restoreAt.has(i)) st = logic.restore(decode(encode(logic.snapshot(st))));
    const out: WindowOutput[] = [];
    const emit = (o: WindowOutput) => out.push(o);
    if ("tick" in step) logic.tick(st, step.tick, emit);
    else logic.handle(st, toBatch(step.batch, step.recvMs), emit);
    watch?.(i, () => logic.snapshot(st), logic.stats(st).openPanes);
    return out;
  });
  return { perStep, stats: logic.stats(st), snapshot: logic.snapshot(st) };
}

// ---------------------------------------------------------------------------
// The reference: window.ts's contract, rollups included, restated naively.
// Every window (spec or rollup) keeps its own list of accepted events; a
// rollup is just one more tumbling window, listed after the specs.

type RefEvent = { ts: number; v: number; seq: number };
type RefWindow = { kind: number; start: number; end: number; events: RefEvent[] };
type RefSeries = { maxTs: number; closedBefore: number; open: Map<string, RefWindow> };
type Kind = { label: string; sizeMs: number; slideMs: number; rollup: boolean };

function reference(s: Stream, rollups: RollupOption[]): WindowOutput[][] {
  const specs = parseWindowSpecs(s.specs);
  const kinds: Kind[] = [
    ...specs.map((sp) => ({ ...sp, rollup: false })),
    ...rollups.map((r) => ({ label: r.label, sizeMs: r.sizeMs, slideMs: r.sizeMs, rollup: true })),
  ];
  const lateness = s.latenessMs;
  const series = new Map<number, RefSeries>();
  const delays = new NaiveDelays();
  let seq = 0;
  const close = (sid: number, x: RefSeries, c: number, out: WindowOutput[]) => {
    x.closedBefore = c;
    const due = [...x.open.entries()].filter(([, w]) => w.end <= c).sort(([, a], [, b]) => a.end - b.end || a.kind - b.kind);
    for (const [key, w] of due) {
      x.open.delete(key);
      out.push(recount(sid, kinds[w.kind].label, w.start, w.end, w.events));
    }
  };
  return s.steps.map((step) => {
    const out: WindowOutput[] = [];
    if ("tick" in step) {
      for (const sid of [...series.keys()].sort((a, b) => a - b)) {
        const x = series.get(sid)!;
        const open = [...x.open.values()];
        const c = step.tick - delays.delayOf(sid) - lateness;
        // With a spec window open, the quiet rule applies at every tick; with only rollups open, at the tick that closes one.
        if (open.some((w) => !kinds[w.kind].rollup) || open.some((w) => w.end <= c)) close(sid, x, Math.max(x.closedBefore, c), out);
      }
      return out;
    }
    for (const [sid, ts, v] of step.batch) {
      if (!series.has(sid)) series.set(sid, { maxTs: -Infinity, closedBefore: -Infinity, open: new Map() });
      const x = series.get(sid)!;
      delays.observe(sid, ts, step.recvMs);
      const firstEnd = Math.min(...specs.map((sp) => Math.floor(ts / sp.slideMs) * sp.slideMs + sp.slideMs));
      if (firstEnd <= x.closedBefore) {
        out.push({ kind: "late", sid, ts, value: v });
        continue;
      }
      const e = { ts, v, seq: seq++ };
      kinds.forEach((k, j) => {
        for (let start = Math.floor(ts / k.slideMs) * k.slideMs; start > ts - k.sizeMs; start -= k.slideMs) {
          const key = `${j}:${start}`;
          if (!x.open.has(key)) x.open.set(key, { kind: j, start, end: start + k.sizeMs, events: [] });
          x.open.get(key)!.events.push(e);
        }
      });
      if (ts > x.maxTs) {
        x.maxTs = ts;
        close(sid, x, Math.max(x.closedBefore, ts - lateness), out);
      }
    }
    return out;
  });
}

/** Exact aggregates of a window's events: (ts, arrival) order for first/last, nearest rank for percentiles. */
function recount(sid: number, spec: string, start: number, end: number, events: RefEvent[]): WindowResult {
  const byTime = [...events].sort((a, b) => a.ts - b.ts || a.seq - b.seq);
  const values = events.map((e) => e.v).sort((a, b) => a - b);
  const n = values.length;
  const sum = values.reduce((a, b) => a + b, 0);
  const nearestRank = (percent: number) => values[Math.floor((n * percent + 99) / 100) - 1];
  return {
    kind: "window", sid, spec, start, end, count: n, sum, min: values[0], max: values[n - 1], avg: sum / n,
    p50: nearestRank(50), p95: nearestRank(95), p99: nearestRank(99), first: byTime[0].v, last: byTime[n - 1].v,
  };
}

function relErr(a: number, e: number): number {
  return e === 0 ? Math.abs(a) : Math.abs(a - e) / Math.abs(e);
}

const bySid = (xs: WindowOutput[]) => [...xs].sort((a, b) => a.sid - b.sid);

/**
 * Mismatches with the reference, step by step. Values are multiples of 1/8,
 * so every sum is exact in any order: sum and avg must match exactly too.
 */
function compareWithReference(s: Stream, rollups: RollupOption[], actual: WindowOutput[][]): string[] {
  const problems: string[] = [];
  reference(s, rollups).forEach((exp, i) => {
    const [a, e] = [bySid(actual[i]), bySid(exp)];
    if (a.length !== e.length) problems.push(`step ${i}: ${a.length} outputs, reference ${e.length}: ${JSON.stringify(e)}`);
    for (let k = 0; k < Math.min(a.length, e.length); k++) {
      const [x, y] = [a[k], e[k]];
      const where = `step ${i} #${k} ${JSON.stringify(y)}`;
      if (x.kind === "late" || y.kind === "late") {
        if (JSON.stringify(x) !== JSON.stringify(y)) problems.push(`${where}: got ${JSON.stringify(x)}`);
        continue;
      }
      for (const f of ["sid", "spec", "start", "end", "count", "sum", "min", "max", "avg", "first", "last"] as const) {
        if (x[f] !== y[f]) problems.push(`${where}: ${f} ${x[f]}`);
      }
      for (const f of ["p50", "p95", "p99"] as const) {
        const ok = y.count <= limits.sketchExactMax ? x[f] === y[f] : relErr(x[f], y[f]) <= 0.01;
        if (!ok) problems.push(`${where}: ${f} ${x[f]} (count ${y.count})`);
      }
    }
  });
  return problems;
}

/** Mismatches between each rollup window and the merge of the emitted 10s windows inside it. */
function compareWithBaseWindows(out: WindowResult[]): string[] {
  const problems: string[] = [];
  for (const w of out.filter(isRollup)) {
    const base = out.filter((b) => b.spec === "10s" && b.sid === w.sid && b.start >= w.start && b.end <= w.end);
    const count = base.reduce((n, b) => n + b.count, 0);
    const sum = base.reduce((n, b) => n + b.sum, 0);
    const merged = {
      count, sum, avg: sum / count,
      min: Math.min(...base.map((b) => b.min)), max: Math.max(...base.map((b) => b.max)),
      first: base[0]?.first, last: base[base.length - 1]?.last,
    };
    for (const [f, v] of Object.entries(merged)) {
      if (w[f as keyof typeof merged] !== v) problems.push(`${w.spec} sid ${w.sid} [${w.start}, ${w.end}): ${f} ${w[f as keyof typeof merged]}, 10s windows say ${v}`);
    }
  }
  return problems;
}

describe("rollup", () => {
  const stream = seededStream(1);
  const whole = run(stream, engineRollups);
  const out = whole.perStep.flat();

  test("rollup - 1m and 1h windows equal a recount of the accepted raw events and the merge of the 10s windows", () => {
    expect(compareWithReference(stream, engineRollups, whole.perStep)).toEqual([]);
    expect(compareWithBaseWindows(windowsOf(out))).toEqual([]);
    // The stream covers what it claims: small and big minutes, hours, late events, and everything closed at the end.
    const ones = windowsOf(out).filter((w) => w.spec === "1m");
    const hours = windowsOf(out).filter((w) => w.spec === "1h");
    expect(ones.some((w) => w.count <= limits.sketchExactMax)).toBe(true);
    expect(ones.some((w) => w.count > limits.sketchExactMax)).toBe(true);
    expect(hours.length).toBeGreaterThanOrEqual(8);
    expect(new Set(hours.map((w) => w.sid)).size).toBe(4);
    expect(out.filter((o) => o.kind === "late").length).toBeGreaterThan(20);
    expect(whole.stats.openPanes).toBe(0);
    expect(sketchCount(whole.snapshot.rollupSketches)).toBe(0);
    const accepted = stream.steps.reduce((n, s) => n + ("batch" in s ? s.batch.length : 0), 0) - whole.stats.late;
    for (const label of ["10s", "1m", "1h"]) expect(windowsOf(out).filter((w) => w.spec === label).reduce((n, w) => n + w.count, 0)).toBe(accepted);
  });

  test("rollup - each rollup window is emitted once, after the windows of the same end, in option order", () => {
    const keys = windowsOf(out).filter(isRollup).map((w) => `${w.sid} ${w.spec} ${w.start}`);
    expect(new Set(keys).size).toBe(keys.length);
    const order = ["10s", "60s/10s", "1m", "1h"];
    for (const step of whole.perStep) {
      const ws = windowsOf(step);
      for (let k = 1; k < ws.length; k++) {
        const [a, b] = [ws[k - 1], ws[k]];
        if (a.sid === b.sid) expect(a.end < b.end || (a.end === b.end && order.indexOf(a.spec) < order.indexOf(b.spec))).toBe(true);
      }
    }
    // Option order decides between rollups of one end.
    const reversed = run(stream, [...engineRollups].reverse()).perStep.flat().filter(isRollup) as WindowResult[];
    const atHour = reversed.filter((w) => w.end % 3_600_000 === 0 && w.sid === 0).slice(0, 2).map((w) => w.spec);
    expect(atHour).toEqual(["1h", "1m"]);
  });

  test("rollup - the 10s and sliding windows and late events are the same with rollups on and off", () => {
    const off = run(stream, undefined).perStep.flat();
    expect(out.filter((o) => !isRollup(o))).toEqual(off);
  });

  test("rollup - identical through snapshot → MessagePack → restore mid-stream", () => {
    const n = stream.steps.length;
    const some = new Set([1, 777, Math.floor(n / 4), Math.floor(n / 2) + 1, Math.floor((3 * n) / 4), n - 1]);
    const often = new Set(Array.from({ length: Math.floor(n / 37) }, (_, i) => i * 37));
    expect(run(stream, engineRollups, some).perStep.flat()).toEqual(out);
    expect(run(stream, engineRollups, often).perStep.flat()).toEqual(out);
  });

  test("rollup - per-series memory: one open window per rollup, no pane kept for them", () => {
    const panesOff: number[] = [];
    run(stream, undefined, new Set(), (i, _snap, openPanes) => panesOff.push(openPanes));
    let worstBins = 0;
    let checked = 0;
    run(stream, engineRollups, new Set(), (i, snap, openPanes) => {
      expect(openPanes).toBe(panesOff[i]); // rollups hold no pane: exactly the panes the windows need
      if (i % 50 !== 0) return;
      const snapshot = snap();
      const rows = float64Of(snapshot.rollups);
      const perSeries = new Map<number, number>();
      for (let o = 0; o < rows.length; o += rollupFields) perSeries.set(rows[o], (perSeries.get(rows[o]) ?? 0) + 1);
      for (const n of perSeries.values()) expect(n).toBeLessThanOrEqual(engineRollups.length);
      for (const sk of QuantileSketch.fromColumns(snapshot.rollupSketches).map((q) => q.snapshot())) {
        const size = sk.raw !== null ? float64Of(sk.raw).length : (sk.pos ? float64Of(sk.pos.bins).length : 0) + (sk.neg ? float64Of(sk.neg.bins).length : 0);
        worstBins = Math.max(worstBins, size);
      }
      checked++;
    });
    expect(checked).toBeGreaterThan(100);
    // A sketch's own bound is 2 × sketchBinsMax bins (32 KB); values over five decades of both signs need ~1,300 (10 KB).
    expect(worstBins).toBeLessThanOrEqual(2 * limits.sketchBinsMax);
    expect(worstBins).toBeLessThan(limits.sketchBinsMax);
  });
});

describe("rollup - closing", () => {
  const make = (rollups: RollupOption[] | undefined = engineRollups, specs = "10s") => {
    const logic = createWindowLogic({ specs: parseWindowSpecs(specs), latenessMs: 2000, seriesMax: 4, rollups });
    const st = logic.init();
    const out: WindowOutput[] = [];
    const emit = (o: WindowOutput) => out.push(o);
    return {
      logic, st, out,
      send: (events: Event[], recvMs: number) => logic.handle(st, toBatch(events, recvMs), emit),
      tick: (ms: number) => logic.tick(st, ms, emit),
      taken: () => windowsOf(out.splice(0)).map((w) => `${w.spec} ${w.start}-${w.end} n${w.count}`),
      heap: () => [...float64Of(logic.snapshot(st).heapDue)],
    };
  };

  test("rollup - a quiet series' rollups close by tick at end + lateness, not before, its one heap entry waiting for each", () => {
    const a = make();
    for (const e of [[0, 3_000, 1], [0, 15_000, -2], [0, 25_000, 4]] satisfies Event[]) a.send([e], e[1]); // a real-time series
    expect(a.taken()).toEqual(["10s 0-10000 n1", "10s 10000-20000 n1"]);
    a.tick(31_999);
    expect(a.taken()).toEqual([]);
    a.tick(32_000);
    expect(a.taken()).toEqual(["10s 20000-30000 n1"]);
    // Only rollups are open: the series waits for the 1m window's end, not for every 10 s.
    expect(a.heap()).toEqual([62_000]);
    a.tick(61_999);
    expect(a.taken()).toEqual([]);
    a.tick(62_000);
    expect(a.taken()).toEqual(["1m 0-60000 n3"]);
    expect(a.heap()).toEqual([3_602_000]);
    a.tick(3_601_999);
    expect(a.taken()).toEqual([]);
    a.tick(3_602_000);
    expect(a.taken()).toEqual(["1h 0-3600000 n3"]);
    expect(a.heap()).toEqual([]);
    expect(sketchCount(a.logic.snapshot(a.st).rollupSketches)).toBe(0);
  });

  test("rollup - an event opening a pane while only rollups are open closes on time (the heap entry is lowered)", () => {
    const a = make();
    a.send([[0, 3_000, 1], [1, 3_500, 7]], 3_000);
    a.tick(12_000);
    expect(a.taken()).toEqual(["10s 0-10000 n1", "10s 0-10000 n1"]);
    expect(a.heap()).toEqual([62_000, 62_000]);
    a.send([[0, 35_000, 2]], 35_000);
    expect(a.heap()[0]).toBeLessThanOrEqual(42_000); // lowered (entries may be early, never late)
    a.tick(41_999);
    expect(a.taken()).toEqual([]);
    a.tick(42_000); // max(last arrival 35 s, end 40 s) + 2 s, not the rollup's 62 s
    expect(a.taken()).toEqual(["10s 30000-40000 n1"]);
    a.tick(62_000);
    expect(a.out.map((o) => o.sid)).toEqual([0, 1]);
    expect(a.taken()).toEqual(["1m 0-60000 n2", "1m 0-60000 n1"]);
  });

  test("rollup - at an hour's end: 10s, 60s/10s, then 1m and 1h in option order", () => {
    const a = make(engineRollups, "10s,60s/10s");
    a.send([[0, 3_595_000, 5], [0, 3_610_000, 6]], 3_610_000);
    expect(a.taken()).toEqual(["10s 3590000-3600000 n1", "60s/10s 3540000-3600000 n1", "1m 3540000-3600000 n1", "1h 0-3600000 n1"]);
    const b = make([...engineRollups].reverse(), "10s,60s/10s");
    b.send([[0, 3_595_000, 5], [0, 3_610_000, 6]], 3_610_000);
    expect(b.taken().slice(2)).toEqual(["1h 0-3600000 n1", "1m 3540000-3600000 n1"]);
  });

  test("rollup - late events reach no rollup; each series' rollups close by its own watermark", () => {
    const a = make();
    a.send([[0, 3_000, 1], [0, 65_000, 2], [0, 4_000, 99], [1, 3_600_000 + 1_000, 3]], 65_000);
    expect(a.out.filter((o) => o.kind === "late")).toEqual([{ kind: "late", sid: 0, ts: 4_000, value: 99 }]);
    expect(a.taken()).toEqual(["10s 0-10000 n1", "1m 0-60000 n1"]);
    // Series 1 is an hour ahead; series 0 still closes only by its own time, and its hour holds 3 events, not the late one.
    a.send([[0, 3_000_000, 4], [0, 3_603_000, 5]], 66_000);
    expect(a.taken().filter((w) => !w.startsWith("10s"))).toEqual(["1m 60000-120000 n1", "1m 3000000-3060000 n1", "1h 0-3600000 n3"]);
    // A rollup window opens when a base window closes: none of either series is open yet.
    expect(sketchCount(a.logic.snapshot(a.st).rollupSketches)).toBe(0);
  });

  test("rollup - once a quiet close ends a rollup, its base windows are closed too: a later event in it is late", () => {
    // The one place rollups change the base windows: without rollups no window is open, so the tick closes nothing.
    for (const rollups of [engineRollups, []]) {
      const a = make(rollups);
      a.send([[0, 3_000, 1]], 3_000);
      a.tick(12_000);
      a.tick(62_000);
      a.send([[0, 45_000, 2]], 63_000);
      expect(a.out.filter((o) => o.kind === "late").length).toBe(rollups.length > 0 ? 1 : 0);
    }
  });

  test("rollup - refused without a tumbling spec of the pane size, or with a bad size or label", () => {
    const make2 = (text: string, rollups: RollupOption[]) => () =>
      createWindowLogic({ specs: parseWindowSpecs(text), latenessMs: 2000, seriesMax: 1, rollups });
    expect(make2("20s,30s/15s", engineRollups)).toThrow(/^rollups need a tumbling window spec of the pane size \(5000 ms\) to merge from; windows 20s,30s\/15s have none$/);
    expect(make2("60s/10s", engineRollups)).toThrow(/rollups need a tumbling window spec/);
    expect(make2("20s,30s/15s", [])).not.toThrow();
    expect(make2("10s", [{ label: "1m", sizeMs: 65_000 }])).toThrow(/^rollup "1m": size 65000 ms must be a multiple of the base window "10s" \(10000 ms\)/);
    expect(make2("10s", [{ label: "10s", sizeMs: 10_000 }])).toThrow(/^rollup "10s": label empty or already used/);
    expect(make2("10s", [{ label: "x", sizeMs: 10_000 }])).toThrow(/must be a multiple of the base window "10s" \(10000 ms\) above it/);
    expect(make2("10s", [{ label: "1m", sizeMs: 60_000 }, { label: "1m", sizeMs: 120_000 }])).toThrow(/^rollup "1m": label empty or already used/);
    expect(make2("10s", [{ label: "2d", sizeMs: 2 * 86_400_000 }])).toThrow(/at most 86400000 ms/);
    const five = Array.from({ length: limits.rollupsMax + 1 }, (_, i) => ({ label: `${i + 1}m`, sizeMs: (i + 1) * 60_000 }));
    expect(make2("10s", five)).toThrow(/^rollups: 5 given, at most 4$/);
  });

  test("rollup - restore refuses a snapshot taken with other rollups", () => {
    const specs = parseWindowSpecs("10s,60s/10s");
    const a = createWindowLogic({ specs, latenessMs: 2000, seriesMax: 2, rollups: engineRollups });
    const snap = decode(encode(a.snapshot(a.init())));
    const b = createWindowLogic({ specs, latenessMs: 2000, seriesMax: 2 });
    const c = createWindowLogic({ specs, latenessMs: 2000, seriesMax: 2, rollups: engineRollups.slice(0, 1) });
    expect(() => b.restore(snap)).toThrow(/taken with windows 10s=10000\/10000,60s\/10s=60000\/10000 rollups 1m=60000,1h=3600000 /);
    expect(() => c.restore(snap)).toThrow(/now 10s=10000\/10000,60s\/10s=60000\/10000 rollups 1m=60000 and/);
    expect(() => createWindowLogic({ specs, latenessMs: 2000, seriesMax: 2, rollups: engineRollups }).restore(snap)).not.toThrow();
  });
});

describe("rollup fixtures", () => {
  const dir = new URL("./fixtures/windows/rollups/", import.meta.url).pathname;
  const fixtures: RollupFixture[] = readdirSync(dir).filter((f) => f.endsWith(".json")).sort().map((f) => JSON.parse(readFileSync(dir + f, "utf8")));

  test("rollup - there are golden rollup fixtures", () => {
    expect(fixtures.length).toBeGreaterThan(0);
  });

  for (const fx of fixtures) {
    test(`rollup - ${fx.name}: golden output, independent recount, identical through restore`, () => {
      const { perStep } = run(fx, fx.rollups);
      expect(perStep.flat()).toEqual(fx.expected);
      expect(compareWithReference(fx, fx.rollups, perStep)).toEqual([]);
      expect(compareWithBaseWindows(windowsOf(fx.expected))).toEqual([]);
      const n = fx.steps.length;
      expect(run(fx, fx.rollups, new Set(Array.from({ length: n }, (_, i) => i))).perStep.flat()).toEqual(fx.expected);
    });
  }
});
