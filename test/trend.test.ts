import { describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { readFileSync } from "node:fs";
import { createTrendLogic, type Trend, type TrendClass, type TrendOptions } from "../src/actors/trend.ts";
import { createWindowLogic, type EventBatch, type WindowOutput, type WindowResult } from "../src/actors/window.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import { limits } from "../src/runtime/limits.ts";
import { float64Of } from "../src/sketch/quantile.ts";
import {
  delayEvery, type Event, goldenLatenessMs, goldenSpec, goldenStream, makeStream, type Shape, type StreamOptions, toBatches, trueSlope, truth,
} from "./fixtures/trend/generate.ts";

const spec = { sizeMs: 60_000, slideMs: 10_000 };
const latenessMs = 2000;
const widthSec = spec.sizeMs / 1000;
const seed = Number(process.env.TREND_SEED ?? 4242);
console.log(`trend tests: seed ${seed} (TREND_SEED=… to change)`);

function logicOf(over: Partial<TrendOptions> = {}) {
  return createTrendLogic({ seriesMax: 1000, spec, latenessMs, ...over });
}

/** Feeds batches; before each batch index in `restoreAt` the state goes through snapshot → MessagePack → restore. */
function run(batches: EventBatch[], over: Partial<TrendOptions> = {}, restoreAt: ReadonlySet<number> = new Set()) {
  const logic = logicOf(over);
  let st = logic.init();
  const out: Trend[] = [];
  batches.forEach((b, i) => {
    if (restoreAt.has(i)) st = logic.restore(decode(encode(logic.snapshot(st))));
    logic.handle(st, b, (t) => out.push(t));
  });
  return { out, logic, st };
}

/** Windows fully inside the stream: [t0, …). Earlier ones hold only its first seconds. */
const warm = (t0: number) => (t: Trend) => t.start >= t0;

// ---------------------------------------------------------------------------
// The reference: ordinary least squares over the raw points, two-pass, with
// residuals summed directly. Shares nothing with the actor but the options.

interface Fit { n: number; slope: number; intercept: number; r2: number; level: number; change: number; sd: number; class: TrendClass }

function recount(points: Array<[ts: number, v: number]>, start: number, opts = { minPoints: 10, relativeChangeMin: 0.05, tMin: 3 }): Fit {
  const n = points.length;
  const xs = points.map(([ts]) => (ts - start) / 1000);
  const ys = points.map(([, v]) => v);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i] - mx) ** 2;
    sxy += (xs[i] - mx) * (ys[i] - my);
    syy += (ys[i] - my) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  const intercept = my - slope * mx;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (ys[i] - intercept - slope * xs[i]) ** 2;
  const sd = Math.sqrt(syy / n);
  const level = Math.max(Math.abs(my), sd);
  const change = slope * widthSec;
  const t = Math.abs(slope) / Math.sqrt(sse / (n - 2) / sxx);
  let cls: TrendClass = "stable";
  if (n < opts.minPoints || sxx === 0) cls = "unknown";
  else if (t >= opts.tMin && Math.abs(change) > opts.relativeChangeMin * level) cls = slope > 0 ? "rising" : "falling";
  return { n, slope, intercept, r2: syy > 0 ? 1 - sse / syy : 0, level, change, sd, class: cls };
}

/** Relative difference, with `scale` as the floor of the denominator (a slope of noise is near 0). */
const close = (a: number, e: number, scale: number) => Math.abs(a - e) <= 1e-9 * Math.max(Math.abs(e), scale);

