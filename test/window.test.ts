import { describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { readdirSync, readFileSync } from "node:fs";
import { createWindowLogic, type WindowOutput, type WindowResult } from "../src/actors/window.ts";
import { parseDurationMs, parseWindowSpecs, type WindowSpec } from "../src/actors/window-spec.ts";
import { limits } from "../src/runtime/limits.ts";
import { float64Of, QuantileSketch } from "../src/sketch/quantile.ts";
import { toBatch, type Event, type Fixture } from "./fixtures/windows/generate.ts";
import { NaiveDelays } from "./helpers/delay-model.ts";

const fixtureDir = new URL("./fixtures/windows/", import.meta.url).pathname;
const fixtures: Fixture[] = readdirSync(fixtureDir)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => JSON.parse(readFileSync(fixtureDir + f, "utf8")));


/** Runs a fixture; before each step in `restoreAt`, the state goes through snapshot → MessagePack → restore. */
function runFixture(fx: Fixture, restoreAt: ReadonlySet<number> = new Set()) {
  const logic = createWindowLogic({ specs: parseWindowSpecs(fx.specs), latenessMs: fx.latenessMs, seriesMax: fx.seriesMax });
  let st = logic.init();
  const perStep = fx.steps.map((step, i) => {
    if (restoreAt.has(i)) st = logic.restore(decode(encode(logic.snapshot(st))));
    const out: WindowOutput[] = [];
    const emit = (o: WindowOutput) => out.push(o);
    if ("tick" in step) logic.tick(st, step.tick, emit);
    else logic.handle(st, toBatch(step.batch, step.recvMs), emit);
    return out;
  });
  return { perStep, stats: logic.stats(st), snapshot: logic.snapshot(st) };
}

// ---------------------------------------------------------------------------
// The reference: the contract of src/actors/window.ts restated as naively as
// possible. Every window keeps its own list of events; nothing is shared with
// the actor but the spec parser.

type RefEvent = { ts: number; v: number; seq: number };
type RefWindow = { spec: number; end: number; events: RefEvent[] };
type RefSeries = { maxTs: number; closedBefore: number; open: Map<string, RefWindow> };

function reference(fx: Fixture): WindowOutput[][] {
  const specs = parseWindowSpecs(fx.specs);
  const lateness = fx.latenessMs;
  const series = new Map<number, RefSeries>();
  const delays = new NaiveDelays();
  let seq = 0;
  const close = (sid: number, s: RefSeries, c: number, out: WindowOutput[]) => {
    s.closedBefore = c;
    const due = [...s.open.entries()].filter(([, w]) => w.end <= c).sort(([, a], [, b]) => a.end - b.end || a.spec - b.spec);
    for (const [key, w] of due) {
      s.open.delete(key);
      out.push(recount(sid, specs[w.spec], w.end, w.events));
    }
  };
  return fx.steps.map((step) => {
    const out: WindowOutput[] = [];
    if ("tick" in step) {
      // The quiet rule applied to every series, in sid order.
      for (const sid of [...series.keys()].sort((a, b) => a - b)) {
        const s = series.get(sid)!;
        if (s.open.size > 0) close(sid, s, Math.max(s.closedBefore, step.tick - delays.delayOf(sid) - lateness), out);
      }
      return out;
    }
    for (const [sid, ts, v] of step.batch) {
      if (!series.has(sid)) series.set(sid, { maxTs: -Infinity, closedBefore: -Infinity, open: new Map() });
      const s = series.get(sid)!;
      delays.observe(sid, ts, step.recvMs);
      // Of the windows holding ts, the earliest-ending one of a spec ends at the first slide boundary after ts.
      const firstEnd = Math.min(...specs.map((sp) => Math.floor(ts / sp.slideMs) * sp.slideMs + sp.slideMs));
      if (firstEnd <= s.closedBefore) {
        out.push({ kind: "late", sid, ts, value: v });
        continue;
      }
      const e = { ts, v, seq: seq++ };
      specs.forEach((sp, j) => {
        for (let start = Math.floor(ts / sp.slideMs) * sp.slideMs; start > ts - sp.sizeMs; start -= sp.slideMs) {
          const key = `${j}:${start + sp.sizeMs}`;
          if (!s.open.has(key)) s.open.set(key, { spec: j, end: start + sp.sizeMs, events: [] });
          s.open.get(key)!.events.push(e);
        }
      });
      if (ts > s.maxTs) {
        s.maxTs = ts;
        close(sid, s, Math.max(s.closedBefore, ts - lateness), out);
      }
    }
    return out;
  });
}

