/**
 * One partition's actors chained, as pure logic: window → anomaly → trend,
 * and the alert rules (rules/rule-set.ts) judged on what they close.
 * The worker thread feeds it batches and ticks and ships its output rows;
 * tests drive it directly. Every event of a batch reaches the anomaly and
 * trend actors (they fit and score values; exact aggregation is the window
 * actor's job, so a late event is scored but not aggregated). A closed base
 * window (the first tumbling spec) feeds its count to burst detection; a
 * closed trend window (the first sliding spec, else the largest) triggers
 * a trend fit over it.
 *
 * Rules (only when some are set): every closed window is judged by the
 * rules reading its spec, every closed base window also by the anomaly(...)
 * rules (the series' open anomaly at its end), every trend by the
 * trend(...) rules; and at most every limits.ruleSweepMs of the tick clock
 * the silences are swept (RuleSet.sweep at each series' frontier). Their
 * transitions are `r` rows. Rules need the series' names and tags: the
 * worker hands them over (addSeries) as the engine registers them.
 *
 * Anomaly knobs (`anomalies`, anomaly-knobs.ts): each series gets the
 * knobs of the first entry picking it once its name is known (addSeries,
 * again after every restart, before the checkpoint is restored); the
 * others keep the defaults.
 *
 * @example
 *   const p = new PartitionPipeline({ specs, latenessMs: 2000, seriesMax: 1000, rollups: defaultRollups });
 *   p.handleBatch(batch); p.tick(Date.now());
 *   const out = p.take(4096); // { w, late, a, t } rows for the output ring
 */
import { type Anomaly, type AnomalySnapshot, createAnomalyLogic } from "./anomaly.ts";
import { AnomalyKnobTable, type AnomalyKnobRule } from "./anomaly-knobs.ts";
import { createTrendLogic, type Trend } from "./trend.ts";
import { anomalyRow, type PartitionOutput, trendRow, windowRow } from "./result-rows.ts";
import { type ClosedPane, createWindowLogic, type EventBatch, type WindowOutput, type WindowResult } from "./window.ts";
import { paneMsOf, type WindowSpec } from "./window-spec.ts";
import { RuleSet, type RuleSetSnapshot, type RuleTransition, type SeriesRef } from "./rules/rule-set.ts";
import type { Rule } from "./rules/rule.ts";
import { type TableLookup, ViewSet, type ViewSetSnapshot, windowPanes } from "./views/view-set.ts";
import type { View } from "./views/view.ts";
import { limits } from "../runtime/limits.ts";
import { seriesKey, seriesMatcher } from "../runtime/series.ts";
import { runSlices } from "../runtime/slices.ts";

export type { PartitionOutput };

export interface Rollup { label: string; sizeMs: number }
export const defaultRollups: Rollup[] = [{ label: "1m", sizeMs: 60_000 }, { label: "1h", sizeMs: 3_600_000 }];

/**
 * The rollups a spec set gets: the defaults whose size is a multiple of the
 * base tumbling spec (the first whose size is the pane) and whose label no
 * configured spec already has. None without such a base.
 * @example rollupsFor(parseWindowSpecs("10s,60s/10s")) // 1m and 1h
 */
export function rollupsFor(specs: WindowSpec[]): Rollup[] {
  const pane = paneMsOf(specs);
  const base = specs.find((s) => s.sizeMs === s.slideMs && s.sizeMs === pane);
  if (!base) return [];
  return defaultRollups.filter((r) => r.sizeMs % base.sizeMs === 0 && r.sizeMs > base.sizeMs && !specs.some((s) => s.label === r.label));
}

/** `r`: the rule instances (absent in checkpoints from before rules: they restore with none). */
export interface PipelineSnapshot { v: 1; w: unknown; a: unknown; t: unknown; r?: RuleSetSnapshot; vw?: ViewSetSnapshot }

export interface PipelineOptions {
  specs: WindowSpec[]; latenessMs: number; seriesMax: number; rollups: Rollup[]; rules?: readonly Rule[]; views?: readonly View[];
  /** Anomaly knobs per series selector (validated by the config); none: every series has the defaults. */
  anomalies?: readonly AnomalyKnobRule[];
}

