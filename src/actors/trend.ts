/**
 * The trend actor's pure logic: per series, an ordinary least-squares line
 * y = a + b·x over each sliding window (default "60s/10s"), x in seconds from
 * the window's start, and a class rising / falling / stable / unknown.
 *
 * Method. Each series keeps a ring of pane accumulators, one pane per slide
 * (10 s): n, Σx, Σx², and Σu, Σu², Σxu with x = seconds from the pane's start
 * and u = y − (the pane's first value). Both shifts keep the sums exact
 * enough for series far from zero (1e9 ± 1). A window merges its panes,
 * shifting each to the window's origin (Σ(x+d) = Σx + n·d, and likewise for
 * the products), and solves the fit from the centred sums. An event costs
 * six accumulator adds and three products; a window, size/slide pane merges.
 *
 * Output per window [start, end): slope b (per second), intercept a (at
 * start), r2 = 1 − SSE/SSY (0 when the values do not vary), n, level, change
 * = b · window width (the fitted change over the whole window, also for a
 * window that holds only a few seconds of data), and the class:
 *
 * - unknown: fewer than `minPoints` events (default 10), or all of them at one
 *   instant (no slope can be fitted);
 * - rising / falling: the slope is significant, |b| / se(b) ≥ `tMin` (default
 *   3; se from the residuals, n − 2 degrees of freedom), AND the change is
 *   material, |change| > `relativeChangeMin` · level (default 0.05);
 * - stable: otherwise.
 *
 * level = max(|mean|, standard deviation of the window's values). Far from
 * zero it is the mean, so "material" reads "changes by 5 % of its level over
 * the window". Near zero the mean says nothing, and the spread takes over: a
 * series that crosses zero is then judged by significance alone, because a
 * linear change can never be small next to the spread it causes itself.
 *
 * Tuning. A window of white noise passes the t-test about 0.3 % of the time
 * with tMin 3 (about 5 % with tMin 2); the tests measure 0.1–0.6 % of flat
 * noise windows not stable. Raise tMin when alerts on noise cost you, or when
 * the noise is autocorrelated (drifting sensors), which the t-test takes for
 * signal. Lower relativeChangeMin to see slow drifts of a large level (a
 * 100 kPa pressure creeping 1 kPa a minute is 1 %); set it to 0 for series
 * whose zero is arbitrary (°C) and let tMin decide. Raise minPoints for
 * sparse series whose few points make a fit meaningless.
 *
 * Closing. The trend keeps each series' watermark exactly as the window
 * actor does (closedBefore = max over events of ts − latenessMs) and fits a
 * window as soon as that passes its end, in handle(), at the same event at
 * which the window actor closes it. That is why latenessMs is an option: it
 * sizes the ring (size/slide + ⌈lateness/slide⌉ panes, at most
 * limits.trendPanesPerSeriesMax), and no pane is reused while a window that
 * holds it is open, whatever a batch holds (a backfill of one series spanning
 * an hour closes its windows one by one as it goes). Windows that the window
 * actor closes on wall time (a quiet series, in its tick) reach the trend
 * through onWindow(), which fits every window up to that end not fitted yet
 * and ignores windows already fitted; the worker may pass it every closed
 * window of the trend's spec. An event whose window has closed (pane end ≤
 * closedBefore) is late: it is counted and changes nothing. This matches the
 * window actor's rule when the trend's slide is the pane (the default specs);
 * otherwise a few events the window actor calls late may count here.
 *
 * Deterministic: the same batches and onWindow calls give the same trends.
 * snapshot() is plain data (typed arrays) and restore() continues
 * identically. handle() allocates nothing per event; a Trend object is
 * allocated per fitted window, and the per-series columns grow by doubling
 * as new series ids appear.
 *
 * @example
 *   const logic = createTrendLogic({ seriesMax: 1000, spec: { sizeMs: 60_000, slideMs: 10_000 }, latenessMs: 2000 });
 *   const st = logic.init();
 *   logic.handle(st, batch, (t) => console.log(t.sid, t.slope, t.class)); // windows passed by the watermark
 *   logic.onWindow(st, 0, 0, 60_000, emit); // the window actor closed [0, 60 s) of series 0 on wall time
 *   logic.latest(st, 0); // { kind: "trend", class: "rising", slope: 0.5, ... } or null
 */
