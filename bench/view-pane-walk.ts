/**
 * What the views' questions about the open panes cost a partition worker in
 * one piece: ViewSet.panesWaiting (PartitionPipeline.flushViewFrontier, once
 * a second) and ViewSet.cutStale (flushViews, at each checkpoint), at 10,000
 * and 100,000 series, each series with open panes and read by one view fed
 * by pane (sensor.* by zone, 1m, count). Both walked every open pane until
 * the views kept their waiting panes (view-set.ts "Waiting panes"); the
 * index's rebuild after a restore (reindexSlices) is timed too, whole and
 * its longest slice. The pipeline's two calls around them
 * (flushViewFrontier: the window actor's lowFrontier too; flushViews:
 * takeDeltas too) are timed beside them, so the share is plain. The
 * stream's own time (window actor and the views' hooks) is printed once.
 *
 * The stream: every series sends one event in each 10 s pane for
 * `seconds` of event time (windows 10s,60s/10s, their rollups), received
 * 100 ms after its time, in 5,000-event batches. Lateness 2 s leaves one
 * open pane a series (the newest) and the 60s/10s window's closed panes
 * behind it; VIEW_PANE_WALK_LATENESS_MS=12000 leaves two open. The calls
 * run at the last batch's receive time: no pane has waited past
 * viewPartsHoldMsMax, so cutStale cuts nothing and every round is alike.
 * `rounds` rounds after `warmup` untimed ones; median and max printed.
 *
 * Prints figures; asserts nothing on time.
 *
 * @example bun bench/view-pane-walk.ts
 *          VIEW_PANE_WALK_SERIES=100000 VIEW_PANE_WALK_LATENESS_MS=12000 bun bench/view-pane-walk.ts
 */
import { PartitionPipeline, rollupsFor } from "../src/actors/partition-pipeline.ts";
import { ViewSet, windowPanes } from "../src/actors/views/view-set.ts";
import { parseView } from "../src/actors/views/view.ts";
import { createWindowLogic, type EventBatch } from "../src/actors/window.ts";
import { paneMsOf, parseWindowSpecs } from "../src/actors/window-spec.ts";
import { limits } from "../src/runtime/limits.ts";
import { runSlices } from "../src/runtime/slices.ts";

const seriesCounts = (process.env.VIEW_PANE_WALK_SERIES ?? "10000,100000").split(",").map(Number);
const seriesCountMax = 1_000_000;
const latenessMs = Number(process.env.VIEW_PANE_WALK_LATENESS_MS ?? 2_000);
const seconds = 70; // of event time: the 60s/10s window's panes are all held
const batchEvents = 5_000;
const recvDelayMs = 100;
const zones = 20;
const warmup = 3;
const rounds = 15;
const t0 = Date.UTC(2026, 11, 6, 8, 0, 0);
const specs = parseWindowSpecs("10s,60s/10s");
const rollups = rollupsFor(specs);
const paneMs = paneMsOf(specs);
const view = parseView({ name: "by_zone", from: "sensor.*", group_by: ["zone"], window: "1m", aggregates: ["count"] });

const tagsOf = (sid: number) => ({ device: `d${sid}`, zone: `z${sid % zones}` });

/** One event a series in each pane, pane after pane, cut into batches; the same buffers reused. */
function* batches(series: number): Generator<EventBatch> {
  const b = { n: 0, sid: new Uint32Array(batchEvents), ts: new Float64Array(batchEvents), value: new Float64Array(batchEvents), recvMs: 0 };
  for (let pane = 0; pane < seconds * 1000 / paneMs; pane++) {
    for (let sid = 0; sid < series; sid += b.n) {
      b.n = Math.min(batchEvents, series - sid);
      const ts = t0 + pane * paneMs + paneMs / 2;
      for (let j = 0; j < b.n; j++) {
        b.sid[j] = sid + j;
        b.ts[j] = ts;
        b.value[j] = (sid + j) % 97;
      }
      b.recvMs = ts + recvDelayMs;
      yield b;
    }
  }
}

/**
 * A ViewSet over a window actor's real panes, wired as PartitionPipeline
 * wires them, fed the stream: its clock (the last receive time) and the
 * stream's time (window actor and views' hooks).
 */