/** Mismatches between the actor's trends and the recount of the accepted raw points, as readable lines. */
function compareWithRecount(trends: Trend[], events: Event[]): string[] {
  const bySeries = new Map<number, Array<[number, number]>>();
  for (const [sid, ts, v] of events) {
    if (!bySeries.has(sid)) bySeries.set(sid, []);
    bySeries.get(sid)!.push([ts, v]);
  }
  const problems: string[] = [];
  for (const t of trends) {
    const pts = bySeries.get(t.sid)!.filter(([ts]) => ts >= t.start && ts < t.end);
    const r = recount(pts, t.start);
    const where = `sid ${t.sid} [${t.start}, ${t.end})`;
    if (t.n !== r.n) problems.push(`${where}: n ${t.n}, recount ${r.n}`);
    const scales = { slope: r.sd / widthSec, intercept: r.sd, level: r.sd, change: r.sd };
    for (const f of ["slope", "intercept", "level", "change"] as const) {
      if (!close(t[f], r[f], scales[f])) problems.push(`${where}: ${f} ${t[f]}, recount ${r[f]}`);
    }
    if (Math.abs(t.r2 - r.r2) > 1e-9) problems.push(`${where}: r2 ${t.r2}, recount ${r.r2}`);
    if (t.class !== r.class) problems.push(`${where}: class ${t.class}, recount ${r.class}`);
  }
  return problems;
}

const countBy = (ts: Trend[]) => ts.reduce<Record<string, number>>((m, t) => ((m[t.class] = (m[t.class] ?? 0) + 1), m), {});

// ---------------------------------------------------------------------------

