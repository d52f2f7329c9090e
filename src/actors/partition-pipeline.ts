/**
 * One partition's actors chained, as pure logic: window → anomaly → trend.
 * The worker thread feeds it batches and ticks and ships its output rows;
 * tests drive it directly. Every event of a batch reaches the anomaly and
 * trend actors (they fit and score values; exact aggregation is the window
 * actor's job, so a late event is scored but not aggregated). A closed base
 * window (the first tumbling spec) feeds its count to burst detection; a
 * closed trend window (the first sliding spec, else the largest) triggers
 * a trend fit over it.
 *
 * @example
 *   const p = new PartitionPipeline({ specs, latenessMs: 2000, seriesMax: 1000, rollups: defaultRollups });
 *   p.handleBatch(batch); p.tick(Date.now());
 *   const out = p.take(4096); // { w, late, a, t } rows for the output ring
 */
import { createAnomalyLogic, type Anomaly } from "./anomaly.ts";
import { createTrendLogic, type Trend } from "./trend.ts";
import { anomalyRow, type PartitionOutput, trendRow, windowRow } from "./result-rows.ts";
import { createWindowLogic, type EventBatch, type WindowOutput, type WindowResult } from "./window.ts";
import { paneMsOf, type WindowSpec } from "./window-spec.ts";

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

export interface PipelineSnapshot { v: 1; w: unknown; a: unknown; t: unknown }

export interface PipelineOptions { specs: WindowSpec[]; latenessMs: number; seriesMax: number; rollups: Rollup[] }

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
  private out: PartitionOutput = { w: [], late: [], a: [], t: [] };
  private closed: WindowResult[] = [];
  private closedMs = 0;

  constructor(opts: PipelineOptions) {
    this.window = createWindowLogic({ specs: opts.specs, latenessMs: opts.latenessMs, seriesMax: opts.seriesMax, rollups: opts.rollups });
    this.anomaly = createAnomalyLogic({ seriesMax: opts.seriesMax });
    const trendSpec = opts.specs.find((s) => s.slideMs < s.sizeMs) ?? [...opts.specs].sort((a, b) => b.sizeMs - a.sizeMs)[0];
    this.trend = createTrendLogic({ seriesMax: opts.seriesMax, spec: trendSpec, latenessMs: opts.latenessMs });
    this.trendLabel = trendSpec.label;
    this.baseLabel = opts.specs.find((s) => s.slideMs === s.sizeMs)?.label;
    this.specIndex = new Map(resultLabels(opts.specs, opts.rollups).map((l, i) => [l, i]));
    this.ws = this.window.init();
    this.as = this.anomaly.init();
    this.ts = this.trend.init();
  }

  /** Rows waiting to be shipped. */
  get pending(): number {
    return this.out.w.length + this.out.late.length + this.out.a.length + this.out.t.length;
  }

  /**
   * Takes a batch, after the quiet closes due by its receive time: so the
   * live worker (which also ticks in between, never past a waiting batch's
   * receive time) and a replay of the raw log (which ticks only here) take
   * the same decisions before every batch.
   */
  handleBatch(batch: EventBatch): void {
    this.tick(batch.recvMs);
    this.closedMs = batch.recvMs;
    this.window.handle(this.ws, batch, this.onWindowOutput);
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
    return done;
  }

  /**
   * The state of all three actors as plain data (MessagePack-encodable), for
   * a checkpoint. Take it with nothing pending: pending rows are not in it.
   */
  snapshot(): PipelineSnapshot {
    if (this.pending > 0) throw new Error("snapshot with output pending"); // programmer error
    return { v: 1, w: this.window.snapshot(this.ws), a: this.anomaly.snapshot(this.as), t: this.trend.snapshot(this.ts) };
  }

  /** Continues from a snapshot() exactly as the pipeline that took it would have. */
  restore(snap: PipelineSnapshot): void {
    if (snap?.v !== 1) throw new Error(`pipeline snapshot: unknown version ${String((snap as { v?: unknown })?.v)}`);
    this.ws = this.window.restore(snap.w);
    this.as = this.anomaly.restore(snap.a);
    this.ts = this.trend.restore(snap.t);
    this.out = { w: [], late: [], a: [], t: [] };
    this.closed = [];
  }

  /** Up to `rowsMax` rows of each kind, removed from the pending output. */
  take(rowsMax: number): PartitionOutput {
    const o = this.out;
    if (o.w.length <= rowsMax && o.late.length <= rowsMax && o.a.length <= rowsMax && o.t.length <= rowsMax) {
      this.out = { w: [], late: [], a: [], t: [] };
      return o;
    }
    return { w: o.w.splice(0, rowsMax), late: o.late.splice(0, rowsMax), a: o.a.splice(0, rowsMax), t: o.t.splice(0, rowsMax) };
  }

  /** Closed windows drive burst detection and trend fits once the whole batch is in every actor. */
  private afterWindows(): void {
    for (const r of this.closed) {
      if (r.spec === this.baseLabel) this.anomaly.handleWindowCount(this.as, r.sid, r.end, r.count, this.onAnomaly);
      if (r.spec === this.trendLabel) this.trend.onWindow(this.ts, r.sid, r.start, r.end, this.onTrend);
    }
    this.closed = [];
  }

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
  };
}