/** Exact aggregates of a window's events: sorted by (ts, arrival) for first/last, by value for nearest-rank percentiles. */
function recount(sid: number, spec: WindowSpec, end: number, events: RefEvent[]): WindowResult {
  const byTime = [...events].sort((a, b) => a.ts - b.ts || a.seq - b.seq);
  const values = events.map((e) => e.v).sort((a, b) => a - b);
  const n = values.length;
  const sum = values.reduce((a, b) => a + b, 0);
  const nearestRank = (percent: number) => values[Math.floor((n * percent + 99) / 100) - 1]; // ceil(n·p/100), in integers
  return {
    kind: "window", sid, spec: spec.label, start: end - spec.sizeMs, end, count: n, sum,
    min: values[0], max: values[n - 1], avg: sum / n,
    p50: nearestRank(50), p95: nearestRank(95), p99: nearestRank(99),
    first: byTime[0].v, last: byTime[n - 1].v,
  };
}

/** Within one step, order across series may differ (tick order is by due time); within a series it may not. */
const bySid = (xs: WindowOutput[]) => [...xs].sort((a, b) => a.sid - b.sid);

function relErr(a: number, e: number): number {
  return e === 0 ? Math.abs(a) : Math.abs(a - e) / Math.abs(e);
}

/** Mismatches between the actor's output and the reference, as readable lines (empty when they agree). */
function compareWithReference(fx: Fixture, actual: WindowOutput[][]): string[] {
  const expected = reference(fx);
  const problems: string[] = [];
  expected.forEach((exp, i) => {
    const [a, e] = [bySid(actual[i]), bySid(exp)];
    if (a.length !== e.length) problems.push(`step ${i}: ${a.length} outputs, reference ${e.length}: ${JSON.stringify(e)}`);
    for (let k = 0; k < Math.min(a.length, e.length); k++) {
      const where = `step ${i} #${k} ${JSON.stringify(e[k])}`;
      const [x, y] = [a[k], e[k]];
      if (x.kind === "late" || y.kind === "late") {
        if (JSON.stringify(x) !== JSON.stringify(y)) problems.push(`${where}: got ${JSON.stringify(x)}`);
        continue;
      }
      for (const f of ["sid", "spec", "start", "end", "count", "min", "max", "first", "last"] as const) {
        if (x[f] !== y[f]) problems.push(`${where}: ${f} ${x[f]}`);
      }
      for (const f of ["sum", "avg"] as const) if (relErr(x[f], y[f]) > 1e-9) problems.push(`${where}: ${f} ${x[f]}`);
      for (const f of ["p50", "p95", "p99"] as const) {
        const ok = y.count <= limits.sketchExactMax ? x[f] === y[f] : relErr(x[f], y[f]) <= 0.01;
        if (!ok) problems.push(`${where}: ${f} ${x[f]} (count ${y.count})`);
      }
    }
  });
  return problems;
}

const windowsOf = (out: WindowOutput[]) => out.filter((o): o is WindowResult => o.kind === "window");