describe("trend classes", () => {
  test("trend - ramps up are rising and ramps down falling in every warm window", () => {
    const ups: Shape[] = [
      { kind: "ramp", base: 100, slopePerSec: 0.5, noise: 5 },
      { kind: "ramp", base: 1000, slopePerSec: 5, noise: 50 },
      { kind: "ramp", base: 1, slopePerSec: 0.02, noise: 0.05 },
      { kind: "ramp", base: -300, slopePerSec: 0.5, noise: 5 }, // climbs to zero
    ];
    const downs: Shape[] = [
      { kind: "ramp", base: 400, slopePerSec: -0.5, noise: 5 },
      { kind: "ramp", base: 4000, slopePerSec: -5, noise: 50 },
      { kind: "ramp", base: 13, slopePerSec: -0.02, noise: 0.05 },
      { kind: "ramp", base: 50, slopePerSec: -0.5, noise: 5 }, // crosses zero
    ];
    const stream = makeStream({ seed, shapes: [...ups, ...downs], durationMs: 600_000 });
    const { out } = run(stream.batches);
    const windows = out.filter(warm(stream.t0));
    expect(windows.length).toBe(8 * 54); // 10 min: ends t0 + 60 s … t0 + 590 s
    const wrong = windows.filter((t) => t.class !== (t.sid < ups.length ? "rising" : "falling"));
    console.log(`ramps: ${windows.length - wrong.length}/${windows.length} warm windows classified rising/falling`);
    expect(wrong.map((t) => `sid ${t.sid} end ${t.end - stream.t0}: ${t.class} slope ${t.slope}`)).toEqual([]);
    // The cold windows at the start (a few seconds of data) already get it right or say unknown, never the opposite.
    const cold = out.filter((t) => !warm(stream.t0)(t));
    expect(cold.filter((t) => t.class === (t.sid < ups.length ? "falling" : "rising"))).toEqual([]);
  });

  test("trend - flat noise is stable in at least 99 % of windows", () => {
    const levels: Array<[base: number, noise: number]> = [[100, 0.1], [100, 1], [100, 10], [100, 50], [0, 1], [-20, 5], [1e9, 1], [0.001, 0.01]];
    const copies = 4;
    const shapes: Shape[] = [];
    for (let c = 0; c < copies; c++) for (const [base, noise] of levels) shapes.push({ kind: "flat", base, noise });
    const stream = makeStream({ seed: seed + 1, shapes, durationMs: 3_600_000 });
    const { out } = run(stream.batches);
    const windows = out.filter(warm(stream.t0));
    const lines = levels.map(([base, noise], k) => {
      const mine = windows.filter((t) => t.sid % levels.length === k);
      return `base ${base} noise ${noise}: ${JSON.stringify(countBy(mine))}`;
    });
    const stable = windows.filter((t) => t.class === "stable").length;
    const rate = stable / windows.length;
    console.log(`flat noise: ${stable}/${windows.length} warm windows stable (${(100 * rate).toFixed(2)} %)\n  ${lines.join("\n  ")}`);
    expect(windows.length).toBe(shapes.length * 354);
    expect(rate).toBeGreaterThanOrEqual(0.99);
    expect(windows.some((t) => t.class === "unknown")).toBe(false);
    for (let k = 0; k < levels.length; k++) {
      const mine = windows.filter((t) => t.sid % levels.length === k);
      expect(mine.filter((t) => t.class === "stable").length / mine.length).toBeGreaterThanOrEqual(0.98);
    }
  });

  test("trend - a slow sinusoid rises on its up-slope and falls on its down-slope", () => {
    const shapes: Shape[] = [
      { kind: "sine", base: 20, amplitude: 10, periodMs: 600_000, noise: 0.3 },
      { kind: "sine", base: 0, amplitude: 10, periodMs: 600_000, noise: 0.3 },
      { kind: "sine", base: -50, amplitude: 30, periodMs: 1_200_000, noise: 1 },
    ];
    const stream = makeStream({ seed: seed + 2, shapes, durationMs: 2_400_000 });
    const { out } = run(stream.batches);
    const wrong: string[] = [];
    let checked = 0;
    for (const t of out.filter(warm(stream.t0))) {
      const shape = shapes[t.sid] as Extract<Shape, { kind: "sine" }>;
      const steepest = (shape.amplitude * 2 * Math.PI * 1000) / shape.periodMs;
      const slope = trueSlope(shape, (t.start + t.end) / 2 - stream.t0);
      const want = slope > 0.7 * steepest ? "rising" : slope < -0.7 * steepest ? "falling" : null;
      if (want === null) continue;
      checked++;
      if (t.class !== want) wrong.push(`sid ${t.sid} end ${t.end - stream.t0}: ${t.class}, true slope ${slope.toFixed(4)}`);
    }
    console.log(`sinusoids: ${checked - wrong.length}/${checked} windows on a steep slope classified by its sign`);
    expect(checked).toBeGreaterThan(300);
    expect(wrong).toEqual([]);
    // Over the crests the fitted change is small next to the level: stable shows up too.
    for (let sid = 0; sid < shapes.length; sid++) {
      const classes = new Set(out.filter((t) => t.sid === sid).map((t) => t.class));
      expect([...classes].sort()).toEqual(["falling", "rising", "stable"]);
    }
  });

  test("trend - too few points, or all at one instant, are unknown", () => {
    const t0 = 1_700_000_000_000;
    // Series 0: one event every 10 s (6 a window). Series 1: a burst of 20 at one instant every 10 s.
    const events: Event[] = [];
    for (let k = 0; k < 60; k++) {
      events.push([0, t0 + k * 10_000 + 3_000, 100 + k * 5]);
      for (let j = 0; j < 20; j++) events.push([1, t0 + k * 10_000 + 4_000, 100 + (j % 3)]);
    }
    const { out } = run(toBatches(events, 50));
    const zero = out.filter((t) => t.sid === 0);
    expect(zero.length).toBeGreaterThan(50);
    expect(zero.every((t) => t.class === "unknown" && t.n <= 6)).toBe(true);
    // The window actor would emit these windows too; for series 1 only the first holds one instant.
    const single = out.filter((t) => t.sid === 1 && t.n === 20);
    expect(single.length).toBeGreaterThan(0);
    expect(single.every((t) => t.class === "unknown" && t.slope === 0)).toBe(true);
    // Six points are enough with minPoints 5; a steady climb of 5 per 10 s is then rising once the window is full.
    const relaxed = run(toBatches(events, 50), { minPoints: 5 }).out.filter((t) => t.sid === 0 && t.start >= t0);
    expect(relaxed.length).toBeGreaterThan(40);
    expect(relaxed.every((t) => t.class === "rising")).toBe(true);
  });
});