/** Labels of every result the pipeline emits, in spec-index order: the specs, then the rollups. */
export function resultLabels(specs: WindowSpec[], rollups: Rollup[]): string[] {
  return [...specs.map((s) => s.label), ...rollups.map((r) => r.label)];
}

export class PartitionPipeline {
  private readonly window;
  private readonly anomaly;
  private readonly trend;
  private ws;
  private as;
  private ts;
  private readonly specIndex: Map<string, number>;
  private readonly baseLabel: string | undefined;
  private readonly trendLabel: string;
  private out: PartitionOutput = emptyOutput();
  private closed: WindowResult[] = [];
  private closedMs = 0;
  private readonly rules: RuleSet;
  private rulesOn = false;
  private nextSweepMs = 0;
  /** Names and tags by sid, as the engine registered them (addSeries). */
  private readonly series: SeriesRef[] = [];
  private readonly sidByKey = new Map<string, number>();
  private readonly latenessMs: number;
  private readonly views: ViewSet;
  private readonly anomalyKnobs: AnomalyKnobTable;
  /** Running values asked for live (updates:<spec>:<glob> on plain series): per spec index, which series; empty: none. */
  private updates: Array<{ j: number; match: (key: string) => boolean }> = [];
  /** Whether each series is in some running-values subscription (1 yes, 2 no, 0 not worked out yet). */
  private updateWanted = new Uint8Array(0);
  /** Series with events since the last flushUpdates() that some subscription wants: at most seriesMax. */
  private readonly updated = new Set<number>();
  private readonly specLabels: string[];
  /** When (this partition's clock) flushViews next hands over every view part, complete or not. */
  private viewsAllAtMs = 0;

  constructor(opts: PipelineOptions) {
    this.latenessMs = opts.latenessMs;
    this.window = createWindowLogic({ specs: opts.specs, latenessMs: opts.latenessMs, seriesMax: opts.seriesMax, rollups: opts.rollups });
    this.anomaly = createAnomalyLogic({ seriesMax: opts.seriesMax });
    this.anomalyKnobs = new AnomalyKnobTable(opts.anomalies ?? []);
    const trendSpec = opts.specs.find((s) => s.slideMs < s.sizeMs) ?? [...opts.specs].sort((a, b) => b.sizeMs - a.sizeMs)[0];
    this.trend = createTrendLogic({ seriesMax: opts.seriesMax, spec: trendSpec, latenessMs: opts.latenessMs });
    this.trendLabel = trendSpec.label;
    this.baseLabel = opts.specs.find((s) => s.slideMs === s.sizeMs)?.label;
    this.specIndex = new Map(resultLabels(opts.specs, opts.rollups).map((l, i) => [l, i]));
    this.ws = this.window.init();
    this.as = this.anomaly.init();
    this.ts = this.trend.init();
    this.rules = new RuleSet({ windows: { specs: opts.specs, rollups: opts.rollups } });
    this.setRules(opts.rules ?? []);
    this.specLabels = opts.specs.map((s) => s.label);
    this.views = new ViewSet();
    const paneMs = paneMsOf(opts.specs);
    // Some spec slides by the pane (the defaults' 10s does): views whose windows are whole panes take panes, not events.
    const panesClose = this.window.onPaneClosed(null);
    this.views.setPanes(panesClose ? windowPanes(this.window, () => this.ws, paneMs, (sid) => this.series[sid]) : null);
    this.setViews(opts.views ?? []);
  }

  /**
   * The running values live clients ask for: `updates:<spec>:<glob>`
   * subscriptions (the engine's control message; other specs, such as the
   * views' and the rollups', are not this pipeline's). From now on a series
   * they match is marked at each event, and flushUpdates() peeks at its
   * open windows.
   * @example pipeline.setUpdates([{ spec: "10s", glob: "cpu*" }])
   */
  setUpdates(subs: ReadonlyArray<{ spec: string; glob: string }>): void {
    this.updates = subs.flatMap(({ spec, glob }) => {
      const j = this.specLabels.indexOf(spec);
      return j < 0 ? [] : [{ j, match: seriesMatcher(glob) }];
    });
    this.updateWanted = new Uint8Array(0);
    this.updated.clear();
    this.hookAccepted();
  }