import { strict as assert } from "node:assert";
import type { ActorLogic } from "../runtime/actor.ts";
import { limits } from "../runtime/limits.ts";
import { copyFloat64Slices, runSlices } from "../runtime/slices.ts";
import type { EventBatch } from "./window.ts";

export interface TrendOptions {
  seriesMax: number;
  /** The sliding window fitted, e.g. { sizeMs: 60_000, slideMs: 10_000 } for "60s/10s". */
  spec: { sizeMs: number; slideMs: number };
  /**
   * The window actor's lateness (WEIR_LATENESS): the same watermark, and the ring's size. Pass it: the
   * default, limits.latenessMsDefault, is right only for the default config (another value never
   * crashes, but windows then close at another event than the window actor's, and late differs).
   */
  latenessMs?: number;
  /** Fewer events in a window: class "unknown". Default 10, at least 3. */
  minPoints?: number;
  /** |change| / level at or below this: "stable". Default 0.05. */
  relativeChangeMin?: number;
  /** |t-statistic of the slope| below this: "stable". Default 3. */
  tMin?: number;
}

export type TrendClass = "rising" | "falling" | "stable" | "unknown";

export interface Trend {
  kind: "trend";
  sid: number;
  /** The window's end, as for window results. */
  ts: number;
  start: number;
  end: number;
  /** Per second. */
  slope: number;
  /** The fitted value at the window's start. */
  intercept: number;
  r2: number;
  n: number;
  /** slope · window width in seconds. */
  change: number;
  /** max(|mean|, standard deviation) of the window's values. */
  level: number;
  class: TrendClass;
}

export interface TrendStats {
  series: number;
  /** Events ignored because their window had closed. */
  late: number;
  /** Pane slots each series holds, fixed at creation. */
  panesPerSeries: number;
}

/**
 * Plain data: one row per series (seriesFields, then how many of its ring's
 * slots are used); those slots' panes in series order (a pane's index says its
 * slot: index mod the ring's size); its latest trend if any. Version 1 held
 * every slot, used or not: ~450 bytes a series, half of a checkpoint when
 * series report seldom.
 */
export interface TrendSnapshot {
  version: 2;
  spec: string;
  latenessMs: number;
  late: number;
  series: Float64Array | Uint8Array;
  panes: Float64Array | Uint8Array;
  latest: Float64Array | Uint8Array;
}
/** A snapshot from before only used slots were kept: panes holds every slot of every ring. */
export type TrendSnapshotV1 = Omit<TrendSnapshot, "version"> & { version: 1 };

export interface TrendLogic extends ActorLogic<TrendState, EventBatch, Trend> {
  /** The window actor closed [start, end) of series sid: fit it (and any earlier unfitted window) unless already fitted. */
  onWindow(state: TrendState, sid: number, start: number, end: number, emit: (t: Trend) => void): void;
  /** The last trend fitted for the series, for the series listing. */
  latest(state: TrendState, sid: number): Trend | null;
  stats(state: TrendState): TrendStats;
  snapshot(state: TrendState): TrendSnapshot;
  /** snapshot() in slices of `seriesPerSlice` series, yielding between them; returns what snapshot() would. Nothing may change the state meanwhile. */
  snapshotSlices(state: TrendState, seriesPerSlice: number): Generator<void, TrendSnapshot>;
  /** restore() in slices of `seriesPerSlice` series, yielding between them; returns what restore() would. */
  restoreSlices(snap: unknown, seriesPerSlice: number): Generator<void, TrendState>;
}

type Emit = (t: Trend) => void;

const defaults = { minPoints: 10, relativeChangeMin: 0.05, tMin: 3 };
const seriesCapacityInitial = 64;
const seriesFields = 4; // sid, maxTs, closedBefore, newest pane index
// Pane slot: index (start / slide; −Infinity when unused), n, Σx, Σx², ref (first value), Σu, Σu², Σxu.
const paneFields = 8;