describe("trend fit", () => {
  test("trend - the slope of a clean ramp is the true slope and r2 is 1", () => {
    const shape: Shape = { kind: "ramp", base: 3, slopePerSec: 0.25, noise: 0 };
    const stream = makeStream({ seed: seed + 3, shapes: [shape], durationMs: 600_000 });
    const windows = run(stream.batches).out.filter(warm(stream.t0));
    expect(windows.length).toBe(54);
    for (const t of windows) {
      expect(Math.abs(t.slope - 0.25)).toBeLessThan(1e-9);
      expect(t.r2).toBeGreaterThan(1 - 1e-9);
      expect(Math.abs(t.intercept - truth(shape, t.start - stream.t0))).toBeLessThan(1e-7);
      expect(Math.abs(t.change - 0.25 * widthSec)).toBeLessThan(1e-7);
      expect(t.class).toBe("rising");
    }
  });

  test("trend - a noisy ramp's slope lies within 5 standard errors of the true slope", () => {
    const shapes: Shape[] = [
      { kind: "ramp", base: 100, slopePerSec: 0.5, noise: 5 },
      { kind: "ramp", base: -7, slopePerSec: -0.01, noise: 0.2 },
    ];
    const stream = makeStream({ seed: seed + 4, shapes, durationMs: 1_200_000, ratePerSec: 5 });
    const windows = run(stream.batches).out.filter(warm(stream.t0));
    let worst = 0;
    for (const t of windows) {
      const shape = shapes[t.sid] as Extract<Shape, { kind: "ramp" }>;
      const se = shape.noise / Math.sqrt((t.n * widthSec ** 2) / 12); // x spread evenly over the window
      worst = Math.max(worst, Math.abs(t.slope - shape.slopePerSec) / se);
    }
    console.log(`noisy ramps: worst slope error ${worst.toFixed(2)} standard errors over ${windows.length} windows`);
    expect(worst).toBeLessThan(5);
  });

  test("trend - each fit equals a direct least-squares recount of the window's raw points", () => {
    const shapes: Shape[] = [
      ...goldenStream.shapes,
      { kind: "flat", base: 1e9, noise: 1 }, // far from zero: the sums must not cancel
      { kind: "ramp", base: 1e9, slopePerSec: 3, noise: 0.5 },
      { kind: "flat", base: 0, noise: 1e-6 },
      { kind: "sine", base: 5, amplitude: 5, periodMs: 200_000, noise: 2 },
    ];
    const stream = makeStream({ seed: seed + 5, shapes, durationMs: 900_000, ratePerSec: 3 });
    const { out } = run(stream.batches);
    expect(out.length).toBeGreaterThan(shapes.length * 85);
    expect(compareWithRecount(out, stream.events)).toEqual([]);
  });

  test("trend - golden output", () => {
    const golden = JSON.parse(readFileSync(new URL("./fixtures/trend/golden.json", import.meta.url), "utf8"));
    const logic = createTrendLogic({ seriesMax: 8, spec: goldenSpec, latenessMs: goldenLatenessMs });
    const st = logic.init();
    const out: Trend[] = [];
    const stream = makeStream(goldenStream);
    for (const b of stream.batches) logic.handle(st, b, (t) => out.push(t));
    expect(JSON.parse(JSON.stringify(out))).toEqual(golden.expected);
    expect(compareWithRecount(out, stream.events)).toEqual([]);
    expect(countBy(out)).toEqual(countBy(golden.expected));
  });
});