  /** The running values of the open windows of the series that had events since the last call (`u` rows), at most limits.updatesPerFlushMax series. */
  flushUpdates(): void {
    let n = 0;
    for (const sid of this.updated) {
      if (n++ === limits.updatesPerFlushMax) break; // the rest at the next flush
      this.updated.delete(sid);
      const key = this.series[sid]?.key;
      if (key === undefined) continue;
      for (const u of this.updates) {
        if (!u.match(key)) continue;
        const r = this.window.peek(this.ws, sid, u.j);
        if (r !== null) this.out.u.push(windowRow.encode(r, u.j, this.closedMs));
      }
    }
  }

  private hookAccepted(): void {
    // Views fed by pane alone need no event (the demo's first view): the window actor then calls nothing per event.
    this.window.onAccepted(this.views.needsEvents || this.updates.length > 0 ? this.onAccepted : null);
    this.window.onPaneClosed(this.views.active ? this.onPane : null);
    this.window.onPaneOpened(this.views.active ? this.views.paneOpened : null); // the views keep the panes they wait for
  }

  /** Whether some running-values subscription wants series `sid` (worked out once per series and change of subscriptions). */
  private wantsUpdates(sid: number): boolean {
    if (sid >= this.updateWanted.length) {
      const grown = new Uint8Array(Math.max(sid + 1, this.updateWanted.length * 2, 64));
      grown.set(this.updateWanted);
      this.updateWanted = grown;
    }
    if (this.updateWanted[sid] === 0) {
      const key = this.series[sid]?.key;
      if (key === undefined) return false; // not registered yet: asked again at its next event
      this.updateWanted[sid] = this.updates.some((u) => u.match(key)) ? 1 : 2;
    }
    return this.updateWanted[sid] === 1;
  }

  /** The continuous views from now on (an unchanged one keeps its open aggregates). */
  setViews(views: readonly View[]): void {
    this.views.setViews(views);
    this.hookAccepted();
  }

  /** A reference table the views join with, as it stands from now on (null: gone). */
  setTable(name: string, table: TableLookup | null): void {
    this.views.setTable(name, table);
    this.hookAccepted(); // a cut may need events
  }

  /**
   * The views' parts due go to the output (`v` rows): called right before
   * each checkpoint. Those of `emit: final` views once their window is
   * complete here (ViewSet.takeDeltas), or every limits.viewPartsHoldMsMax;
   * `stop` (a forced checkpoint: a stop, or the one after a recovery's
   * replay): every part, with what the open panes hold so far (ViewSet.cutForStop;
   * the cut series then take their events one by one until those panes close).
   */
  flushViews(stop = false): void {
    if (!this.views.active) return;
    let all = stop;
    if (stop) this.views.cutForStop();
    // A series' pane that has waited past its end as long as a part may be held (a producer behind the clock, a quiet
    // one, a backfill's last pane) goes to the views now, not when the quiet rule closes it (ViewSet.cutStale).
    else this.views.cutStale(this.closedMs - limits.viewPartsHoldMsMax);
    // At least every viewPartsHoldMsMax of this partition's clock all go, so a final view's merged window (and its
    // `having`) does not wait for its whole window: a 5-minute window is merged every 10 s, not every second.
    if (this.closedMs >= this.viewsAllAtMs) {
      all = true;
      this.viewsAllAtMs = this.closedMs + limits.viewPartsHoldMsMax;
    }
    for (const d of this.views.takeDeltas(all ? Infinity : this.seriesFrontier())) this.out.v.push(d);
    this.hookAccepted(); // a cut may need events
  }

