/**
 * Window actor throughput: handle() (and the worker's tick() after each
 * batch) over columnar batches of 4,096 events from 1,000 series with the
 * default specs "10s,60s/10s" and 2 s lateness. Event time advances at
 * `ratePerSeries` events per second per series, jittered by up to 1.5 s
 * (out of order, never late), so panes fill, windows close and results are
 * emitted. Values are latency-like (lognormal) or, with values: "normal", a
 * normal that crosses zero (both sketch stores, wide bucket ranges). Only the
 * handle() and tick() calls are timed; filling the batches is not.
 *
 * The baseline, in the same run over the same events: one loop doing the
 * per-event part of the aggregation (count, sum, min, max per series per
 * pane in flat Float64Arrays) with no sketch, no watermark and no windows.
 * The ratio says what the sketch, the panes and the closing cost on top.
 * Prints figures; asserts nothing on time. With rollups: true (or
 * WINDOW_BENCH_ROLLUPS=1) the actor also keeps the engine's 1m and 1h
 * rollups, fed as its 10 s windows close.
 *
 * @example bun bench/window.ts                                    # 20 M events, ≤ ~10 s
 *          WINDOW_BENCH_RATE=5 WINDOW_BENCH_VALUES=normal bun bench/window.ts
 *          WINDOW_BENCH_ROLLUPS=1 bun bench/window.ts
 */
import type { RollupOption } from "../src/actors/rollup.ts";
import { createWindowLogic, type EventBatch, type WindowOutput } from "../src/actors/window.ts";
import { paneMsOf, parseWindowSpecs } from "../src/actors/window-spec.ts";
import { createPrng } from "../src/sim/prng.ts";

const eventsDefault = 20_000_000;
const seriesCount = 1000;
const batchEvents = 4096;
const latenessMs = 2000;
const jitterMs = 1500; // < lateness: out of order, never late
/**
 * Events per second of event time per series: 1,000 per 10 s pane. Were the
 * actor fed at its own speed (~10 M/s over 1,000 series), each series would
 * carry ~10,000/s, so this closes windows 100 times more often than that.
 */
const ratePerSeriesDefault = 100;
const runBudgetMs = 4_500; // wall time per run, so the whole bench stops within about 10 s
const t0 = Date.UTC(2025, 10, 22, 8, 0, 0);
/** The engine's rollups, for runs with rollups: true. */
const engineRollups: RollupOption[] = [{ label: "1m", sizeMs: 60_000 }, { label: "1h", sizeMs: 3_600_000 }];

type Values = "lognormal" | "normal";
export type WindowBenchResult = {
  name: string;
  eventsPerSec: number;
  baselineEventsPerSec: number;
  ratio: number;
  notes: string;
};

type Run = { events: number; ms: number; windows: number; late: number };

/**
 * Runs the window actor, then the baseline, over the same event stream.
 * @example const { eventsPerSec, ratio } = await benchWindow({ events: 5_000_000 });
 */
export async function benchWindow(
  opts: { events?: number; ratePerSeries?: number; values?: Values; rollups?: boolean } = {},
): Promise<WindowBenchResult> {
  const events = opts.events ?? eventsDefault;
  const rate = opts.ratePerSeries ?? ratePerSeriesDefault;
  const values = opts.values ?? "lognormal";
  const rollups = opts.rollups ? engineRollups : [];
  const actor = runActor(events, rate, values, rollups);
  const baseline = runBaseline(actor.events, rate, values); // the same events the actor got through
  const perSec = (r: Run) => (r.events / r.ms) * 1000;
  const notes =
    `window actor ${fmt(actor.events)} events in ${actor.ms.toFixed(0)} ms (${fmt(actor.windows)} windows, ` +
    `${actor.late} late), baseline ${fmt(baseline.events)} in ${baseline.ms.toFixed(0)} ms; ` +
    `${seriesCount} series, ${batchEvents} events/batch, specs 10s,60s/10s` +
    `${rollups.length > 0 ? ` with rollups ${rollups.map((r) => r.label).join(",")}` : ""}, ${rate} events/s/series of event time, ${values} values`;
  return {
    name: "window",
    eventsPerSec: perSec(actor),
    baselineEventsPerSec: perSec(baseline),
    ratio: perSec(actor) / perSec(baseline),
    notes,
  };
}