describe("trend state", () => {
  const mixed: StreamOptions = {
    seed: seed + 6,
    shapes: [...goldenStream.shapes, { kind: "flat", base: 1e9, noise: 1 }, { kind: "ramp", base: 5, slopePerSec: 0.1, noise: 1 }],
    durationMs: 900_000,
    batchEvents: 100,
  };

  test("trend - identical through snapshot → MessagePack → restore mid-stream", () => {
    const batches = toBatches(delayEvery(makeStream(mixed).events, 41, 120), 100); // late events too
    const whole = run(batches);
    expect(whole.logic.stats(whole.st).late).toBeGreaterThan(20);
    const n = batches.length;
    const some = new Set([1, Math.floor(n / 3), Math.floor(n / 2), n - 1]);
    const every = new Set(batches.map((_, i) => i));
    for (const at of [some, every]) {
      const again = run(batches, {}, at);
      expect(again.out).toEqual(whole.out);
      expect(again.logic.stats(again.st)).toEqual(whole.logic.stats(whole.st));
      for (let sid = 0; sid < mixed.shapes.length; sid++) expect(again.logic.latest(again.st, sid)).toEqual(whole.logic.latest(whole.st, sid));
      expect(encode(again.logic.snapshot(again.st))).toEqual(encode(whole.logic.snapshot(whole.st)));
    }
  });

  test("trend - a version 1 snapshot (every ring slot, used or not) restores to the same state", () => {
    const { logic, st } = run(makeStream({ ...mixed, durationMs: 300_000 }).batches);
    const v2 = logic.snapshot(st);
    const rows = float64Of(v2.series);
    const used = float64Of(v2.panes);
    const R = logic.stats(st).panesPerSeries;
    const series: number[] = [];
    const rings: number[] = [];
    for (let o = 0, u = 0; o < rows.length; o += 5) {
      series.push(...rows.subarray(o, o + 4)); // version 1 rows: no count of used slots
      const ring = Array.from({ length: R }, () => [-Infinity, 0, 0, 0, 0, 0, 0, 0]);
      for (let j = 0; j < rows[o + 4]; j++, u += 8) ring[((used[u] % R) + R) % R] = [...used.subarray(u, u + 8)];
      rings.push(...ring.flat());
    }
    const v1 = { ...v2, version: 1, series: Float64Array.from(series), panes: Float64Array.from(rings) };
    const restored = logic.restore(decode(encode(v1)));
    expect(encode(logic.snapshot(restored))).toEqual(encode(v2));
  });

  test("trend - restore refuses a snapshot of another window or lateness", () => {
    const { logic, st } = run(makeStream({ ...mixed, durationMs: 120_000 }).batches);
    const snap = decode(encode(logic.snapshot(st)));
    expect(() => logicOf({ spec: { sizeMs: 120_000, slideMs: 10_000 } }).restore(snap)).toThrow(/taken with window 60000\/10000 and lateness 2000 ms, now 120000\/10000/);
    expect(() => logicOf({ latenessMs: 5000 }).restore(snap)).toThrow(/lateness 2000 ms, now 60000\/10000 and 5000 ms/);
  });

  test("trend - latest() is the last fit of the series; stats count series and late events", () => {
    const { batches, t0 } = makeStream({ ...mixed, durationMs: 300_000 });
    const { out, logic, st } = run(batches);
    for (let sid = 0; sid < mixed.shapes.length; sid++) {
      expect(logic.latest(st, sid)).toBe(out.filter((t) => t.sid === sid).at(-1)!);
    }
    expect(logic.latest(st, 99)).toBeNull();
    expect(logic.stats(st)).toEqual({ series: mixed.shapes.length, late: 0, panesPerSeries: 7 });
    // Two events whose windows have closed: counted, and nothing changes.
    const before = JSON.stringify(logic.snapshot(st).panes);
    logic.handle(st, toBatches([[0, t0 + 5_000, 1e6], [1, t0 + 250_000, -1e6]], 2)[0], () => expect.unreachable());
    expect(logic.stats(st).late).toBe(2);
    expect(JSON.stringify(logic.snapshot(st).panes)).toBe(before);
  });
});