  /**
   * How far the views' windows are complete here, as the `f` row (sent
   * after every `v` row before it): a view window ending at or before it
   * gets no further part from this partition, but from a producer out of
   * order by more than its lateness or newly slower than its delay, which
   * the engine counts late (weir_view_parts_late_total). It is the window
   * actor's lowFrontier at this partition's clock (at most the clock less
   * the lateness), held at most limits.viewFinalLagMsMax behind that
   * clock, and always before the earliest end of a part gathered and not
   * yet taken (flushViews); +Infinity with no series and no part. It
   * speaks for the records up to `handledPos` (`fp`): the engine holds the
   * frontier under the events of later ones. No views: nothing.
   * Answers whether a part held open has become complete here, or a pane
   * waits to be cut (a checkpoint is then due even if nothing else
   * happened: flushViews takes it).
   * @example pipeline.flushViewFrontier(lastPos); pipeline.take(n).f // e.g. 1_700_000_040_000
   */
  flushViewFrontier(handledPos: number): boolean {
    if (!this.views.active) return false;
    const series = this.seriesFrontier();
    const open = this.views.openEndMin();
    // Nor past a pane not yet given to a view fed by pane: the frontier's floor at the clock less viewFinalLagMsMax
    // must not let a window be judged before a slow producer's open pane is cut into it (flushViews).
    const waiting = this.views.panesWaiting(this.closedMs - limits.viewPartsHoldMsMax);
    this.out.f = Math.min(series, open - 1, waiting.low);
    this.out.fp = handledPos;
    // A pane that waited past the hold to close makes a checkpoint due as well (flushViews cuts it): a partition sent
    // nothing more would otherwise keep a producer's last pane from its views until the quiet rule closes it.
    return open <= series || waiting.stale;
  }

  /**
   * Where this partition's series can still take events, at its clock: never past the clock less the lateness,
   * never further behind than limits.viewFinalLagMsMax; +Infinity with no series.
   */
  private seriesFrontier(): number {
    const series = this.window.lowFrontier(this.ws, this.closedMs);
    return series === Infinity ? Infinity : Math.max(Math.min(series, this.closedMs - this.latenessMs), this.closedMs - limits.viewFinalLagMsMax);
  }

  /** View updates refused because limits.viewGroupsMax aggregates were open. */
  get viewsRefused(): number {
    return this.views.refused;
  }

  /** The rules to judge from now on (see RuleSet.set: an unchanged rule keeps its instances); throws a RuleError for one the windows cannot answer. */
  setRules(rules: readonly Rule[]): void {
    const names = new Set(rules.map((r) => r.name));
    for (const r of this.rules.rules()) if (!names.has(r.name)) this.rules.delete(r.name);
    for (const r of rules) this.rules.set(r);
    this.rulesOn = rules.length > 0;
  }

  /** A series' name and tags, under its partition-local id, and its anomaly knobs (idempotent: a sid already known is kept). */
  addSeries(sid: number, name: string, tags: Readonly<Record<string, string>>): void {
    if (this.series[sid] !== undefined) return;
    const key = seriesKey(name, tags as Record<string, string>);
    this.series[sid] = { key, name, tags };
    this.sidByKey.set(key, sid);
    this.views.seriesAdded(sid);
    const knobs = this.anomalyKnobs.knobsOf(name, tags);
    if (knobs !== null) this.anomaly.setSeriesKnobs(sid, knobs);
  }

  /** The series known by sid (addSeries). */
  get seriesCount(): number {
    return this.sidByKey.size;
  }

  /** Rules, their instances and those refused (full rules), for /api/v1/rules. */
  ruleStats(): { rules: number; instances: number; refused: number } {
    return this.rules.stats();
  }

  /** Rows waiting to be shipped. */
  get pending(): number {
    const o = this.out;
    return o.w.length + o.late.length + o.a.length + o.t.length + o.r.length + o.v.length + o.u.length + (o.f === undefined ? 0 : 1);
  }

