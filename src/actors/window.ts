/**
 * The window actor's pure logic: per-series event-time windows over columnar
 * batches, closed by each series' own watermark or, once the series is
 * quiet, by wall time. The contract, exactly:
 *
 * - Panes. Every spec is built from panes of P = gcd of all sizes and slides
 *   (10 s for "10s,60s/10s"); pane start = floor(ts / P)·P. An accepted event
 *   updates exactly one pane of its series (count, sum, min, max, first,
 *   last, quantile sketch), whatever the number of specs. A window
 *   [start, end) of a spec is the merge of the panes inside it; sliding
 *   windows are merged from panes, never re-scanned. Window ends are
 *   multiples of the slide.
 * - Sliding. Count, sum, min and max are folded over a window's panes in
 *   order (a slid float sum would round differently), first / last come from
 *   its first / last pane. Its quantiles, when it spans several panes and
 *   more than limits.sketchExactMax values, come from the series' pane run
 *   for that spec (slideTo): the merge of the last emitted window's panes,
 *   slid as the next window closes (the panes that left go out, the new ones
 *   come in), so about two sketch merges a slide instead of one per pane. A
 *   run answers bit for bit as merging the panes would (SlidingMerge in
 *   src/sketch/quantile.ts); a window whose values span too many buckets to
 *   sum unfolded, or a smaller one, is merged from its panes directly.
 * - first / last: the value of the event with the smallest / largest ts in
 *   the window; on equal ts, the earliest / latest arrival.
 * - Watermark. Each series keeps maxTs (newest event time seen) and
 *   closedBefore: every window with end ≤ closedBefore is closed. After each
 *   accepted event, closedBefore = max(closedBefore, maxTs − lateness). The
 *   windows that this closes and that hold at least one event are emitted
 *   once, in order of end, and for equal ends in spec order. A window that
 *   never held an event is never emitted.
 * - Late. An event is late iff the earliest-ending window holding its pane
 *   has closed (for specs with a slide equal to P, such as the defaults,
 *   simply paneEnd ≤ closedBefore). A late event changes no aggregate and no
 *   watermark; it is emitted as a LateEvent and counted.
 * - Delay. Each series estimates how far behind the wall clock it arrives
 *   (src/actors/delay.ts: receive time − event time of its events, late ones
 *   included, over its last one to two periods of event time, plus as much
 *   again as that delay has varied). Until it has sent
 *   limits.delayWarmupEvents events, its jitter is not known and it is
 *   assumed to be as large as the delay itself: delay(s) = 2 × its largest
 *   delay seen. It changes only when the series' events arrive.
 * - Quiet. In tick(now) only: a series with open panes for which
 *   now − delay − lateness ≥ nextEnd (the first window end after
 *   closedBefore) gets closedBefore = now − delay − lateness and emits what
 *   that closes. A series that keeps sending in order, as far behind the
 *   clock as it has been, so never loses an event to this rule: its next
 *   event time is ≥ its receive time − delay > now − delay − lateness. A
 *   real-time series (delay ≈ 0) closes at end + lateness as it always did.
 *   Series wait in a min-heap keyed by due = nextEnd + delay + lateness, so a
 *   tick pops exactly the series whose close would change something: the
 *   outcome is that of applying the rule to every series at every tick,
 *   without the scan. Entries are re-armed lazily (on pop the real due is
 *   recomputed and re-pushed if it moved later) and lowered in place when a
 *   series' delay falls; one entry per series at most, so the heap is bounded
 *   by seriesMax. Ties pop in sid order. The caller chooses `now`: the
 *   partition worker never passes a time later than the receive time of a
 *   batch still waiting for it (src/partition/worker.ts).
 * - Rollups (option `rollups`, e.g. 1m and 1h; see src/actors/rollup.ts for
 *   the aggregate and its memory). A rollup window is fed, one pane at a
 *   time, as the base windows inside it are emitted, and closes by the same
 *   closedBefore as every window of its series: it is emitted once, when
 *   closedBefore reaches its end, and only if it held an event. For equal
 *   ends the specs come first, then the rollups in option order (so an hour
 *   closes as 10s, 60s/10s, 1m, 1h). Late events are in no base window, so
 *   in no rollup. Once a series has no open pane but an open rollup, the
 *   quiet rule applies to it only at the tick that closes that rollup (due =
 *   max(lastArrival, first open rollup end) + lateness): until then its
 *   closedBefore stays, so an event arriving meanwhile is placed exactly as
 *   without rollups; from then on an event of a base window inside a closed
 *   rollup is late, as it must be for the rollup to stay the merge of its
 *   base windows. Such a series' heap entry is lowered in place when an event
 *   opens a pane again (its due may come before the rollup's).
 * - Memory. A pane is dropped once every window holding it has closed, i.e.
 *   when pane.start < min over specs of (first open end − size). A series so
 *   holds about (lateness + largest size) / P panes, plus one accumulator
 *   per rollup (no panes: a 1h rollup costs what a 1m one does). If it would
 *   exceed limits.panesPerSeriesMax (only with a lateness far above the
 *   window sizes), every window holding its oldest pane is closed early.
 *   A pane run per sliding spec, only while that spec's windows hold more
 *   than sketchExactMax values: the window's raw values (8 bytes each, at
 *   most sketchMergeExactPartsMax × sketchExactMax of them) or its bins
 *   (about one pane sketch's worth). Measured on bench/window.ts's streams:
 *   3.3 KB a series at 300 raw values a window, 4.1 KB with lognormal values
 *   binned, 17 KB with values across zero (two stores). A run goes back to a
 *   pool once its panes are dropped, so a quiet or light series holds none.
 * - A backfill (a series whose events start an hour ago, sent in order)
 *   advances only its own watermark; its windows close as its maxTs passes
 *   them and are exact. Other series are unaffected.
 * - Deterministic: the same batches and ticks give the same output.
 *   snapshot() is plain data (typed arrays as bins) and restore() continues
 *   identically, heap and sketches included. Pane runs are derived from the
 *   panes and not in the snapshot: after restore() each is built again from
 *   the panes of the next window that needs it. emit must not call back into
 *   the logic.
 *
 * handle() allocates nothing per event: the newest pane is checked first
 * (O(1)); panes, rollup windows and pane runs come from pools; only window
 * results and late events are new objects. Rollups and pane runs cost
 * nothing per event: they are only touched when a window closes.
 *
 * @example
 *   const logic = createWindowLogic({ specs: parseWindowSpecs("10s"), latenessMs: 2000, seriesMax: 1000 });
 *   const st = logic.init();
 *   logic.handle(st, { n: 1, sid: Uint32Array.of(0), ts: Float64Array.of(5), value: Float64Array.of(1), recvMs: 5 }, out);
 *   logic.tick(st, 12_000, out); // quiet (delay 0): closes [0, 10000) and emits it
 *   // With rollups: createWindowLogic({ ..., rollups: [{ label: "1m", sizeMs: 60_000 }] }) also emits
 *   // { spec: "1m", start: 0, end: 60000, ... } once closedBefore reaches 60000.
 */