function viewSetOver(series: number): { set: ViewSet; nowMs: number; feedMs: number } {
  const window = createWindowLogic({ specs, latenessMs, seriesMax: series, rollups });
  const st = window.init(); // changed in place: the pane source reads it as it stands
  const refs = Array.from({ length: series }, (_, sid) => ({ key: `sensor.temp{device=d${sid}}`, name: "sensor.temp", tags: tagsOf(sid) }));
  const set = new ViewSet();
  set.setPanes(windowPanes(window, () => st, paneMs, (sid) => refs[sid]));
  set.setViews([view]);
  window.onPaneClosed((sid, pane) => set.onPane(sid, refs[sid], pane));
  window.onPaneOpened(set.paneOpened);
  let nowMs = 0;
  const t = Bun.nanoseconds();
  for (const b of batches(series)) {
    window.handle(st, b, () => {});
    nowMs = b.recvMs;
  }
  return { set, nowMs, feedMs: (Bun.nanoseconds() - t) / 1e6 };
}

function pipelineOver(series: number): PartitionPipeline {
  const p = new PartitionPipeline({ specs, latenessMs, seriesMax: series, rollups, views: [view] });
  for (let sid = 0; sid < series; sid++) p.addSeries(sid, "sensor.temp", tagsOf(sid));
  for (const b of batches(series)) {
    p.handleBatch(b);
    p.take(Infinity);
  }
  return p;
}

/** Median and max of `rounds` timed calls of `fn`, after `warmup` untimed ones, in ms. */
function timed(fn: () => void): { medianMs: number; maxMs: number } {
  for (let i = 0; i < warmup; i++) fn();
  const ms: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = Bun.nanoseconds();
    fn();
    ms.push((Bun.nanoseconds() - t) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return { medianMs: ms[ms.length >> 1], maxMs: ms[ms.length - 1] };
}

const fmt = (r: { medianMs: number; maxMs: number }) => `median ${r.medianMs.toFixed(2)} ms, max ${r.maxMs.toFixed(2)} ms`;

for (const series of seriesCounts) {
  if (!(series >= 1 && series <= seriesCountMax)) throw new Error(`VIEW_PANE_WALK_SERIES: ${series} not in 1..${seriesCountMax}`);
  const { set, nowMs, feedMs } = viewSetOver(series);
  const staleBefore = nowMs - limits.viewPartsHoldMsMax;
  let low = NaN;
  let sliceMaxMs = 0;
  const waiting = timed(() => {
    low = set.panesWaiting(staleBefore).low;
  });
  const cut = timed(() => set.cutStale(staleBefore));
  // After a restore the waiting panes are found again series by series (PartitionPipeline.restoreSlices): in one
  // piece, and the longest of its slices of limits.snapshotSeriesPerSlice series.
  const rebuilt = timed(() => runSlices(set.reindexSlices(Infinity)));
  const slice = timed(() => {
    const it = set.reindexSlices(limits.snapshotSeriesPerSlice);
    let longest = 0;
    for (let t = Bun.nanoseconds(), r = it.next(); !r.done; t = Bun.nanoseconds(), r = it.next()) longest = Math.max(longest, Bun.nanoseconds() - t);
    sliceMaxMs = Math.max(sliceMaxMs, longest / 1e6);
  });
  console.log(`${series.toLocaleString("en")} series, lateness ${latenessMs} ms (earliest waiting pane ${(low - t0) / 1000} s after t0):`);
  console.log(`  the stream: ${(series * seconds * 1000 / paneMs).toLocaleString("en")} events, a pane each, in ${feedMs.toFixed(0)} ms (window actor and the views' hooks)`);
  console.log(`  ViewSet.panesWaiting            ${fmt(waiting)}`);
  console.log(`  ViewSet.cutStale (cuts nothing) ${fmt(cut)}`);
  console.log(`  reindexSlices (after a restore) ${fmt(rebuilt)} in one piece; in slices of ${limits.snapshotSeriesPerSlice}: ${fmt(slice)}, longest slice ${sliceMaxMs.toFixed(2)} ms`);
  const p = pipelineOver(series);
  const frontier = timed(() => {
    p.flushViewFrontier(0);
    p.take(Infinity);
  });
  const flush = timed(() => {
    p.flushViews(false);
    p.take(Infinity);
  });
  console.log(`  PartitionPipeline.flushViewFrontier ${fmt(frontier)}`);
  console.log(`  PartitionPipeline.flushViews        ${fmt(flush)}`);
}