describe("trend and the window actor", () => {
  /** Live series 0–3 out of order, every 37th event arriving ~10 s late; series 4 stops at 4 min and resumes at 12 min. */
  function liveStream(): { events: Event[] } {
    const base = makeStream({
      seed: seed + 7,
      shapes: [
        { kind: "ramp", base: 10, slopePerSec: 0.1, noise: 1 },
        { kind: "flat", base: 50, noise: 2 },
        { kind: "sine", base: 0, amplitude: 5, periodMs: 300_000, noise: 0.5 },
        { kind: "ramp", base: 500, slopePerSec: -0.5, noise: 3 },
        { kind: "ramp", base: 1, slopePerSec: 0.01, noise: 0.01 },
      ],
      durationMs: 900_000,
    });
    const t0 = base.t0;
    const live = base.events.filter(([sid, ts]) => sid !== 4 || ts < t0 + 240_000 || ts >= t0 + 720_000);
    return { events: delayEvery(live, 37, 100) };
  }

  test("trend - fits exactly the 60s/10s windows the window actor closes, late events and quiet closes included", () => {
    const { events } = liveStream();
    const windows = createWindowLogic({ specs: parseWindowSpecs("10s,60s/10s"), latenessMs, seriesMax: 16 });
    const trends = createTrendLogic({ seriesMax: 16, spec, latenessMs });
    const ws = windows.init();
    const ts = trends.init();
    const closed: WindowResult[] = [];
    const fitted: Trend[] = [];
    const fitsByOnWindow: Trend[] = [];
    let late = 0;
    const onTrend = (t: Trend) => fitted.push(t);
    const onWindowOut = (o: WindowOutput) => {
      if (o.kind === "late") late++;
      else if (o.spec === "60s/10s") closed.push(o);
    };
    // As the worker does: each batch through both, then every closed 60s/10s window to onWindow (a no-op
    // unless the window closed on wall time), then the window actor's tick.
    for (const b of toBatches(events, 64)) {
      const from = closed.length;
      windows.handle(ws, b, onWindowOut);
      trends.handle(ts, b, onTrend);
      windows.tick(ws, b.recvMs + 500, onWindowOut);
      for (const w of closed.slice(from)) {
        trends.onWindow(ts, w.sid, w.start, w.end, (t) => (fitted.push(t), fitsByOnWindow.push(t)));
      }
    }
    const from = closed.length;
    windows.tick(ws, events.at(-1)![1] + 3_600_000, onWindowOut); // everything quiet: closes the rest
    for (const w of closed.slice(from)) trends.onWindow(ts, w.sid, w.start, w.end, (t) => (fitted.push(t), fitsByOnWindow.push(t)));

    const key = (sid: number, start: number, end: number, n: number) => `${sid} ${start} ${end} ${n}`;
    expect(fitted.map((t) => key(t.sid, t.start, t.end, t.n)).sort()).toEqual(closed.map((w) => key(w.sid, w.start, w.end, w.count)).sort());
    expect(late).toBeGreaterThan(20);
    expect(trends.stats(ts).late).toBe(late);
    // Series 4 went quiet for 8 minutes: its windows closed on wall time came through onWindow.
    expect(fitsByOnWindow.some((t) => t.sid === 4 && t.end < fitted.find((f) => f.sid === 4 && f.end > t.end + 400_000)!.end)).toBe(true);
    expect(fitsByOnWindow.length).toBeGreaterThan(10);
  });

  test("trend - with another lateness than the window actor's it still fits each window once, never crashes", () => {
    const { events } = liveStream();
    for (const [windowLateness, trendLateness] of [[10_000, 2000], [0, 2000], [2000, 30_000], [2000, undefined]]) {
      const windows = createWindowLogic({ specs: parseWindowSpecs("10s,60s/10s"), latenessMs: windowLateness!, seriesMax: 16 });
      const trends = createTrendLogic({ seriesMax: 16, spec, latenessMs: trendLateness });
      const ws = windows.init();
      const ts = trends.init();
      const fitted: Trend[] = [];
      const push = (t: Trend) => fitted.push(t);
      let closed: WindowResult[] = [];
      const onOut = (o: WindowOutput) => o.kind === "window" && o.spec === "60s/10s" && closed.push(o);
      for (const b of toBatches(events, 64)) {
        windows.handle(ws, b, onOut);
        trends.handle(ts, b, push);
        windows.tick(ws, b.recvMs + 500, onOut);
        for (const w of closed) trends.onWindow(ts, w.sid, w.start, w.end, push);
        closed = [];
      }
      const keys = fitted.map((t) => `${t.sid} ${t.end}`);
      expect(new Set(keys).size).toBe(keys.length);
      expect(fitted.length).toBeGreaterThan(5 * 60);
    }
  });

  test("trend - onWindow fits a quiet series' windows once and ignores windows already fitted", () => {
    const t0 = 1_700_000_000_000;
    const logic = logicOf();
    const st = logic.init();
    const out: Trend[] = [];
    const emit = (t: Trend) => out.push(t);
    // 30 events at t0 + 1 s … t0 + 30 s: the watermark reaches t0 + 28 s, closing the windows ending t0 + 10, 20 s.
    logic.handle(st, toBatches(Array.from({ length: 30 }, (_, k): Event => [0, t0 + 1000 + k * 1000, k]), 30)[0], emit);
    expect(out.map((t) => t.end - t0)).toEqual([10_000, 20_000]);
    logic.onWindow(st, 0, t0 - 50_000, t0 + 10_000, emit); // already fitted
    expect(out.length).toBe(2);
    logic.onWindow(st, 0, t0 - 20_000, t0 + 40_000, emit); // quiet close up to 40 s: fits 30 s and 40 s
    expect(out.map((t) => t.end - t0)).toEqual([10_000, 20_000, 30_000, 40_000]);
    expect(out.slice(2).map((t) => t.n)).toEqual([29, 30]); // the last event opens the pane at 30 s
    logic.onWindow(st, 7, t0 - 20_000, t0 + 40_000, emit); // a series it never saw
    expect(out.length).toBe(4);
    expect(() => logic.onWindow(st, 0, t0, t0 + 30_000, emit)).toThrow(/one of spec 60000\/10000/);
  });
});