import { strict as assert } from "node:assert";
import type { ActorLogic } from "../runtime/actor.ts";
import type { EventBatch } from "../runtime/codec.ts";
import { limits } from "../runtime/limits.ts";
import { copyFloat64Slices, runSlices } from "../runtime/slices.ts";
import { float64Of, QuantileSketch, type SketchColumns, SlidingMerge, type SketchSnapshot } from "../sketch/quantile.ts";
import { RecentDelay, recentDelayFields } from "./delay.ts";
import { Aggregate, rollupBaseOf, rollupFields, RollupWindow, type RollupOption } from "./rollup.ts";
import { paneMsOf, type WindowSpec } from "./window-spec.ts";

export type { EventBatch };

export interface WindowResult {
  kind: "window";
  sid: number;
  /** The spec's label, e.g. "60s/10s", or the rollup's, e.g. "1h". */
  spec: string;
  start: number;
  end: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  avg: number;
  p50: number;
  p95: number;
  p99: number;
  first: number;
  last: number;
}

export interface LateEvent { kind: "late"; sid: number; ts: number; value: number }
export type WindowOutput = WindowResult | LateEvent;

/**
 * One series' pane as it closes (no event can join it any more): the
 * aggregate of its accepted events, the views' input (views/view-set.ts).
 * Read it within the call; the window actor reuses it.
 */
export interface ClosedPane {
  readonly start: number; readonly count: number; readonly sum: number; readonly min: number; readonly max: number;
  readonly first: number; readonly firstTs: number; readonly last: number; readonly lastTs: number; readonly sketch: QuantileSketch;
}
export interface WindowOptions {
  specs: WindowSpec[];
  latenessMs: number;
  seriesMax: number;
  /** Downsampled windows merged from the base spec's, e.g. [{ label: "1m", sizeMs: 60_000 }]; none by default. */
  rollups?: RollupOption[];
  /** The delay estimate's period (limits.delayPeriodMs unless a test sets it). */
  delayPeriodMs?: number;
}
export interface WindowStats { series: number; openPanes: number; late: number }

export interface WindowLogic extends ActorLogic<WindowState, EventBatch, WindowOutput> {
  /**
   * The quiet rule at nowMs. With `seriesMax`, closes at most that many due
   * series and answers false if more are due: calling again (at nowMs or
   * later) goes on exactly where it stopped, as one call would have.
   */
  tick(state: WindowState, nowMs: number, emit: (out: WindowOutput) => void, seriesMax?: number): boolean;
  snapshot(state: WindowState): WindowSnapshot;
  /**
   * snapshot() in slices: yields after every `seriesPerSlice` series (and
   * after each piece of the columns joined at the end), so a caller can do
   * other bounded work (a heartbeat) between them; returns what snapshot()
   * would, byte for byte once encoded. Nothing may change the state until
   * it has returned.
   * @example const it = logic.snapshotSlices(st, 5_000); let r; while (!(r = it.next()).done) beat(); r.value
   */
  snapshotSlices(state: WindowState, seriesPerSlice: number): Generator<void, WindowSnapshot>;
  /** restore() in slices of `seriesPerSlice` series (and as many sketches), yielding between them; returns what restore() would. */
  restoreSlices(snap: unknown, seriesPerSlice: number): Generator<void, WindowState>;
  stats(state: WindowState): WindowStats;
  /**
   * The event-time instant before which the quiet rule holds that series
   * `sid` has all its data at `nowMs` (now − its delay − lateness), or
   * null for a series never seen. Rules read a silence from it.
   */
  frontier(state: WindowState, sid: number, nowMs: number): number | null;
  /**
   * A bound under the event time of every event this partition may still
   * take into a window, at `nowMs`: the least over its series of, for one
   * with an open pane, the start of the pane holding its closedBefore (an
   * event is taken only into a pane ending after closedBefore: a hard
   * bound); for one without, also no earlier than now − its delay −
   * lateness (the quiet rule's promise: a series that sends in order, as far
   * behind the clock as it has been, sends nothing older). +Infinity for no
   * series. O(series): the views read it about once a second
   * (partition-pipeline.ts), never per event.
   * @example logic.lowFrontier(st, nowMs) // ≤ every future accepted ts, but for out-of-order or newly slow producers
   */
  lowFrontier(state: WindowState, nowMs: number): number;
  /**
   * handle() with the watermark capped: no series' closedBefore passes
   * `capMs` − its delay − lateness, as the quiet rule would not at that
   * clock (cluster mode: events still upstream in NATS may be older than
   * what arrives now; see Windows.handle).
   */
  handleCapped(state: WindowState, batch: EventBatch, emit: (out: WindowOutput) => void, capMs: number): void;
  /** Calls `fn` for every event handle() takes into a window (not the late ones), in order; null: none. */
  onAccepted(fn: ((sid: number, ts: number, value: number) => void) | null): void;
  /**
   * Calls `fn` for every pane as its series' closedBefore passes its end
   * (in order of start within a series), when some spec slides by the pane
   * (then a pane takes no event once closedBefore reaches its end);
   * answers false, and never calls, for specs without one. null: none.
   */
  onPaneClosed(fn: ((sid: number, pane: ClosedPane) => void) | null): boolean;
  /**
   * Calls `fn` for every pane handle() opens (an event's first in it, out of
   * order into a gap too), once it is in place; null: none. Like the pane
   * closed callback, `fn` may read the panes (firstOpenPane,
   * forEachOpenPaneOf) but change nothing.
   */
  onPaneOpened(fn: ((sid: number, start: number) => void) | null): void;
  /** Calls `fn` for every pane not closed yet, series by series (sid order), in order of start. */
  forEachOpenPane(state: WindowState, fn: (sid: number, pane: ClosedPane) => void): void;
  /** Calls `fn` for series `sid`'s panes not closed yet, in order of start (none for a series never seen). */
  forEachOpenPaneOf(state: WindowState, sid: number, fn: (sid: number, pane: ClosedPane) => void): void;
  /**
   * The start of series `sid`'s first pane not closed yet that starts at or
   * after `from`; +Infinity for none. O(the series' panes).
   * @example logic.firstOpenPane(st, sid, -Infinity) // its oldest open pane's start
   */
  firstOpenPane(state: WindowState, sid: number, from: number): number;
  /**
   * The running aggregate of spec `j`'s open window holding series `sid`'s
   * newest event (the one of them that ends first), as it would close if
   * nothing more came; null when the series has no open pane. Changes
   * nothing (no pane run is moved): a live view of an open window.
   */
  peek(state: WindowState, sid: number, j: number): WindowResult | null;
}