  /**
   * Takes a batch, after the quiet closes due by its receive time: so the
   * live worker (which also ticks in between, never past a waiting batch's
   * receive time) and a replay of the raw log (which ticks only here) take
   * the same decisions before every batch.
   */
  handleBatch(batch: EventBatch, capMs = Infinity): void {
    this.tick(Math.min(batch.recvMs, capMs));
    this.closedMs = batch.recvMs;
    if (capMs === Infinity) this.window.handle(this.ws, batch, this.onWindowOutput);
    else this.window.handleCapped(this.ws, batch, this.onWindowOutput, capMs);
    this.anomaly.handle(this.as, batch, this.onAnomaly);
    this.trend.handle(this.ts, batch, this.onTrend);
    this.afterWindows();
  }

  /**
   * The quiet rule at `nowMs`: never later than the receive time of a batch
   * not yet handled. With `seriesMax`, closes at most that many series and
   * answers false if more are due (call again before the next batch).
   */
  tick(nowMs: number, seriesMax = Infinity): boolean {
    this.closedMs = nowMs;
    const done = this.window.tick(this.ws, nowMs, this.onWindowOutput, seriesMax);
    this.afterWindows();
    // Only once every due window is closed: a series whose windows this slice left open must not look silent.
    if (this.rulesOn && done && nowMs >= this.nextSweepMs) {
      this.nextSweepMs = nowMs + limits.ruleSweepMs;
      // No series' frontier passes nowMs − lateness (the window's frontier also takes off the series' delay, ≥ 0).
      const frontierMax = nowMs - this.latenessMs;
      if (this.rules.hasInstances) this.rules.sweep((key) => this.frontierOf(key, nowMs), (key) => this.seriesOf(key), this.onRule, frontierMax);
    }
    return done;
  }

  /**
   * The state of all three actors as plain data (MessagePack-encodable), for
   * a checkpoint. Take it with nothing pending: pending rows are not in it.
   */
  snapshot(): PipelineSnapshot {
    return runSlices(this.snapshotSlices(Infinity));
  }

  /**
   * snapshot() in slices: the window state `seriesPerSlice` series at a
   * time (WindowLogic.snapshotSlices), then each other actor; yields between
   * them, so the partition worker beats while a large state is taken.
   * Nothing may change the pipeline until it has returned.
   */
  *snapshotSlices(seriesPerSlice: number): Generator<void, PipelineSnapshot> {
    if (this.pending > 0) throw new Error("snapshot with output pending"); // programmer error
    const w = yield* this.window.snapshotSlices(this.ws, seriesPerSlice);
    const a = yield* this.anomaly.snapshotSlices(this.as);
    yield;
    const snap: PipelineSnapshot = { v: 1, w, a, t: yield* this.trend.snapshotSlices(this.ts, seriesPerSlice) };
    yield;
    if (this.rulesOn) snap.r = this.rules.snapshot();
    if (this.views.active) snap.vw = this.views.snapshot();
    return snap;
  }

  /** Continues from a snapshot() exactly as the pipeline that took it would have. */
  restore(snap: PipelineSnapshot): void {
    runSlices(this.restoreSlices(snap, Infinity));
  }

  /** restore() in slices: the window state `seriesPerSlice` series at a time, then each other actor; yields between them. */
  *restoreSlices(snap: PipelineSnapshot, seriesPerSlice: number): Generator<void, void> {
    if (snap?.v !== 1) throw new Error(`pipeline snapshot: unknown version ${String((snap as { v?: unknown })?.v)}`);
    this.ws = yield* this.window.restoreSlices(snap.w, seriesPerSlice);
    this.as = yield* this.anomaly.restoreSlices(snap.a as AnomalySnapshot);
    yield;
    this.ts = yield* this.trend.restoreSlices(snap.t, seriesPerSlice);
    yield;
    if (snap.r !== undefined) this.rules.restore(snap.r);
    if (snap.vw !== undefined) this.views.restore(snap.vw);
    yield* this.views.reindexSlices(seriesPerSlice); // the window's panes are the snapshot's now
    this.hookAccepted(); // the snapshot's cuts may need events
    this.out = emptyOutput();
    this.closed = [];
  }