const latestFields = 10; // sid, start, end, slope, intercept, r2, n, change, level, class code
const classes: readonly TrendClass[] = ["unknown", "stable", "rising", "falling"];
/** Time spread (Σ(x − x̄)², relative to Σx²) below which a window is one instant: no slope. */
const instantRelative = 1e-12;

/** Per-series columns indexed by sid, and the pane rings, sid · panesPerSeries slots each. */
export class TrendState {
  capacity = 0;
  seriesCount = 0;
  late = 0;
  known = new Uint8Array(0);
  maxTs = new Float64Array(0);
  /** Every window with end ≤ closedBefore has been fitted (or was empty). */
  closedBefore = new Float64Array(0);
  /** The first window end after closedBefore: crossing it is what closes windows. */
  nextEnd = new Float64Array(0);
  /** Index of the newest pane holding events. */
  newest = new Float64Array(0);
  ring = new Float64Array(0);
  latest: Array<Trend | undefined> = [];
}

/**
 * The trend logic for one sliding spec (see the module comment for the method and the class rule).
 * @example const logic = createTrendLogic({ seriesMax: 100_000, spec: { sizeMs: 60_000, slideMs: 10_000 }, latenessMs: 2000 });
 */
export function createTrendLogic(opts: TrendOptions): TrendLogic {
  const t = new Trends(opts);
  return {
    init: () => new TrendState(),
    handle: (st, batch, emit) => t.handle(st, batch, emit),
    onWindow: (st, sid, start, end, emit) => t.onWindow(st, sid, start, end, emit),
    latest: (st, sid) => st.latest[sid] ?? null,
    stats: (st) => ({ series: st.seriesCount, late: st.late, panesPerSeries: t.ringPanes }),
    snapshot: (st) => runSlices(t.snapshotSlices(st, Infinity)),
    restore: (snap) => runSlices(t.restoreSlices(snap as TrendSnapshot | TrendSnapshotV1, Infinity)),
    snapshotSlices: (st, seriesPerSlice) => t.snapshotSlices(st, seriesPerSlice),
    restoreSlices: (snap, seriesPerSlice) => t.restoreSlices(snap as TrendSnapshot | TrendSnapshotV1, seriesPerSlice),
  };
}

class Trends {
  readonly ringPanes: number;
  private readonly sizeMs: number;
  private readonly slideMs: number;
  private readonly windowPanes: number;
  private readonly paneSeconds: number;
  private readonly widthSeconds: number;
  private readonly latenessMs: number;
  private readonly seriesMax: number;
  private readonly minPoints: number;
  private readonly relativeChangeMin: number;
  private readonly tMinSquared: number;
  private readonly specKey: string;

  constructor(opts: TrendOptions) {
    const { sizeMs, slideMs } = opts.spec;
    assert(slideMs > 0 && sizeMs % slideMs === 0, "the size is a positive multiple of the slide");
    const latenessMs = opts.latenessMs ?? limits.latenessMsDefault;
    assert(latenessMs >= 0 && opts.seriesMax >= 1, "lateness ≥ 0 and seriesMax ≥ 1");
    this.minPoints = opts.minPoints ?? defaults.minPoints;
    this.relativeChangeMin = opts.relativeChangeMin ?? defaults.relativeChangeMin;
    const tMin = opts.tMin ?? defaults.tMin;
    assert(this.minPoints >= 3, "a slope's significance needs at least 3 points");
    assert(this.relativeChangeMin >= 0 && tMin >= 0, "thresholds are not negative");
    this.sizeMs = sizeMs;
    this.slideMs = slideMs;
    this.windowPanes = sizeMs / slideMs;
    this.ringPanes = this.windowPanes + Math.ceil(latenessMs / slideMs);
    if (this.ringPanes > limits.trendPanesPerSeriesMax) {
      throw new Error(
        `trend: window ${sizeMs} ms sliding by ${slideMs} ms with lateness ${latenessMs} ms needs ${this.ringPanes} panes a series, ` +
          `at most ${limits.trendPanesPerSeriesMax}`,
      );
    }
    this.paneSeconds = slideMs / 1000;
    this.widthSeconds = sizeMs / 1000;
    this.latenessMs = latenessMs;
    this.seriesMax = opts.seriesMax;
    this.tMinSquared = tMin * tMin;
    this.specKey = `${sizeMs}/${slideMs}`;
  }