describe("window fixtures", () => {
  for (const fx of fixtures) {
    test(`window - ${fx.name}: golden output, independent recount`, () => {
      const { perStep, stats } = runFixture(fx);
      const out = perStep.flat();
      expect(out).toEqual(fx.expected);
      expect(compareWithReference(fx, perStep)).toEqual([]);
      // Every fixture ends with a tick that closes everything: each accepted event is in size/slide windows of every spec.
      const events = fx.steps.reduce((n, s) => n + ("batch" in s ? s.batch.length : 0), 0);
      const late = out.filter((o) => o.kind === "late").length;
      expect(stats.late).toBe(late);
      expect(stats.openPanes).toBe(0);
      for (const spec of parseWindowSpecs(fx.specs)) {
        const counted = windowsOf(out).filter((w) => w.spec === spec.label).reduce((n, w) => n + w.count, 0);
        expect(counted).toBe((events - late) * (spec.sizeMs / spec.slideMs));
      }
    });

    test(`window - ${fx.name}: identical through snapshot → MessagePack → restore mid-stream`, () => {
      const whole = runFixture(fx).perStep.flat();
      const n = fx.steps.length;
      const every = new Set(Array.from({ length: n }, (_, i) => i));
      const some = new Set([1, Math.floor(n / 4), Math.floor(n / 2), Math.floor((3 * n) / 4), n - 1]);
      expect(runFixture(fx, some).perStep.flat()).toEqual(whole);
      expect(runFixture(fx, every).perStep.flat()).toEqual(whole);
    });
  }
});