/**
 * Plain data: one row of seriesFields per series, paneFields per pane (series
 * order), one sketch per pane; rollupFields per open rollup window (series,
 * then option order), one sketch each. The sketches travel as columns
 * (SketchColumns): a checkpoint of 3,500 sketches encodes two bins, not
 * 3,500 objects (version 3 had one object per sketch; it still restores).
 */
export interface WindowSnapshot {
  version: 4;
  specs: string;
  latenessMs: number;
  late: number;
  series: Float64Array | Uint8Array;
  panes: Float64Array | Uint8Array;
  sketches: SketchColumns;
  heapDue: Float64Array | Uint8Array;
  heapSid: Float64Array | Uint8Array;
  rollups: Float64Array | Uint8Array;
  rollupSketches: SketchColumns;
}

/** Version 3: the same, with one object per sketch. */
export type WindowSnapshotV3 = Omit<WindowSnapshot, "version" | "sketches" | "rollupSketches"> & {
  version: 3; sketches: SketchSnapshot[]; rollupSketches: SketchSnapshot[];
};
/** A snapshot from before delays were kept (series rows of seriesFieldsV2, no delay). */
export type WindowSnapshotV2 = Omit<WindowSnapshotV3, "version"> & { version: 2 };

type Emit = (out: WindowOutput) => void;
const seriesFields = 6 + recentDelayFields; // sid, maxTs, closedBefore, inHeap, paneCount, seen, then the RecentDelay row
const seriesFieldsV2 = 6; // sid, maxTs, lastArrivalMs, closedBefore, inHeap, paneCount
const paneFields = 9; // start, count, sum, min, max, first, firstTs, last, lastTs
const heapInitial = 64;
const percentileQs = [0.5, 0.95, 0.99];

/** The aggregate of one series' accepted events in [start, end). */
class Pane extends Aggregate {
  add(ts: number, v: number): void {
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    // Equal ts: first keeps the earliest arrival, last takes the latest.
    if (ts < this.firstTs) {
      this.firstTs = ts;
      this.first = v;
    }
    if (ts >= this.lastTs) {
      this.lastTs = ts;
      this.last = v;
    }
    this.sketch.add(v);
  }
}

/**
 * The quantile merge of the panes of one spec's last emitted window
 * [from, to), slid forward to the next window as it closes. Every pane in
 * it is frozen (an event for it would be late), and no pane can appear in
 * [from, to) later, so it stays the merge of exactly the series' panes there;
 * a pane that is dropped leaves it first (from moves past it).
 */
class PaneRun {
  from = 0;
  to = 0;
  readonly merge = new SlidingMerge();
}

class Series {
  maxTs = -Infinity;
  /** How far behind the wall this series arrives (own samples). */
  readonly delay = new RecentDelay();
  /** Events seen, counted up to limits.delayWarmupEvents. */
  seen = 0;
  closedBefore = -Infinity;
  /** First window end (any spec) after closedBefore; crossing it is what closes windows. */
  nextEnd = -Infinity;
  inHeap = false;
  /** Panes with events, by start; head is the newest. */
  readonly panes: Pane[] = [];
  head: Pane | null = null;
  /** The open window of each rollup (option order), null when none is open. */
  readonly rollups: Array<RollupWindow | null>;
  rollupsOpen = 0;
  /** Per spec, the merge of its last emitted window's panes (see slideTo); null until a sliding window needs one. */
  runs: Array<PaneRun | null> | null = null;
  constructor(readonly sid: number, rollupCount: number) {
    this.rollups = rollupCount === 0 ? noRollups : new Array<RollupWindow | null>(rollupCount).fill(null);
  }
}

const noRollups: Array<RollupWindow | null> = [];

/** Count, sum, min and max of panes i.. before `end`, and m, the first pane past them. */
interface PaneFold { m: number; count: number; sum: number; min: number; max: number; exact: boolean }

function foldPanes(panes: Pane[], i: number, end: number): PaneFold {
  let m = i;
  let count = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  let exact = true;
  // Folded over every pane in order: a sum slid by adding and subtracting would round differently.
  // A few operations a pane; the sketches are what cost.
  while (m < panes.length && panes[m].start < end) {
    const p = panes[m++];
    count += p.count;
    sum += p.sum;
    if (p.min < min) min = p.min;
    if (p.max > max) max = p.max;
    if (!p.sketch.isExact) exact = false;
  }
  return { m, count, sum, min, max, exact };
}

/** The percentiles of the merge of panes i..m−1 into `q`. */
function mergePanes(st: WindowState, panes: Pane[], i: number, m: number, q: Float64Array): void {
  const parts = st.parts;
  for (let k = i; k < m; k++) parts[k - i] = panes[k].sketch;
  QuantileSketch.quantilesOfMerge(parts, m - i, percentileQs, q, st.scratch);
}

/** Whether the series has a window that tick() may have to close. */
function isOpen(s: Series): boolean {
  return s.panes.length > 0 || s.rollupsOpen > 0;
}

/** The delay the quiet rule waits for (see the module comment). */
function delayOf(s: Series): number {
  return s.seen < limits.delayWarmupEvents ? 2 * s.delay.maxMs : s.delay.ms;
}

/**
 * Min-heap of (due ms, sid); ties by sid, so pops come in one order whatever
 * the layout. `at` indexes each sid's entry, for lower().
 */
class DueHeap {
  due: Float64Array;
  sid: Uint32Array;
  at: Int32Array;
  size = 0;

  constructor(capacity: number, private readonly capacityMax: number) {
    this.due = new Float64Array(capacity);
    this.sid = new Uint32Array(capacity);
    this.at = new Int32Array(capacity);
  }

  push(due: number, sid: number): void {
    if (this.size === this.due.length) this.grow();
    if (sid >= this.at.length) this.growAt(sid);
    this.siftUp(this.size++, due, sid);
  }

  /** Moves the entry of `sid` (which must be in the heap) earlier if `due` is before its own. */
  lower(sid: number, due: number): void {
    const i = this.at[sid];
    assert(i < this.size && this.sid[i] === sid, "lower() an entry in the heap");
    if (due < this.due[i]) this.siftUp(i, due, sid);
  }

  topDue(): number {
    return this.due[0];
  }