  handle(st: TrendState, b: EventBatch, emit: Emit): void {
    const { n, sid, ts, value } = b;
    const L = this.latenessMs;
    const S = this.slideMs;
    const R = this.ringPanes;
    let { known, maxTs, closedBefore, nextEnd, ring } = st;
    for (let i = 0; i < n; i++) {
      const s = sid[i];
      if (s >= known.length || known[s] === 0) {
        this.addSeries(st, s);
        ({ known, maxTs, closedBefore, nextEnd, ring } = st); // the columns may have grown
      }
      const t = ts[i];
      if (t > maxTs[s]) {
        maxTs[s] = t;
        // Closing before adding is what the window actor does after adding: t is in no window ending ≤ t − L.
        const c = t - L;
        if (c >= nextEnd[s]) this.closeTo(st, s, c, emit);
        else if (c > closedBefore[s]) closedBefore[s] = c; // crosses no window end: nothing to fit
      }
      const p = Math.floor(t / S);
      if ((p + 1) * S <= closedBefore[s]) {
        st.late++;
        continue;
      }
      let k = p % R;
      if (k < 0) k += R;
      const o = (s * R + k) * paneFields;
      const v = value[i];
      if (ring[o] !== p) this.openPane(st, s, o, p, v);
      const x = (t - p * S) / 1000;
      const u = v - ring[o + 4];
      ring[o + 1] += 1;
      ring[o + 2] += x;
      ring[o + 3] += x * x;
      ring[o + 5] += u;
      ring[o + 6] += u * u;
      ring[o + 7] += x * u;
    }
  }

  onWindow(st: TrendState, sid: number, start: number, end: number, emit: Emit): void {
    assert(end - start === this.sizeMs && end % this.slideMs === 0, `window [${start}, ${end}) is one of spec ${this.specKey}`);
    if (sid >= st.known.length || st.known[sid] === 0) return; // no event of it reached the trend
    if (end <= st.closedBefore[sid]) return; // fitted already, when the watermark passed it
    this.closeTo(st, sid, end, emit);
  }

  private addSeries(st: TrendState, s: number): void {
    assert(Number.isInteger(s) && s < this.seriesMax, `series id ${s} within seriesMax ${this.seriesMax}`);
    if (s >= st.capacity) this.grow(st, s + 1);
    st.known[s] = 1;
    st.maxTs[s] = -Infinity;
    st.closedBefore[s] = -Infinity;
    st.nextEnd[s] = -Infinity;
    st.newest[s] = -Infinity;
    st.seriesCount++;
  }

  /** Doubles the columns until `need` series fit (at most seriesMax): rare, so the steady state allocates nothing. */
  private grow(st: TrendState, need: number): void {
    let cap = Math.max(st.capacity, Math.min(seriesCapacityInitial, this.seriesMax));
    while (cap < need) cap = Math.min(this.seriesMax, cap * 2);
    const col = (old: Float64Array) => {
      const a = new Float64Array(cap);
      a.set(old);
      return a;
    };
    const known = new Uint8Array(cap);
    known.set(st.known);
    const ring = new Float64Array(cap * this.ringPanes * paneFields);
    ring.set(st.ring);
    for (let o = st.ring.length; o < ring.length; o += paneFields) ring[o] = -Infinity;
    Object.assign(st, {
      capacity: cap, known, ring,
      maxTs: col(st.maxTs), closedBefore: col(st.closedBefore), nextEnd: col(st.nextEnd), newest: col(st.newest),
    });
  }

  /** Takes slot o for pane p. The pane it held is no longer needed: the ring spans every pane an open window holds. */
  private openPane(st: TrendState, s: number, o: number, p: number, v: number): void {
    const ring = st.ring;
    assert(ring[o] < st.nextEnd[s] / this.slideMs - this.windowPanes, "a reused pane slot holds no open window's pane");
    ring[o] = p;
    ring[o + 1] = 0;
    ring[o + 2] = 0;
    ring[o + 3] = 0;
    ring[o + 4] = v;
    ring[o + 5] = 0;
    ring[o + 6] = 0;
    ring[o + 7] = 0;
    if (p > st.newest[s]) st.newest[s] = p;
  }