describe("window", () => {
  const fixture = (name: string) => fixtures.find((f) => f.name === name)!;

  test("window - fixtures cover the agreed cases", () => {
    const names = fixtures.map((f) => f.name);
    for (const n of ["in-order", "out-of-order", "late", "quiet-close", "backfill", "sliding-panes", "big-window", "many-series",
      "delayed-steady", "delayed-jitter", "delayed-stops", "delayed-beside-realtime"]) {
      expect(names).toContain(n);
    }
    expect(windowsOf(fixture("big-window").expected).some((w) => w.count > 1000)).toBe(true);
    expect(fixture("late").expected.filter((o) => o.kind === "late").length).toBeGreaterThan(10);
  });

  test("window - producers behind the clock, in order per series, lose nothing; each series' last windows close after its own delay", () => {
    for (const name of ["delayed-steady", "delayed-jitter", "delayed-stops", "delayed-beside-realtime"]) {
      const fx = fixture(name);
      expect(fx.expected.filter((o) => o.kind === "late")).toEqual([]);
      const events = fx.steps.reduce((n, s) => n + ("batch" in s ? s.batch.length : 0), 0);
      expect(windowsOf(fx.expected).filter((w) => w.spec === "10s").reduce((n, w) => n + w.count, 0)).toBe(events);
    }
    // When each series' last 10s window was emitted: the time of the step that emitted it.
    const lastClose = (name: string, sid: number) => {
      const fx = fixture(name);
      const { perStep } = runFixture(fx);
      let at = { end: 0, stepMs: 0 };
      perStep.forEach((out, i) => {
        const step = fx.steps[i];
        for (const w of windowsOf(out)) if (w.sid === sid && w.spec === "10s") at = { end: w.end, stepMs: "tick" in step ? step.tick : step.recvMs };
      });
      return at.stepMs - at.end;
    };
    // Ticks come every 500 ms: a close due at end + d is seen at the first tick at or after it.
    expect(lastClose("delayed-stops", 0)).toBeGreaterThanOrEqual(32_000);
    expect(lastClose("delayed-stops", 0)).toBeLessThan(32_500);
    expect(lastClose("delayed-beside-realtime", 0)).toBeGreaterThanOrEqual(2_020);
    expect(lastClose("delayed-beside-realtime", 0)).toBeLessThan(2_520);
    expect(lastClose("delayed-beside-realtime", 1)).toBeGreaterThanOrEqual(32_000);
    expect(lastClose("delayed-beside-realtime", 1)).toBeLessThan(32_500);
  });

  test("window - a 60s/10s window equals the merge of the 10s panes inside it", () => {
    for (const name of ["sliding-panes", "big-window", "many-series"]) {
      const out = windowsOf(fixture(name).expected);
      for (const w of out.filter((o) => o.spec === "60s/10s")) {
        const panes = out.filter((p) => p.spec === "10s" && p.sid === w.sid && p.start >= w.start && p.end <= w.end);
        expect(panes.length).toBeGreaterThan(0);
        expect(panes.reduce((n, p) => n + p.count, 0)).toBe(w.count);
        expect(relErr(panes.reduce((n, p) => n + p.sum, 0), w.sum)).toBeLessThan(1e-9);
        expect(Math.min(...panes.map((p) => p.min))).toBe(w.min);
        expect(Math.max(...panes.map((p) => p.max))).toBe(w.max);
        expect(panes[0].first).toBe(w.first);
        expect(panes[panes.length - 1].last).toBe(w.last);
      }
    }
  });

  test("window - a backfill beside a live series is aggregated exactly, nothing late", () => {
    const out = fixture("backfill").expected;
    expect(out.some((o) => o.kind === "late")).toBe(false);
    const backfill = windowsOf(out).filter((w) => w.sid === 1 && w.spec === "10s");
    expect(backfill.reduce((n, w) => n + w.count, 0)).toBe(60 * 40);
    expect(backfill.length).toBe(36); // 2,400 readings 150 ms apart: 360 s
  });

  test("window - a quiet series closes at wall ≥ end + its own delay + lateness, not before, and not while it sends", () => {
    const logic = createWindowLogic({ specs: parseWindowSpecs("10s"), latenessMs: 2000, seriesMax: 2 });
    const st = logic.init();
    const out: WindowOutput[] = [];
    const emit = (o: WindowOutput) => out.push(o);
    // Series 0 is real-time; series 1 arrives 7 s behind its event time. Each reading is its own batch, in arrival order.
    const arrivals: Array<[sid: number, ts: number, recvMs: number]> = [];
    for (let k = 1; k <= 9; k++) arrivals.push([0, k * 1000, k * 1000], [1, k * 1000, k * 1000 + 7000]);
    arrivals.sort((a, b) => a[2] - b[2] || a[0] - b[0]);
    const upTo = (ms: number) => {
      while (arrivals.length > 0 && arrivals[0][2] <= ms) {
        const [sid, ts, recv] = arrivals.shift()!;
        logic.handle(st, toBatch([[sid, ts, sid]], recv), emit);
      }
      logic.tick(st, ms, emit);
    };
    upTo(11_999);
    expect(out).toEqual([]);
    upTo(12_000); // series 0: end 10 s + delay 0 + 2 s; series 1 is still sending its readings of that window
    expect(out.map((o) => [o.sid, (o as WindowResult).count])).toEqual([[0, 9]]);
    upTo(18_999);
    expect(out.length).toBe(1);
    upTo(19_000); // series 1: end 10 s + its delay 7 s + 2 s
    expect(out.map((o) => [o.sid, (o as WindowResult).count])).toEqual([[0, 9], [1, 9]]);
    expect(logic.stats(st).late).toBe(0);
  });

  test("window - until a series has sent delayWarmupEvents events, the quiet rule waits twice its largest delay", () => {
    const logic = createWindowLogic({ specs: parseWindowSpecs("10s"), latenessMs: 2000, seriesMax: 1 });
    const st = logic.init();
    const out: WindowOutput[] = [];
    logic.handle(st, toBatch([[0, 1_000, 1]], 21_000), (o) => out.push(o)); // 20 s behind, jitter unknown
    logic.tick(st, 51_999, (o) => out.push(o));
    expect(out).toEqual([]);
    logic.tick(st, 52_000, (o) => out.push(o)); // 10 s + 2 × 20 s + 2 s
    expect(windowsOf(out).map((w) => w.count)).toEqual([1]);
  });

  test("window - a series' delay falls once its larger delays are two periods back, and its heap entry moves up", () => {
    const logic = createWindowLogic({ specs: parseWindowSpecs("10s"), latenessMs: 2000, seriesMax: 1, delayPeriodMs: 10_000 });
    const st = logic.init();
    const out: WindowOutput[] = [];
    const emit = (o: WindowOutput) => out.push(o);
    // Period [0, 10 s): 30 s behind. Period [40 s, 50 s): real-time, so the estimate is 30 + (30 − 0) = 60 s.
    for (let k = 0; k < 10; k++) logic.handle(st, toBatch([[0, k * 1000, 1]], k * 1000 + 30_000), emit);
    for (let k = 40; k < 50; k++) logic.handle(st, toBatch([[0, k * 1000, 2]], k * 1000), emit);
    logic.tick(st, 49_500, emit); // [40 s, 50 s) is due at 50 + 60 + 2 s
    expect(windowsOf(out).map((w) => w.end)).toEqual([10_000]); // closed by its own watermark
    logic.handle(st, toBatch([[0, 50_500, 3]], 50_500), emit); // period [50 s, 60 s): the 30 s delays are two periods back
    // Now due at 50 + 0 + 2 s: without the heap entry moving up, nothing would close before 112 s.
    logic.tick(st, 51_999, emit);
    expect(windowsOf(out).map((w) => w.end)).toEqual([10_000]);
    logic.tick(st, 52_000, emit);
    expect(windowsOf(out).map((w) => [w.end, w.count])).toEqual([[10_000, 10], [50_000, 10]]);
  });

  test("window - a version 2 snapshot (before delays) restores, its series' delay taken from last arrival − newest event time", () => {
    const logic = createWindowLogic({ specs: parseWindowSpecs("10s"), latenessMs: 2000, seriesMax: 1 });
    const v2 = {
      version: 2, specs: "10s=10000/10000", latenessMs: 2000, late: 0,
      // sid, maxTs, lastArrivalMs, closedBefore, inHeap, paneCount: one series 5 s behind, one pane [0, 10 s).
      series: Float64Array.of(0, 8_000, 13_000, 6_000, 1, 1),
      panes: Float64Array.of(0, 2, 3, 1, 2, 1, 7_000, 2, 8_000),
      sketches: [new QuantileSketch().snapshot()], heapDue: Float64Array.of(12_000), heapSid: Float64Array.of(0),
      rollups: new Float64Array(0), rollupSketches: [],
    };
    v2.sketches[0] = (() => { const q = new QuantileSketch(); q.add(1); q.add(2); return q.snapshot(); })();
    const st = logic.restore(decode(encode(v2)));
    const out: WindowOutput[] = [];
    logic.tick(st, 16_999, (o) => out.push(o));
    expect(out).toEqual([]);
    logic.tick(st, 17_000, (o) => out.push(o)); // 10 s + 5 s + 2 s, not the old rule's 12 s
    expect(windowsOf(out).map((w) => [w.count, w.sum, w.first, w.last])).toEqual([[2, 3, 1, 2]]);
  });

  test("window - a version 3 snapshot (a sketch object each) restores and continues exactly as the version 4 one (sketch columns)", () => {
    for (const name of ["many-series", "sliding-panes", "big-window"]) {
      const fx = fixture(name);
      const cut = Math.floor(fx.steps.length / 2);
      const { snapshot } = runFixture({ ...fx, steps: fx.steps.slice(0, cut) });
      expect(snapshot.version).toBe(4);
      const v3 = {
        ...snapshot, version: 3,
        sketches: QuantileSketch.fromColumns(snapshot.sketches).map((q) => q.snapshot()),
        rollupSketches: QuantileSketch.fromColumns(snapshot.rollupSketches).map((q) => q.snapshot()),
      };
      const outputs = [snapshot, v3].map((snap) => {
        const logic = createWindowLogic({ specs: parseWindowSpecs(fx.specs), latenessMs: fx.latenessMs, seriesMax: fx.seriesMax });
        const st = logic.restore(decode(encode(snap)));
        const out: WindowOutput[] = [];
        for (const step of fx.steps.slice(cut)) {
          if ("tick" in step) logic.tick(st, step.tick, (o) => out.push(o));
          else logic.handle(st, toBatch(step.batch, step.recvMs), (o) => out.push(o));
        }
        return out;
      });
      expect([name, outputs[0].length > 0]).toEqual([name, true]);
      expect(outputs[1]).toEqual(outputs[0]);
    }
  });

  test("window - panes per series stay bounded: the oldest windows close early", () => {
    const logic = createWindowLogic({ specs: parseWindowSpecs("10ms"), latenessMs: 1e9, seriesMax: 1 });
    const st = logic.init();
    const out: WindowOutput[] = [];
    const events: Event[] = Array.from({ length: limits.panesPerSeriesMax + 500 }, (_, i) => [0, i * 10, i]);
    logic.handle(st, toBatch(events, 0), (o) => out.push(o));
    expect(logic.stats(st).openPanes).toBe(limits.panesPerSeriesMax);
    expect(windowsOf(out).map((w) => w.first)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    logic.tick(st, 3e9, (o) => out.push(o));
    expect(windowsOf(out).length).toBe(events.length);
  });

  test("window - the quiet heap holds at most one entry per series", () => {
    const fx = fixture("many-series");
    for (const cut of [10, 30, 50]) {
      const { snapshot, stats } = runFixture({ ...fx, steps: fx.steps.slice(0, cut) });
      const sids = [...(snapshot.heapSid as Float64Array)];
      expect(sids.length).toBeGreaterThan(0);
      expect(new Set(sids).size).toBe(sids.length);
      expect(sids.length).toBeLessThanOrEqual(stats.series);
    }
    expect(runFixture(fx).snapshot.heapSid.length).toBe(0); // the final tick closed everything
  });

  test("window - an event whose pane ends at closedBefore is late, one in the next pane is kept", () => {
    const logic = createWindowLogic({ specs: parseWindowSpecs("10s"), latenessMs: 2000, seriesMax: 1 });
    const st = logic.init();
    const out: WindowOutput[] = [];
    logic.handle(st, toBatch([[0, 22_000, 1], [0, 19_999, 2], [0, 20_000, 3]], 0), (o) => out.push(o));
    expect(out).toEqual([{ kind: "late", sid: 0, ts: 19_999, value: 2 }]);
    expect(logic.stats(st)).toEqual({ series: 1, openPanes: 1, late: 1 });
  });

  test("window - a series id at or over seriesMax is a programmer error", () => {
    const logic = createWindowLogic({ specs: parseWindowSpecs("10s"), latenessMs: 2000, seriesMax: 2 });
    expect(() => logic.handle(logic.init(), toBatch([[2, 1, 1]], 0), () => {})).toThrow(/seriesMax/);
  });

  test("window - restore refuses a snapshot taken with other windows or lateness", () => {
    const a = createWindowLogic({ specs: parseWindowSpecs("10s"), latenessMs: 2000, seriesMax: 2 });
    const snap = decode(encode(a.snapshot(a.init())));
    const b = createWindowLogic({ specs: parseWindowSpecs("10s,60s/10s"), latenessMs: 2000, seriesMax: 2 });
    const c = createWindowLogic({ specs: parseWindowSpecs("10s"), latenessMs: 5000, seriesMax: 2 });
    expect(() => b.restore(snap)).toThrow(/taken with windows 10s=10000\/10000/);
    expect(() => c.restore(snap)).toThrow(/lateness 2000 ms/);
  });
});

describe("window specs", () => {
  test("window - specs parse sizes, slides and units", () => {
    expect(parseWindowSpecs("10s,60s/10s")).toEqual([
      { label: "10s", sizeMs: 10_000, slideMs: 10_000 },
      { label: "60s/10s", sizeMs: 60_000, slideMs: 10_000 },
    ]);
    expect(parseWindowSpecs(" 500ms , 1m/15s ")).toEqual([
      { label: "500ms", sizeMs: 500, slideMs: 500 },
      { label: "1m/15s", sizeMs: 60_000, slideMs: 15_000 },
    ]);
    expect(parseWindowSpecs("2h/1h,1H")).toEqual([
      { label: "2h/1h", sizeMs: 7_200_000, slideMs: 3_600_000 },
      { label: "1H", sizeMs: 3_600_000, slideMs: 3_600_000 },
    ]);
    expect(parseWindowSpecs("24h")[0].sizeMs).toBe(limits.windowSizeMsMax);
  });

  test("window - bad specs throw naming the bad part", () => {
    const cases: Array<[string, RegExp]> = [
      ["7x", /^window spec "7x": unknown unit "x"/],
      ["10", /^window spec "10": size "10" needs a unit/],
      ["", /^window specs: none given/],
      ["10s,,5s", /^window specs: empty spec between commas/],
      ["60s/7s", /^window spec "60s\/7s": size must be a multiple of the slide/],
      ["10s/20s", /^window spec "10s\/20s": size must be a multiple of the slide/],
      ["0s", /^window spec "0s": size must be positive/],
      ["25h", /^window spec "25h": size 90000000 ms is over the maximum of 86400000 ms/],
      ["1.5s", /^window spec "1.5s": size "1.5s" is not a whole number/],
      ["10s/5s/1s", /^window spec "10s\/5s\/1s": expected <size> or <size>\/<slide>/],
      ["10s/", /^window spec "10s\/": slide "" is not a whole number/],
      ["1d", /^window spec "1d": unknown unit "d"/],
      ["10s,10s/10s", /^window spec "10s\/10s": same window as "10s"/],
      ["1h/1s", /^window spec "1h\/1s": spans 3600 panes of 1000 ms/],
      ["1h,7s", /^window spec "1h": spans 3600 panes of 1000 ms \(the gcd of all sizes and slides\), at most 2048/],
      ["1s,2s,3s,4s,5s,6s,7s,8s,9s", /^window specs "1s,2s,3s,4s,5s,6s,7s,8s,9s": 9 specs, at most 8/],
    ];
    for (const [text, re] of cases) expect(() => parseWindowSpecs(text)).toThrow(re);
  });

  test("window - durations parse with units, plain integers are ms", () => {
    expect(parseDurationMs("2s")).toBe(2000);
    expect(parseDurationMs("150")).toBe(150);
    expect(parseDurationMs("0")).toBe(0);
    expect(parseDurationMs("250ms")).toBe(250);
    expect(parseDurationMs("5m")).toBe(300_000);
    expect(parseDurationMs(" 1h ")).toBe(3_600_000);
    expect(parseDurationMs("1d")).toBe(86_400_000);
  });

  test("window - bad durations throw naming the text", () => {
    const cases: Array<[string, RegExp]> = [
      ["", /^duration "": expected a whole number/],
      ["2x", /^duration "2x": unknown unit "x"/],
      ["1.5s", /^duration "1.5s": expected a whole number/],
      ["-1s", /^duration "-1s": expected a whole number/],
      ["s", /^duration "s": expected a whole number/],
      ["99999999999999999d", /^duration "99999999999999999d": too large/],
    ];
    for (const [text, re] of cases) expect(() => parseDurationMs(text)).toThrow(re);
  });
});

describe("window peek", () => {
  test("window - peek: the open window holding the newest event, as it will close if nothing more comes, for tumbling and sliding specs; peeking changes no output", () => {
    const specs = parseWindowSpecs("10s,30s/10s");
    const make = () => createWindowLogic({ specs, latenessMs: 0, seriesMax: 10 });
    const events: Array<[number, number, number]> = [];
    for (let i = 0; i < 400; i++) events.push([i % 2, 20_000 + i * 97, (i * 37) % 101]); // two series, 20 s → ~59 s
    const run = (peekEvery: number | null) => {
      const logic = make();
      const st = logic.init();
      const out: WindowOutput[] = [];
      const peeks: Array<[WindowResult | null, number]> = [];
      events.forEach((e, i) => {
        logic.handle(st, toBatch([e], e[1]), (o) => out.push(o));
        if (peekEvery !== null && i % peekEvery === 0) for (const j of [0, 1]) peeks.push([logic.peek(st, e[0], j), i]);
      });
      logic.tick(st, 200_000, (o) => out.push(o));
      return { out, peeks };
    };
    const plain = run(null);
    const peeked = run(7);
    expect(peeked.out).toEqual(plain.out); // peeks moved no pane run and closed nothing
    // Each peek equals the recount of its window's events handled so far, and holds the newest event.
    let checked = 0;
    for (const [p, at] of peeked.peeks) {
      if (p === null) continue;
      const values = events.slice(0, at + 1).filter((e) => e[0] === p.sid && e[1] >= p.start && e[1] < p.end).map((e) => e[2]);
      expect([p.count, p.sum, p.min, p.max, p.first, p.last]).toEqual([values.length, values.reduce((a, b) => a + b, 0), Math.min(...values), Math.max(...values), values[0], values.at(-1)!]);
      expect(events[at][1]).toBeLessThan(p.end);
      expect(p.end - p.start).toBe(p.spec === "10s" ? 10_000 : 30_000);
      expect(p.end - 10_000).toBeLessThanOrEqual(events[at][1]); // the first end after the newest event
      checked++;
    }
    expect(checked).toBeGreaterThan(50);
    // The last peek of each window equals the window that closed (nothing came after it).
    const logic = make();
    const st = logic.init();
    const closed: WindowResult[] = [];
    for (const e of events) logic.handle(st, toBatch([e], e[1]), (o) => o.kind === "window" && closed.push(o));
    const open = [logic.peek(st, 0, 0), logic.peek(st, 0, 1), logic.peek(st, 1, 0)];
    logic.tick(st, 200_000, (o) => o.kind === "window" && closed.push(o));
    for (const p of open) {
      expect(p).not.toBeNull();
      expect(closed.find((w) => w.sid === p!.sid && w.spec === p!.spec && w.start === p!.start)).toEqual(p!);
    }
    expect(logic.peek(st, 0, 0)).toBeNull(); // all closed
    expect(logic.peek(st, 9, 0)).toBeNull(); // never seen
  });
});

describe("window capped watermark", () => {
  test("window - handleCapped: a held clock keeps the watermark back, so an older event arriving after newer ones is taken, not late; released, the windows close as before", () => {
    const specs = parseWindowSpecs("10s");
    const run = (cap: number | null) => {
      const logic = createWindowLogic({ specs, latenessMs: 1_000, seriesMax: 4 });
      const st = logic.init();
      const out: WindowOutput[] = [];
      const feed = (ts: number, v: number, recvMs: number) => {
        const b = toBatch([[0, ts, v]], recvMs);
        if (cap === null) logic.handle(st, b, (o) => out.push(o));
        else logic.handleCapped(st, b, (o) => out.push(o), cap);
      };
      feed(5_000, 1, 5_000);
      feed(25_000, 2, 25_000); // newer events first (their message split first)
      feed(6_000, 3, 6_000); // the older message, redelivered
      logic.tick(st, 60_000, (o) => out.push(o));
      return out.map((o) => (o.kind === "late" ? ["late", o.ts] : [o.start, o.count, o.sum]));
    };
    expect(run(null)).toEqual([[0, 1, 1], ["late", 6_000], [20_000, 1, 2]]); // uncapped: [0,10s) closed by 25 s − 1 s, the 6 s event late
    expect(run(7_000)).toEqual([[0, 2, 4], [20_000, 1, 2]]); // the clock held at 7 s: [0,10s) waits, takes the 6 s event, closes at the tick
  });
});

describe("window - lowFrontier (the views' completeness bound)", () => {
  const batch = (sid: number, ts: number, recvMs: number) => ({ n: 1, sid: Uint32Array.of(sid), ts: Float64Array.of(ts), value: Float64Array.of(1), recvMs });

  test("no series: +Infinity; an open series: the start of the pane holding its closedBefore; a quiet one: now − its delay − lateness, never under its closed windows", () => {
    const logic = createWindowLogic({ specs: parseWindowSpecs("10s"), latenessMs: 2_000, seriesMax: 8 });
    const st = logic.init();
    const out: WindowOutput[] = [];
    expect(logic.lowFrontier(st, 100_000)).toBe(Infinity);
    // Series 0, real time: an event at 95 s received at 95 s. closedBefore = 93 s, its pane [90, 100) s is open.
    logic.handle(st, batch(0, 95_000, 95_000), (o) => out.push(o));
    expect(logic.lowFrontier(st, 95_000)).toBe(90_000);
    // Series 1, 30 s behind the clock: an event at 60 s received at 90 s.
    logic.handle(st, batch(1, 60_000, 90_000), (o) => out.push(o));
    expect(logic.lowFrontier(st, 95_000)).toBe(50_000); // its closedBefore is 58 s, in the pane [50, 60) s
    // The quiet rule closes both (series 1 waits for its delay: 2 × 30 s while warming up).
    logic.tick(st, 200_000, (o) => out.push(o));
    expect(out.filter((o) => o.kind === "window").map((o) => (o as WindowResult).sid)).toEqual([0, 1]);
    // No pane open: now − delay − lateness, and not under the pane floor of closedBefore.
    const f = logic.lowFrontier(st, 200_000);
    expect(f).toBe(Math.min(200_000 - 0 - 2_000, 200_000 - 60_000 - 2_000)); // series 1: delay 2 × 30 s in warm-up
  });
});