  pop(): number {
    const top = this.sid[0];
    const n = --this.size;
    const due = this.due[n];
    const sid = this.sid[n];
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.less(this.due[child + 1], this.sid[child + 1], child)) child++;
      if (!this.lessThanItem(this.due[child], this.sid[child], due, sid)) break;
      this.put(i, this.due[child], this.sid[child]);
      i = child;
    }
    this.put(i, due, sid);
    return top;
  }

  /** Places (due, sid) at i or above, moving the larger parents down. */
  private siftUp(i: number, due: number, sid: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(due, sid, parent)) break;
      this.put(i, this.due[parent], this.sid[parent]);
      i = parent;
    }
    this.put(i, due, sid);
  }

  private put(i: number, due: number, sid: number): void {
    this.due[i] = due;
    this.sid[i] = sid;
    this.at[sid] = i;
  }

  private less(due: number, sid: number, at: number): boolean {
    return this.lessThanItem(due, sid, this.due[at], this.sid[at]);
  }

  private lessThanItem(d1: number, s1: number, d2: number, s2: number): boolean {
    return d1 < d2 || (d1 === d2 && s1 < s2);
  }

  private grow(): void {
    // One entry per series, so the heap never outgrows seriesMax.
    assert(this.size < this.capacityMax, "one heap entry per series");
    const cap = Math.min(this.capacityMax, this.due.length * 2);
    const due = new Float64Array(cap);
    const sid = new Uint32Array(cap);
    due.set(this.due);
    sid.set(this.sid);
    this.due = due;
    this.sid = sid;
  }

  /** Room in `at` for sid (< seriesMax, asserted where series are added). */
  private growAt(sid: number): void {
    const at = new Int32Array(Math.min(this.capacityMax, Math.max(sid + 1, this.at.length * 2)));
    at.set(this.at);
    this.at = at;
  }
}

export class WindowState {
  series: Array<Series | undefined> = [];
  seriesCount = 0;
  openPanes = 0;
  late = 0;
  readonly heap: DueHeap;
  /** Panes of closed windows, reused so the steady state allocates none; never more than the peak of open panes. */
  readonly freePanes: Pane[] = [];
  /** Rollup windows emitted, reused likewise; never more than the peak of open ones. */
  readonly freeRollups: RollupWindow[] = [];
  /** Pane runs released, reused likewise; never more than the peak in use (at most one per series and sliding spec). */
  readonly freeRuns: PaneRun[] = [];
  /** p50, p95, p99 of the window being emitted. */
  readonly percentiles = new Float64Array(percentileQs.length);
  /** The pane sketches of the window being emitted, and room to merge them. */
  readonly parts: QuantileSketch[] = [];
  readonly scratch = new QuantileSketch();
  /** Per-spec cursors while closing: next candidate end, index of its first pane. */
  readonly cursorEnd: Float64Array;
  readonly cursorAt: Int32Array;

  constructor(specCount: number, seriesMax: number) {
    this.heap = new DueHeap(Math.min(heapInitial, seriesMax), seriesMax);
    this.cursorEnd = new Float64Array(specCount);
    this.cursorAt = new Int32Array(specCount);
  }
}

/**
 * The window logic for a set of specs (see the module comment for the contract).
 * @example const logic = createWindowLogic({ specs: parseWindowSpecs("10s,60s/10s"), latenessMs: 2000, seriesMax: 100_000 });
 */
export function createWindowLogic(opts: WindowOptions): WindowLogic {
  const w = new Windows(opts);
  return {
    init: () => new WindowState(w.specCount, opts.seriesMax),
    handle: (st, batch, emit) => w.handle(st, batch, emit, Infinity),
    handleCapped: (st, batch, emit, capMs) => w.handle(st, batch, emit, capMs),
    tick: (st, nowMs, emit, seriesMax = Infinity) => w.tick(st, nowMs, emit, seriesMax),
    snapshot: (st) => w.snapshot(st),
    snapshotSlices: (st, seriesPerSlice) => w.snapshotSlices(st, seriesPerSlice),
    restoreSlices: (snap, seriesPerSlice) => w.restoreSlices(snap as WindowSnapshot | WindowSnapshotV3 | WindowSnapshotV2, seriesPerSlice),
    restore: (snap) => w.restore(snap as WindowSnapshot | WindowSnapshotV3 | WindowSnapshotV2),
    stats: (st) => ({ series: st.seriesCount, openPanes: st.openPanes, late: st.late }),
    frontier: (st, sid, nowMs) => w.frontier(st, sid, nowMs),
    lowFrontier: (st, nowMs) => w.lowFrontier(st, nowMs),
    onAccepted: (fn) => {
      w.accepted = fn;
    },
    onPaneClosed: (fn) => {
      if (!w.panesClose) return false;
      w.paneClosed = fn;
      return true;
    },
    onPaneOpened: (fn) => {
      w.paneOpened = fn;
    },
    forEachOpenPane: (st, fn) => w.forEachOpenPane(st, fn),
    forEachOpenPaneOf: (st, sid, fn) => {
      const s = st.series[sid];
      if (s !== undefined) w.forEachOpenPaneOf(s, fn);
    },
    firstOpenPane: (st, sid, from) => w.firstOpenPane(st, sid, from),
    peek: (st, sid, j) => w.peek(st, sid, j),
  };
}

class Windows {
  /** See WindowLogic.onAccepted. */
  accepted: ((sid: number, ts: number, value: number) => void) | null = null;
  /** See WindowLogic.onPaneClosed. */
  paneClosed: ((sid: number, pane: ClosedPane) => void) | null = null;
  /** See WindowLogic.onPaneOpened. */
  paneOpened: ((sid: number, start: number) => void) | null = null;
  /** Whether some spec slides by the pane: every pane end is then a window end, so closeTo is what closes a pane. */
  readonly panesClose: boolean;
  readonly specCount: number;
  private readonly labels: string[];
  private readonly sizes: Float64Array;
  private readonly slides: Float64Array;
  private readonly paneMs: number;
  private readonly latenessMs: number;
  private readonly seriesMax: number;
  private readonly delayPeriodMs: number;
  private readonly specsKey: string;
  /** The spec whose windows feed the rollups (−1: no rollups), and the rollups. */
  private readonly base: number;
  private readonly rollupCount: number;
  private readonly rollupLabels: string[];
  private readonly rollupSizes: Float64Array;

  constructor(opts: WindowOptions) {
    const { specs, latenessMs, seriesMax } = opts;
    assert(specs.length >= 1 && specs.length <= limits.windowSpecsMax, "1..windowSpecsMax specs");
    assert(latenessMs >= 0 && seriesMax >= 1, "lateness ≥ 0 and seriesMax ≥ 1");
    this.specCount = specs.length;
    this.labels = specs.map((s) => s.label);
    this.sizes = Float64Array.from(specs, (s) => s.sizeMs);
    this.slides = Float64Array.from(specs, (s) => s.slideMs);
    this.paneMs = paneMsOf(specs);
    this.panesClose = specs.some((s) => s.slideMs === this.paneMs);
    for (const s of specs) {
      assert(s.sizeMs % s.slideMs === 0 && s.sizeMs / this.paneMs <= limits.panesPerWindowMax, `valid spec ${s.label}`);
    }
    this.latenessMs = latenessMs;
    this.seriesMax = seriesMax;
    this.delayPeriodMs = opts.delayPeriodMs ?? limits.delayPeriodMs;
    assert(this.delayPeriodMs > 0, "delay period > 0");
    const rollups = opts.rollups ?? [];
    this.base = rollupBaseOf(specs, rollups);
    this.rollupCount = rollups.length;
    this.rollupLabels = rollups.map((r) => r.label);
    this.rollupSizes = Float64Array.from(rollups, (r) => r.sizeMs);
    this.specsKey = specs.map((s) => `${s.label}=${s.sizeMs}/${s.slideMs}`).join(",") +
      (rollups.length > 0 ? ` rollups ${rollups.map((r) => `${r.label}=${r.sizeMs}`).join(",")}` : "");
  }