  /** Raises closedBefore to c (> closedBefore) and fits the non-empty windows whose end it passes, oldest first. */
  private closeTo(st: TrendState, s: number, c: number, emit: Emit): void {
    const S = this.slideMs;
    const firstEnd = Math.floor(st.closedBefore[s] / S) + 1; // end indices, in slides
    const lastEnd = Math.floor(c / S);
    st.closedBefore[s] = c;
    st.nextEnd[s] = (lastEnd + 1) * S;
    const newest = st.newest[s];
    if (newest === -Infinity) return;
    // A non-empty window ends after some held pane and at most windowPanes after the newest.
    const to = Math.min(lastEnd, newest + this.windowPanes);
    for (let e = Math.max(firstEnd, newest - this.ringPanes + 1); e <= to; e++) this.fit(st, s, e, emit);
  }

  /** Merges the panes of the window ending at pane index e into window-relative sums and emits its fit. */
  private fit(st: TrendState, s: number, e: number, emit: Emit): void {
    const ring = st.ring;
    const R = this.ringPanes;
    const K = this.windowPanes;
    let n = 0;
    let sx = 0;
    let sxx = 0;
    let su = 0;
    let suu = 0;
    let sxu = 0;
    let ref = 0;
    for (let k = 0; k < K; k++) {
      const p = e - K + k;
      let slot = p % R;
      if (slot < 0) slot += R;
      const o = (s * R + slot) * paneFields;
      if (ring[o] !== p) continue;
      const m = ring[o + 1];
      const px = ring[o + 2];
      const pu = ring[o + 5];
      if (n === 0) ref = ring[o + 4];
      const d = k * this.paneSeconds; // pane start − window start
      const du = ring[o + 4] - ref; // pane ref − window ref
      n += m;
      sx += px + m * d;
      sxx += ring[o + 3] + 2 * d * px + m * d * d;
      su += pu + m * du;
      suu += ring[o + 6] + 2 * du * pu + m * du * du;
      sxu += ring[o + 7] + d * pu + du * px + m * d * du;
    }
    if (n === 0) return;
    const trend = this.trendOf(s, e * this.slideMs, n, sx, sxx, su, suu, sxu, ref);
    st.latest[s] = trend;
    emit(trend);
  }

  /** The least-squares line and class from a window's sums (x from the window's start, u = y − ref). */
  private trendOf(s: number, end: number, n: number, sx: number, sxx: number, su: number, suu: number, sxu: number, ref: number): Trend {
    const mx = sx / n;
    const mu = su / n;
    const cxx = Math.max(0, sxx - sx * mx);
    const cxu = sxu - sx * mu;
    const cuu = Math.max(0, suu - su * mu);
    const instant = !(cxx > instantRelative * sxx);
    const slope = instant ? 0 : cxu / cxx;
    const mean = ref + mu;
    const sse = Math.max(0, cuu - slope * cxu);
    const level = Math.max(Math.abs(mean), Math.sqrt(cuu / n));
    const change = slope * this.widthSeconds;
    return {
      kind: "trend", sid: s, ts: end, start: end - this.sizeMs, end,
      slope, intercept: mean - slope * mx, r2: cuu > 0 ? Math.min(1, Math.max(0, 1 - sse / cuu)) : 0,
      n, change, level, class: this.classify(n, instant, slope, cxx, sse, change, level),
    };
  }

  /** The class rule of the module comment. t² = b²·Sxx·(n − 2) / SSE, compared without dividing (SSE may be 0). */
  private classify(n: number, instant: boolean, slope: number, cxx: number, sse: number, change: number, level: number): TrendClass {
    if (n < this.minPoints || instant) return "unknown";
    const significant = slope !== 0 && slope * slope * cxx * (n - 2) >= this.tMinSquared * sse;
    const material = Math.abs(change) > this.relativeChangeMin * level;
    if (!significant || !material) return "stable";
    return slope > 0 ? "rising" : "falling";
  }