describe("trend memory", () => {
  test("trend - each series holds a fixed ring of panes: window + lateness, within limits.trendPanesPerSeriesMax", () => {
    const stream = makeStream({ seed: seed + 8, shapes: [{ kind: "flat", base: 1, noise: 1 }, { kind: "ramp", base: 0, slopePerSec: 1, noise: 1 }], durationMs: 3_600_000, ratePerSec: 5 });
    const logic = logicOf({ seriesMax: 2 });
    const st = logic.init();
    logic.handle(st, stream.batches[0], () => {});
    const ringFloats = st.ring.length;
    for (const b of stream.batches.slice(1)) logic.handle(st, b, () => {});
    expect(st.ring.length).toBe(ringFloats); // an hour later, not one pane more
    expect(ringFloats).toBe(2 * 7 * 8); // 2 series × (6 panes + ⌈2 s / 10 s⌉) × 8 sums
    expect(logic.stats(st).panesPerSeries).toBe(7);
    expect(logicOf({ latenessMs: 0 }).stats(logicOf().init()).panesPerSeries).toBe(6);
    expect(logicOf({ latenessMs: 25_000 }).stats(logicOf().init()).panesPerSeries).toBe(9);
    expect(() => logicOf({ spec: { sizeMs: 60_000, slideMs: 1000 }, latenessMs: 2 * 3_600_000 })).toThrow(
      new RegExp(`needs 7260 panes a series, at most ${limits.trendPanesPerSeriesMax}`),
    );
  });

  test("trend - a backfill of an hour in one batch and a clock jump fit the same windows as small batches", () => {
    const shapes: Shape[] = [{ kind: "ramp", base: 10, slopePerSec: 0.05, noise: 1 }, { kind: "flat", base: 20, noise: 1 }];
    const { events, t0 } = makeStream({ seed: seed + 9, shapes, durationMs: 3_600_000, ratePerSec: 1, jitterMs: 1000 });
    // Series 1 then jumps a day ahead and continues from there.
    const jumped: Event[] = [...events];
    for (let k = 0; k < 300; k++) jumped.push([1, t0 + 86_400_000 + k * 1000, 30 + k * 0.1]);
    const inOne = run(toBatches(jumped, jumped.length)).out;
    const small = run(toBatches(jumped, 16)).out;
    expect(inOne.length).toBe(small.length);
    expect(inOne).toEqual(small);
    expect(inOne.length).toBeGreaterThan(2 * 350 + 20);
    expect(compareWithRecount(inOne, jumped)).toEqual([]);
    expect(inOne.filter((t) => t.sid === 1 && t.start >= t0 + 86_400_000).every((t) => t.class === "rising")).toBe(true);
  });
});