  /**
   * `capMs`: Infinity, or (cluster mode) the held receive clock: a message
   * redelivered by JetStream after newer ones (its split failed while NATS
   * was away) brings events older than the series' maxTs by more than the
   * lateness. The upstream floor holds the clock at its receive time, and
   * here the watermark waits for it as the quiet rule does.
   */
  handle(st: WindowState, b: EventBatch, emit: Emit, capMs: number): void {
    const { n, sid, ts, value, recvMs } = b;
    const all = st.series;
    const lateness = this.latenessMs;
    for (let i = 0; i < n; i++) {
      const t = ts[i];
      const v = value[i];
      const s = all[sid[i]] ?? this.addSeries(st, sid[i]);
      // A delay inside what the series' current period has seen changes nothing: most events stop here.
      const dl = s.delay;
      const d = recvMs > t ? recvMs - t : 0;
      if (t >= dl.periodEnd || d > dl.curMax || d < dl.curMin || s.seen < limits.delayWarmupEvents) this.observeDelay(st, s, t, d);
      const p = s.head;
      if (p !== null && t >= p.start && t < p.end && p.end > s.closedBefore) p.add(t, v);
      else if (!this.place(st, s, t, v, emit)) continue;
      if (this.accepted !== null) this.accepted(sid[i], t, v);
      if (t > s.maxTs) {
        s.maxTs = t;
        let c = t - lateness;
        if (c > capMs - lateness) c = Math.min(c, capMs - delayOf(s) - lateness); // a cap only while the clock is held back
        if (c >= s.nextEnd) this.closeTo(st, s, c, emit);
        else if (c > s.closedBefore) s.closedBefore = c; // crosses no window end: nothing to emit
      }
    }
  }

  frontier(st: WindowState, sid: number, nowMs: number): number | null {
    const s = st.series[sid];
    return s === undefined ? null : nowMs - delayOf(s) - this.latenessMs;
  }

  lowFrontier(st: WindowState, nowMs: number): number {
    const P = this.paneMs;
    let low = Infinity;
    for (const s of st.series) {
      if (s === undefined) continue;
      const taken = Math.floor(s.closedBefore / P) * P; // -Infinity before its first event
      const f = s.panes.length > 0 ? taken : Math.max(taken, nowMs - delayOf(s) - this.latenessMs);
      if (f < low) low = f;
    }
    return low;
  }

  tick(st: WindowState, nowMs: number, emit: Emit, seriesMax: number): boolean {
    const heap = st.heap;
    for (let popped = 0; heap.size > 0 && heap.topDue() <= nowMs; popped++) {
      if (popped === seriesMax) return false;
      const s = st.series[heap.pop()]!;
      if (isOpen(s) && this.dueOf(s) <= nowMs) this.closeTo(st, s, nowMs - delayOf(s) - this.latenessMs, emit);
      // After a close, or if the entry was stale, the due lies after nowMs: this loop ends.
      if (isOpen(s)) heap.push(this.dueOf(s), s.sid);
      else s.inHeap = false;
    }
    return true;
  }

  /** When the quiet rule next closes something: the next window end (with no pane open, the first rollup end) + delay + lateness. */
  private dueOf(s: Series): number {
    let next = s.nextEnd;
    // Nothing closed yet (a new series' first pane, before its watermark is set): the first window holding that pane.
    if (next === -Infinity && s.panes.length > 0) next = this.firstEndHolding(s.panes[0].start);
    if (s.panes.length === 0) {
      next = Infinity;
      for (const w of s.rollups) if (w !== null && w.end < next) next = w.end;
    }
    return next + delayOf(s) + this.latenessMs;
  }

  /**
   * Takes one event's arrival delay into its series' estimate. A series
   * whose delay fell (its warm-up ended, or a period of larger delays left
   * the estimate) is due earlier: its heap entry moves up. A rise needs
   * nothing: the entry is re-armed when it pops.
   */
  private observeDelay(st: WindowState, s: Series, t: number, delayMs: number): void {
    const before = delayOf(s);
    s.delay.observe(delayMs, t, this.delayPeriodMs);
    if (s.seen < limits.delayWarmupEvents) s.seen++;
    if (s.inHeap && delayOf(s) < before) st.heap.lower(s.sid, this.dueOf(s));
  }

  private addSeries(st: WindowState, sid: number): Series {
    assert(sid < this.seriesMax, `series id ${sid} within seriesMax ${this.seriesMax}`);
    while (st.series.length <= sid) st.series.push(undefined);
    const s = new Series(sid, this.rollupCount); // once per series
    st.series[sid] = s;
    st.seriesCount++;
    return s;
  }

  /** The event is not in the open newest pane: late, an older pane, or a new one. False when late. */
  private place(st: WindowState, s: Series, t: number, v: number, emit: Emit): boolean {
    const P = this.paneMs;
    const start = Math.floor(t / P) * P;
    if (start + P <= s.closedBefore && this.firstEndHolding(start) <= s.closedBefore) {
      st.late++;
      emit({ kind: "late", sid: s.sid, ts: t, value: v });
      return false;
    }
    const panes = s.panes;
    let k = panes.length - 1;
    while (k >= 0 && panes[k].start > start) k--;
    if (k >= 0 && panes[k].start === start) {
      panes[k].add(t, v);
      return true;
    }
    const pane = st.freePanes.pop() ?? new Pane(); // a new Pane only while the pool is empty
    pane.reset(start, start + P);
    pane.add(t, v);
    if (k === panes.length - 1) {
      panes.push(pane);
      s.head = pane;
    } else {
      panes.splice(k + 1, 0, pane); // out of order into a gap: rare, and splice(…, 0, x) returns an empty list
    }
    st.openPanes++;
    if (!s.inHeap) {
      st.heap.push(this.dueOf(s), s.sid);
      s.inHeap = true;
    } else if (panes.length === 1) {
      st.heap.lower(s.sid, this.dueOf(s)); // only rollups were open: the entry may be due after this pane
    }
    if (panes.length > limits.panesPerSeriesMax) this.shed(st, s, emit);
    if (this.paneOpened !== null) this.paneOpened(s.sid, start);
    return true;
  }

  /** The earliest end, over specs, of a window holding the pane at `start`. */
  private firstEndHolding(start: number): number {
    let end = Infinity;
    for (let j = 0; j < this.specCount; j++) {
      const L = this.slides[j];
      end = Math.min(end, Math.ceil((start + this.paneMs) / L) * L);
    }
    return end;
  }