  *snapshotSlices(st: TrendState, seriesPerSlice: number): Generator<void, TrendSnapshot> {
    assert(seriesPerSlice > 0, "a slice holds a series at least");
    const R = this.ringPanes;
    const series = new Float64Array(st.seriesCount * (seriesFields + 1));
    let used = 0;
    for (let o = 0; o < st.ring.length; o += paneFields) if (st.ring[o] !== -Infinity) used++;
    const panes = new Float64Array(used * paneFields);
    const withLatest = st.latest.reduce((m, t) => (t === undefined ? m : m + 1), 0);
    const latest = new Float64Array(withLatest * latestFields);
    let r = 0;
    let q = 0;
    let u = 0;
    for (let s = 0; s < st.capacity; s++) {
      if (st.known[s] === 0) continue;
      const from = u;
      for (let k = 0; k < R; k++) {
        const o = (s * R + k) * paneFields;
        if (st.ring[o] === -Infinity) continue;
        panes.set(st.ring.subarray(o, o + paneFields), u);
        u += paneFields;
      }
      series.set([s, st.maxTs[s], st.closedBefore[s], st.newest[s], (u - from) / paneFields], r * (seriesFields + 1));
      r++;
      if (r % seriesPerSlice === 0) yield;
      const t = st.latest[s];
      if (t === undefined) continue;
      latest.set([s, t.start, t.end, t.slope, t.intercept, t.r2, t.n, t.change, t.level, classes.indexOf(t.class)], q);
      q += latestFields;
    }
    return { version: 2, spec: this.specKey, latenessMs: this.latenessMs, late: st.late, series, panes, latest };
  }

  *restoreSlices(snap: TrendSnapshot | TrendSnapshotV1, seriesPerSlice: number): Generator<void, TrendState> {
    assert(seriesPerSlice > 0, "a slice holds a series at least");
    if (snap.version !== 2 && snap.version !== 1) throw new Error(`trend snapshot: unknown version ${String((snap as { version: unknown }).version)}`);
    if (snap.spec !== this.specKey || snap.latenessMs !== this.latenessMs) {
      throw new Error(`trend snapshot: taken with window ${snap.spec} and lateness ${snap.latenessMs} ms, now ${this.specKey} and ${this.latenessMs} ms`);
    }
    const st = new TrendState();
    st.late = snap.late;
    const series = yield* copyFloat64Slices(snap.series);
    const panes = yield* copyFloat64Slices(snap.panes);
    const R = this.ringPanes;
    const v1 = snap.version === 1;
    const rowFields = v1 ? seriesFields : seriesFields + 1;
    // Room for the largest sid at once: the capacity doubling would reach, without a copy of the ring per doubling.
    let sidMax = -1;
    for (let o = 0; o < series.length; o += rowFields) sidMax = Math.max(sidMax, series[o]);
    if (sidMax >= 0) this.grow(st, sidMax + 1);
    let u = 0;
    for (let r = 0; r * rowFields < series.length; r++) {
      if (r > 0 && r % seriesPerSlice === 0) yield;
      const o = r * rowFields;
      const s = series[o];
      this.addSeries(st, s);
      st.maxTs[s] = series[o + 1];
      st.closedBefore[s] = series[o + 2];
      st.newest[s] = series[o + 3];
      st.nextEnd[s] = (Math.floor(st.closedBefore[s] / this.slideMs) + 1) * this.slideMs;
      const slots = v1 ? R : series[o + 4];
      for (let j = 0; j < slots; j++, u += paneFields) {
        const p = panes[u];
        if (p === -Infinity) continue; // version 1: an unused slot
        const k = ((p % R) + R) % R;
        st.ring.set(panes.subarray(u, u + paneFields), (s * R + k) * paneFields);
      }
    }
    assert(u === panes.length, "every pane of the snapshot restored");
    const latest = yield* copyFloat64Slices(snap.latest);
    for (let q = 0; q < latest.length; q += latestFields) {
      if (q > 0 && (q / latestFields) % seriesPerSlice === 0) yield;
      const [s, start, end, slope, intercept, r2, n, change, level, cls] = latest.subarray(q, q + latestFields);
      st.latest[s] = { kind: "trend", sid: s, ts: end, start, end, slope, intercept, r2, n, change, level, class: classes[cls] };
    }
    return st;
  }
}