/** The k-th batch of the stream, the same for both runs: every series in turn, ts advancing. */
function fillBatch(batch: EventBatch, k: number, rate: number, values: Values): void {
  const rng = createPrng(k + 1);
  const stepMs = 1000 / rate; // between two events of one series
  for (let i = 0; i < batchEvents; i++) {
    const seq = k * batchEvents + i;
    const round = Math.floor(seq / seriesCount);
    batch.sid[i] = (seq * 7919) % seriesCount;
    batch.ts[i] = t0 + round * stepMs + Math.floor(rng.next() * jitterMs);
    batch.value[i] = values === "lognormal" ? 50 * Math.exp(0.5 * rng.gaussian()) : 20 + 10 * rng.gaussian();
  }
  batch.recvMs = t0 + ((k * batchEvents) / seriesCount) * stepMs + latenessMs;
}

function newBatch(): EventBatch {
  return { n: batchEvents, sid: new Uint32Array(batchEvents), ts: new Float64Array(batchEvents), value: new Float64Array(batchEvents), recvMs: 0 };
}

function runActor(events: number, rate: number, values: Values, rollups: RollupOption[]): Run {
  const logic = createWindowLogic({ specs: parseWindowSpecs("10s,60s/10s"), latenessMs, seriesMax: seriesCount, rollups });
  const state = logic.init();
  let windows = 0;
  const emit = (o: WindowOutput) => {
    if (o.kind === "window") windows++;
  };
  const run = timedBatches(events, rate, values, (batch) => {
    logic.handle(state, batch, emit);
    logic.tick(state, batch.recvMs, emit); // as the worker does between batches; due series only
  });
  return { ...run, windows, late: logic.stats(state).late };
}

/** Feeds the same batch stream to `work`, timing only `work`, within events and runBudgetMs. */
function timedBatches(events: number, rate: number, values: Values, work: (batch: EventBatch) => void): { events: number; ms: number } {
  const batch = newBatch();
  let ms = 0;
  let done = 0;
  const deadline = performance.now() + runBudgetMs;
  for (let k = 0; done < events && performance.now() < deadline; k++) {
    fillBatch(batch, k, rate, values);
    const start = performance.now();
    work(batch);
    ms += performance.now() - start;
    done += batchEvents;
  }
  return { events: done, ms };
}

/**
 * The baseline alone (single-thread typed-array aggregation), for benches
 * that compare a bigger path with it.
 * @example const { eventsPerSec } = aggregationBaseline(20_000_000);
 */
export function aggregationBaseline(events: number): { eventsPerSec: number } {
  const r = runBaseline(events, ratePerSeriesDefault, "lognormal");
  return { eventsPerSec: r.events / (r.ms / 1000) };
}

function runBaseline(events: number, rate: number, values: Values): Run {
  const paneMs = paneMsOf(parseWindowSpecs("10s,60s/10s"));
  const ring = 8; // panes per series kept, as many as the window actor holds
  const slots = seriesCount * ring;
  const paneOf = new Float64Array(slots).fill(-1);
  const count = new Float64Array(slots);
  const sum = new Float64Array(slots);
  const min = new Float64Array(slots);
  const max = new Float64Array(slots);
  const run = timedBatches(events, rate, values, ({ sid, ts, value }) => {
    for (let i = 0; i < batchEvents; i++) {
      const pane = Math.floor(ts[i] / paneMs);
      const slot = sid[i] * ring + (pane % ring);
      const v = value[i];
      if (paneOf[slot] !== pane) {
        paneOf[slot] = pane;
        count[slot] = 0;
        sum[slot] = 0;
        min[slot] = Infinity;
        max[slot] = -Infinity;
      }
      count[slot]++;
      sum[slot] += v;
      if (v < min[slot]) min[slot] = v;
      if (v > max[slot]) max[slot] = v;
    }
  });
  return { ...run, windows: 0, late: 0 };
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n);
}

if (import.meta.main) {
  const events = Number(process.env.WINDOW_BENCH_EVENTS ?? eventsDefault);
  const ratePerSeries = Number(process.env.WINDOW_BENCH_RATE ?? ratePerSeriesDefault);
  const values = process.env.WINDOW_BENCH_VALUES === "normal" ? "normal" : "lognormal";
  const rollups = process.env.WINDOW_BENCH_ROLLUPS === "1";
  const r = await benchWindow({ events, ratePerSeries, values, rollups });
  console.log(`window actor: ${fmt(r.eventsPerSec)} events/s`);
  console.log(`baseline    : ${fmt(r.baselineEventsPerSec)} events/s`);
  console.log(`ratio       : ${r.ratio.toFixed(2)}`);
  console.log(r.notes);
}