  /** Raises closedBefore to c (> closedBefore), emits the windows that closes, drops unneeded panes. */
  private closeTo(st: WindowState, s: Series, c: number, emit: Emit): void {
    const c0 = s.closedBefore;
    this.setClosedBefore(s, c);
    if (!isOpen(s)) return;
    this.emitClosed(st, s, c0, c, emit);
    if (this.paneClosed !== null) this.emitPanesClosed(s, c0, c);
    this.dropPanes(st, s);
  }

  /** The panes whose end lies in (c0, c1]: closed by this closeTo (panesClose). */
  private emitPanesClosed(s: Series, c0: number, c1: number): void {
    const P = this.paneMs;
    for (const p of s.panes) {
      const end = p.start + P;
      if (end > c1) break;
      if (end > c0) this.paneClosed!(s.sid, p);
    }
  }

  forEachOpenPane(st: WindowState, fn: (sid: number, pane: ClosedPane) => void): void {
    for (const s of st.series) if (s !== undefined) this.forEachOpenPaneOf(s, fn);
  }

  forEachOpenPaneOf(s: Series, fn: (sid: number, pane: ClosedPane) => void): void {
    const P = this.paneMs;
    for (const p of s.panes) if (p.start + P > s.closedBefore) fn(s.sid, p);
  }

  firstOpenPane(st: WindowState, sid: number, from: number): number {
    const s = st.series[sid];
    if (s === undefined) return Infinity;
    // The open panes, and those at or after `from`, are the newest: from the newest back (a series holds the closed
    // panes of its sliding windows before them, six for 60s/10s, and mostly one open).
    const P = this.paneMs;
    const panes = s.panes;
    let first = Infinity;
    for (let k = panes.length - 1; k >= 0 && panes[k].start >= from && panes[k].start + P > s.closedBefore; k--) first = panes[k].start;
    return first;
  }

  private setClosedBefore(s: Series, c: number): void {
    s.closedBefore = c;
    let next = Infinity;
    for (let j = 0; j < this.specCount; j++) {
      const L = this.slides[j];
      next = Math.min(next, Math.floor(c / L) * L + L);
    }
    s.nextEnd = next;
  }

  /** Emits the non-empty windows with c0 < end ≤ c1: by end, then spec order, then rollup order. */
  private emitClosed(st: WindowState, s: Series, c0: number, c1: number, emit: Emit): void {
    const ends = st.cursorEnd;
    const at = st.cursorAt;
    for (let j = 0; j < this.specCount; j++) {
      const L = this.slides[j];
      at[j] = 0;
      ends[j] = this.nextWindow(st, s.panes, j, Math.floor(c0 / L) * L + L);
    }
    for (;;) {
      let best = -1;
      for (let j = 0; j < this.specCount; j++) {
        if (ends[j] <= c1 && (best < 0 || ends[j] < ends[best])) best = j;
      }
      if (s.rollupsOpen > 0 && this.emitRollupBefore(st, s, best < 0 ? Infinity : ends[best], c1, emit)) continue;
      if (best < 0) return;
      this.emitWindow(st, s, best, ends[best], at[best], emit);
      if (best === this.base) this.feedRollups(st, s, s.panes[at[best]]);
      ends[best] = this.nextWindow(st, s.panes, best, ends[best] + this.slides[best]);
    }
  }

  /** Emits the first-ending open rollup window (option order on ties) that ends by c1 and before specEnd; false if none. */
  private emitRollupBefore(st: WindowState, s: Series, specEnd: number, c1: number, emit: Emit): boolean {
    let r = -1;
    for (let k = 0; k < this.rollupCount; k++) {
      const w = s.rollups[k];
      if (w !== null && w.end <= c1 && w.end < specEnd && (r < 0 || w.end < s.rollups[r]!.end)) r = k;
    }
    if (r < 0) return false;
    const w = s.rollups[r]!;
    const q = st.percentiles;
    w.sketch.quantiles(percentileQs, q);
    emit({
      kind: "window", sid: s.sid, spec: this.rollupLabels[r], start: w.start, end: w.end,
      count: w.count, sum: w.sum, min: w.min, max: w.max, avg: w.sum / w.count,
      p50: q[0], p95: q[1], p99: q[2], first: w.first, last: w.last,
    });
    s.rollups[r] = null;
    s.rollupsOpen--;
    st.freeRollups.push(w);
    return true;
  }

  /** Merges the pane of a base window just emitted into each rollup's window holding it, opening that window if needed. */
  private feedRollups(st: WindowState, s: Series, pane: Pane): void {
    for (let r = 0; r < this.rollupCount; r++) {
      const R = this.rollupSizes[r];
      const start = Math.floor(pane.start / R) * R;
      let w = s.rollups[r];
      if (w === null) {
        w = st.freeRollups.pop() ?? new RollupWindow(); // a new one only while the pool is empty
        w.reset(start, start + R);
        s.rollups[r] = w;
        s.rollupsOpen++;
      }
      // An earlier rollup window ends before this base window does, so emitClosed has emitted it already.
      assert(w.start === start, "rollup windows close in order");
      w.feed(pane);
    }
  }

  /** From candidate end e on, the first end of spec j whose window holds a pane (Infinity if none). */
  private nextWindow(st: WindowState, panes: Pane[], j: number, e: number): number {
    const S = this.sizes[j];
    const L = this.slides[j];
    let i = st.cursorAt[j];
    for (;;) {
      while (i < panes.length && panes[i].start < e - S) i++;
      st.cursorAt[j] = i;
      if (i === panes.length) return Infinity;
      const ps = panes[i].start;
      if (ps < e) return e;
      e = Math.ceil((ps + this.paneMs) / L) * L; // skip the empty windows up to the first holding pane i
    }
  }

  /** Merges the panes of [end − size, end) from index i and emits the result. */
  private emitWindow(st: WindowState, s: Series, j: number, end: number, i: number, emit: Emit): void {
    const f = foldPanes(s.panes, i, end);
    const q = st.percentiles;
    // One pane, or at most sketchExactMax values (a cheap merge): merged here. A larger window slides.
    if (f.m - i > 1 && f.count > limits.sketchExactMax && this.slideTo(st, s, j, end, i, f.m, f.exact)) {
      s.runs![j]!.merge.quantiles(percentileQs, q, f.min, f.max);
    } else {
      mergePanes(st, s.panes, i, f.m, q);
    }
    emit(this.resultOf(s, j, end, i, f, q));
  }