  /** Up to `rowsMax` rows of each kind, removed from the pending output. */
  take(rowsMax: number): PartitionOutput {
    const o = this.out;
    if (o.w.length <= rowsMax && o.late.length <= rowsMax && o.a.length <= rowsMax && o.t.length <= rowsMax && o.r.length <= rowsMax && o.v.length <= rowsMax && o.u.length <= rowsMax) {
      this.out = emptyOutput();
      return o;
    }
    // `f` stays for the last part: it speaks for the `v` rows before it.
    return {
      w: o.w.splice(0, rowsMax), late: o.late.splice(0, rowsMax), a: o.a.splice(0, rowsMax), t: o.t.splice(0, rowsMax), r: o.r.splice(0, rowsMax),
      v: o.v.splice(0, rowsMax), u: o.u.splice(0, rowsMax),
    };
  }

  /** Closed windows drive burst detection and trend fits once the whole batch is in every actor. */
  private afterWindows(): void {
    for (const r of this.closed) {
      if (r.spec === this.baseLabel) this.anomaly.handleWindowCount(this.as, r.sid, r.end, r.count, this.onAnomaly);
      if (r.spec === this.trendLabel) this.trend.onWindow(this.ts, r.sid, r.start, r.end, this.onTrend);
      if (this.rulesOn) this.judge(r);
    }
    this.closed = [];
  }

  /** The rules on a closed window: those reading its spec, and at a base window the anomaly(...) ones. */
  private judge(r: WindowResult): void {
    const series = this.series[r.sid];
    if (series === undefined) return; // not registered here yet: cannot happen once the engine sent its series
    this.rules.evaluate(r, series, this.onRule);
    // Only for a series some anomaly(...) rule watches: the open anomaly's lookup and the verdict's object cost
    // about 3 % of the pipeline's events/s at one event a second a series (bench/rules-pipeline.ts).
    if (r.spec === this.baseLabel && this.rules.reads(r.sid, "anomaly")) {
      const severity = this.anomaly.openAnomaly(this.as, r.sid)?.severity ?? null;
      this.rules.anomaly({ sid: r.sid, start: r.start, end: r.end, severity }, series, this.onRule);
    }
  }

  private frontierOf(key: string, nowMs: number): number | null {
    const sid = this.sidByKey.get(key);
    return sid === undefined ? null : this.window.frontier(this.ws, sid, nowMs);
  }

  private seriesOf(key: string): SeriesRef | null {
    const sid = this.sidByKey.get(key);
    return sid === undefined ? null : this.series[sid];
  }

  private readonly onAccepted = (sid: number, ts: number, value: number): void => {
    const series = this.series[sid];
    if (series !== undefined && this.views.active) this.views.onEvent(sid, series, ts, value);
    if (this.updates.length > 0 && this.wantsUpdates(sid)) this.updated.add(sid);
  };

  private readonly onPane = (sid: number, pane: ClosedPane): void => {
    const series = this.series[sid];
    if (series !== undefined) this.views.onPane(sid, series, pane);
  };

  private readonly onRule = (t: RuleTransition): void => {
    this.out.r.push(t);
  };

  private readonly onWindowOutput = (r: WindowOutput): void => {
    if (r.kind === "late") {
      this.out.late.push([r.sid, r.ts, r.value]);
      return;
    }
    this.closed.push(r);
    this.out.w.push(windowRow.encode(r, this.specIndex.get(r.spec)!, this.closedMs));
  };

  private readonly onAnomaly = (a: Anomaly): void => {
    this.out.a.push(anomalyRow.encode(a, this.closedMs));
  };

  private readonly onTrend = (t: Trend): void => {
    this.out.t.push(trendRow.encode(t));
    if (this.rulesOn && t.class !== "unknown" && this.rules.reads(t.sid, "trend")) {
      const series = this.series[t.sid];
      if (series !== undefined) this.rules.trend({ sid: t.sid, start: t.start, end: t.end, class: t.class }, series, this.onRule);
    }
  };
}

function emptyOutput(): PartitionOutput {
  return { w: [], late: [], a: [], t: [], r: [], v: [], u: [] };
}