  peek(st: WindowState, sid: number, j: number): WindowResult | null {
    const s = st.series[sid];
    if (s === undefined || s.panes.length === 0) return null;
    const panes = s.panes;
    const newest = panes[panes.length - 1].start;
    const end = Math.floor(newest / this.slides[j]) * this.slides[j] + this.slides[j];
    if (end <= s.closedBefore) return null; // its window has closed (what is left open belongs to other specs)
    let i = panes.length - 1;
    while (i > 0 && panes[i - 1].start >= end - this.sizes[j]) i--;
    const f = foldPanes(panes, i, end);
    const q = new Float64Array(percentileQs.length); // a peek's own: st.percentiles belongs to emitWindow's results
    mergePanes(st, panes, i, f.m, q);
    return this.resultOf(s, j, end, i, f, q);
  }

  private resultOf(s: Series, j: number, end: number, i: number, f: PaneFold, q: Float64Array): WindowResult {
    return {
      kind: "window", sid: s.sid, spec: this.labels[j], start: end - this.sizes[j], end,
      count: f.count, sum: f.sum, min: f.min, max: f.max, avg: f.sum / f.count,
      p50: q[0], p95: q[1], p99: q[2],
      first: s.panes[i].first, last: s.panes[f.m - 1].last,
    };
  }

  /**
   * Moves spec j's pane run to the window [end − size, end), panes i..m−1:
   * the panes before the window leave it oldest first, the new ones join.
   * About two sketch merges a slide; every pane again only when the run is
   * new (a first window, a gap, a restore) or changes form (exact when
   * quantilesOfMerge would merge these panes exactly, else counts). False
   * when the counts would not fit unfolded: the run is released and the
   * caller merges the panes itself.
   */
  private slideTo(st: WindowState, s: Series, j: number, end: number, i: number, m: number, exact: boolean): boolean {
    const from = end - this.sizes[j];
    const form = exact && m - i <= limits.sketchMergeExactPartsMax;
    const runs = s.runs ?? (s.runs = new Array<PaneRun | null>(this.specCount).fill(null)); // once per series
    let run = runs[j];
    if (run === null) {
      run = st.freeRuns.pop() ?? new PaneRun(); // a new one only while the pool is empty
      run.to = -Infinity;
      runs[j] = run;
    }
    if (run.to <= from || run.merge.exact !== form) {
      run.merge.reset(form);
      run.from = run.to = from;
    }
    assert(run.from <= from && run.to <= end, "pane runs only slide forward");
    const panes = s.panes;
    let k = i;
    while (k > 0 && panes[k - 1].start >= run.from) k--;
    for (; k < i; k++) run.merge.remove(panes[k].sketch);
    k = i;
    while (k < m && panes[k].start < run.to) k++; // already in the run
    for (; k < m; k++) {
      if (!run.merge.add(panes[k].sketch)) {
        this.releaseRun(st, s, j);
        return false;
      }
    }
    run.from = from;
    run.to = end;
    return true;
  }

  /** A pane about to be dropped leaves the runs holding it, as their oldest; an emptied run goes back to the pool. */
  private leaveRuns(st: WindowState, s: Series, p: Pane): void {
    const runs = s.runs!;
    for (let j = 0; j < this.specCount; j++) {
      const run = runs[j];
      if (run === null || p.start < run.from || p.start >= run.to) continue;
      run.merge.remove(p.sketch);
      run.from = p.start + this.paneMs;
      if (run.merge.count === 0) this.releaseRun(st, s, j);
    }
  }

  private releaseRun(st: WindowState, s: Series, j: number): void {
    st.freeRuns.push(s.runs![j]!);
    s.runs![j] = null;
  }

  /** Drops the panes no open window holds: start < min over specs of (first open end − size). */
  private dropPanes(st: WindowState, s: Series): void {
    const c = s.closedBefore;
    let keepFrom = Infinity;
    for (let j = 0; j < this.specCount; j++) {
      const L = this.slides[j];
      keepFrom = Math.min(keepFrom, Math.floor(c / L) * L + L - this.sizes[j]);
    }
    const panes = s.panes;
    let k = 0;
    while (k < panes.length && panes[k].start < keepFrom) {
      if (s.runs !== null) this.leaveRuns(st, s, panes[k]);
      st.freePanes.push(panes[k++]);
    }
    if (k === 0) return;
    // Shift in place rather than splice(), which would allocate the removed list.
    for (let m = k; m < panes.length; m++) panes[m - k] = panes[m];
    panes.length -= k;
    st.openPanes -= k;
    s.head = panes.length > 0 ? panes[panes.length - 1] : null;
  }

  /** Over limits.panesPerSeriesMax: close every window holding the oldest pane, early, so it goes. */
  private shed(st: WindowState, s: Series, emit: Emit): void {
    while (s.panes.length > limits.panesPerSeriesMax) {
      const start = s.panes[0].start;
      let c = s.closedBefore;
      for (let j = 0; j < this.specCount; j++) {
        const L = this.slides[j];
        c = Math.max(c, Math.floor(start / L) * L + this.sizes[j]);
      }
      this.closeTo(st, s, c, emit);
    }
  }

  snapshot(st: WindowState): WindowSnapshot {
    return runSlices(this.snapshotSlices(st, Infinity));
  }

  *snapshotSlices(st: WindowState, seriesPerSlice: number): Generator<void, WindowSnapshot> {
    assert(seriesPerSlice > 0, "a slice holds a series at least");
    const list = st.series.filter((s): s is Series => s !== undefined);
    const series = new Float64Array(list.length * seriesFields);
    const panes = new Float64Array(st.openPanes * paneFields);
    // Columns per slice, joined at the end: columns hold no offsets, so the join is what one columnsOf() of all gives.
    const paneSketches: SketchColumns[] = [];
    const rollupParts: Array<{ rollups: Float64Array; rollupSketches: SketchColumns }> = [];
    let r = 0;
    let q = 0;
    for (let from = 0; from < list.length; from += seriesPerSlice) {
      const slice = list.slice(from, from + seriesPerSlice);
      const sketches: QuantileSketch[] = [];
      // Field by field: an array literal per row, then set(), cost more than the rows' own data.
      for (const s of slice) {
        series[r] = s.sid;
        series[r + 1] = s.maxTs;
        series[r + 2] = s.closedBefore;
        series[r + 3] = s.inHeap ? 1 : 0;
        series[r + 4] = s.panes.length;
        series[r + 5] = s.seen;
        s.delay.writeRow(series, r + 6);
        r += seriesFields;
        for (const p of s.panes) {
          panes[q] = p.start;
          panes[q + 1] = p.count;
          panes[q + 2] = p.sum;
          panes[q + 3] = p.min;
          panes[q + 4] = p.max;
          panes[q + 5] = p.first;
          panes[q + 6] = p.firstTs;
          panes[q + 7] = p.last;
          panes[q + 8] = p.lastTs;
          q += paneFields;
          sketches.push(p.sketch);
        }
      }
      paneSketches.push(QuantileSketch.columnsOf(sketches));
      rollupParts.push(this.snapshotRollups(slice));
      yield;
    }
    const heap = st.heap;
    return {
      version: 4, specs: this.specsKey, latenessMs: this.latenessMs, late: st.late, series, panes, sketches: yield* joinColumns(paneSketches),
      heapDue: heap.due.slice(0, heap.size), heapSid: Float64Array.from(heap.sid.subarray(0, heap.size)),
      rollups: yield* joinFloat64(rollupParts.map((x) => x.rollups)), rollupSketches: yield* joinColumns(rollupParts.map((x) => x.rollupSketches)),
    };
  }

  private snapshotRollups(list: Series[]): { rollups: Float64Array; rollupSketches: SketchColumns } {
    const rows: number[] = [];
    const sketches: QuantileSketch[] = [];
    for (const s of list) {
      s.rollups.forEach((w, r) => {
        if (w === null) return;
        rows.push(s.sid, r, ...w.row());
        sketches.push(w.sketch);
      });
    }
    return { rollups: Float64Array.from(rows), rollupSketches: QuantileSketch.columnsOf(sketches) };
  }

  /** Restores a snapshot() of this version, of version 3 (a sketch object each), or of version 2 (before delays were kept: see restoreSeriesV2). */
  restore(snap: WindowSnapshot | WindowSnapshotV3 | WindowSnapshotV2): WindowState {
    return runSlices(this.restoreSlices(snap, Infinity));
  }

  *restoreSlices(snap: WindowSnapshot | WindowSnapshotV3 | WindowSnapshotV2, seriesPerSlice: number): Generator<void, WindowState> {
    assert(seriesPerSlice > 0, "a slice holds a series at least");
    if (snap.version !== 4 && snap.version !== 3 && snap.version !== 2) throw new Error(`window snapshot: unknown version ${String((snap as { version: unknown }).version)}`);
    if (snap.specs !== this.specsKey || snap.latenessMs !== this.latenessMs) {
      throw new Error(`window snapshot: taken with windows ${snap.specs} and lateness ${snap.latenessMs} ms, now ${this.specsKey} and ${this.latenessMs} ms`);
    }
    const st = new WindowState(this.specCount, this.seriesMax);
    st.late = snap.late;
    const series = yield* copyFloat64Slices(snap.series);
    const panes = yield* copyFloat64Slices(snap.panes);
    const v3 = snap.version !== 2; // series rows with the delay (versions 3 and 4)
    const sketches = yield* restoreSketches(snap.sketches, seriesPerSlice); // a slice of sketches is about a slice of series' panes
    let q = 0;
    for (let r = 0, n = 0; r < series.length; r += v3 ? seriesFields : seriesFieldsV2) {
      const s = this.addSeries(st, series[r]);
      s.maxTs = series[r + 1];
      const paneCount = v3 ? this.restoreSeriesV3(s, series, r) : this.restoreSeriesV2(s, series, r);
      for (let k = 0; k < paneCount; k++, q++) s.panes.push(this.restorePane(panes, q, sketches[q]));
      s.head = s.panes.length > 0 ? s.panes[s.panes.length - 1] : null;
      st.openPanes += s.panes.length;
      if (++n % seriesPerSlice === 0) yield;
    }
    assert(q === sketches.length, "one sketch per pane");
    yield* this.restoreRollups(st, yield* copyFloat64Slices(snap.rollups), yield* restoreSketches(snap.rollupSketches, seriesPerSlice), seriesPerSlice);
    if (v3) {
      const due = float64Of(snap.heapDue);
      const sid = float64Of(snap.heapSid);
      for (let i = 0; i < due.length; i++) st.heap.push(due[i], sid[i]);
    } else {
      // Version 2's dues were taken by the old rule: each is taken again by this one.
      for (const s of st.series) if (s?.inHeap) st.heap.push(this.dueOf(s), s.sid);
    }
    return st;
  }

  /** A version-3 (or 4) series row (after sid and maxTs); returns its pane count. */
  private restoreSeriesV3(s: Series, row: Float64Array, r: number): number {
    this.setClosedBefore(s, row[r + 2]);
    s.inHeap = row[r + 3] === 1;
    s.seen = row[r + 5];
    s.delay.fromRow(row, r + 6);
    return row[r + 4];
  }

  /**
   * A version-2 row (sid, maxTs, lastArrivalMs, closedBefore, inHeap,
   * paneCount), from before delays were kept: the series' delay starts from
   * its last arrival − its newest event time, the best sample it left, and it
   * counts as warmed up. Its heap entry is re-armed on its first pop.
   */
  private restoreSeriesV2(s: Series, row: Float64Array, r: number): number {
    const lastArrivalMs = row[r + 2];
    if (Number.isFinite(lastArrivalMs) && Number.isFinite(s.maxTs)) s.delay.observe(lastArrivalMs - s.maxTs, s.maxTs, this.delayPeriodMs);
    s.seen = limits.delayWarmupEvents;
    this.setClosedBefore(s, row[r + 3]);
    s.inHeap = row[r + 4] === 1;
    return row[r + 5];
  }

  private *restoreRollups(st: WindowState, rows: Float64Array, sketches: QuantileSketch[], perSlice: number): Generator<void, void> {
    assert(rows.length === sketches.length * rollupFields, "one sketch per rollup window");
    for (let k = 0; k < sketches.length; k++) {
      const o = k * rollupFields;
      const s = st.series[rows[o]]!;
      const w = new RollupWindow();
      w.fromRow(rows.subarray(o + 2, o + rollupFields), sketches[k]);
      s.rollups[rows[o + 1]] = w;
      s.rollupsOpen++;
      if ((k + 1) % perSlice === 0) yield;
    }
  }

  private restorePane(rows: Float64Array, q: number, sketch: QuantileSketch): Pane {
    const p = new Pane();
    const o = q * paneFields;
    p.reset(rows[o], rows[o] + this.paneMs);
    [p.count, p.sum, p.min, p.max, p.first, p.firstTs, p.last, p.lastTs] = rows.subarray(o + 1, o + paneFields);
    p.sketch = sketch;
    return p;
  }
}

/** The arrays one after another, a copy per yield (the one array itself when there is one). */
function* joinFloat64(parts: Float64Array[]): Generator<void, Float64Array> {
  if (parts.length === 1) return parts[0];
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
    yield;
  }
  return out;
}

/** Sketch columns one after another: what columnsOf() of all their sketches gives. */
function* joinColumns(parts: SketchColumns[]): Generator<void, SketchColumns> {
  return {
    head: yield* joinFloat64(parts.map((c) => c.head as Float64Array)), // columnsOf() makes Float64Arrays
    values: yield* joinFloat64(parts.map((c) => c.values as Float64Array)),
  };
}

/** The sketches of a snapshot: columns (version 4) or one object each (versions 2 and 3). */
function* restoreSketches(x: SketchColumns | SketchSnapshot[], perSlice: number): Generator<void, QuantileSketch[]> {
  return Array.isArray(x) ? x.map((s) => QuantileSketch.restore(s)) : yield* QuantileSketch.fromColumnsSlices(x, perSlice);
}
