/**
 * Trend actor throughput: handle() over columnar batches of 4,096 events from
 * 1,000 series, spec 60s/10s with 2 s lateness, plus onWindow() for every
 * window that closes, as the worker passes each closed window of the trend's
 * spec (a no-op for windows the trend already fitted when the watermark
 * passed them, which is all of them here: no series goes quiet). Event time
 * advances at `ratePerSeries` events per second per series, jittered by up to
 * 1.5 s (out of order, never late); values are a per-series ramp plus noise.
 * Only handle() and onWindow() are timed; filling the batches is not.
 *
 * The baseline, in the same run over the same events: one loop adding each
 * event to plain per-series Σx and Σy (x = seconds since t0) in
 * Float64Arrays: the least a per-series online fit could do per event.
 * Prints figures; asserts nothing on time.
 *
 * @example bun bench/analytics-trend.ts                       # ~20 M events, ≤ ~5 s
 *          TREND_BENCH_EVENTS=5000000 TREND_BENCH_RATE=5 bun bench/analytics-trend.ts
 */
import { createTrendLogic, type Trend } from "../src/actors/trend.ts";
import type { EventBatch } from "../src/actors/window.ts";
import { createPrng } from "../src/sim/prng.ts";
import type { BenchResult } from "./fixtures/result.ts";

const eventsDefault = 20_000_000;
const seriesCount = 1000;
const batchEvents = 4096;
const spec = { sizeMs: 60_000, slideMs: 10_000 };
const latenessMs = 2000;
const jitterMs = 1500; // < lateness: out of order, never late
/** Events per second of event time per series: a fit every 1,000 events of a series, as in bench/window.ts. */
const ratePerSeriesDefault = 100;
const runBudgetMs = 2_300; // wall time per run (filling included), so the whole bench stops within about 5 s
const t0 = Date.UTC(2025, 10, 22, 8, 0, 0);

export type TrendBenchResult = BenchResult & { nsPerEvent: number };

type Run = { events: number; ms: number; trends: number; rising: number };

/**
 * Runs the trend actor, then the baseline, over the same event stream.
 * @example const { nsPerEvent, ratio } = await benchTrend({ events: 5_000_000 });
 */
export async function benchTrend(opts: { events?: number; ratePerSeries?: number } = {}): Promise<TrendBenchResult> {
  const events = opts.events ?? eventsDefault;
  const rate = opts.ratePerSeries ?? ratePerSeriesDefault;
  const actor = runActor(events, rate);
  const baseline = runBaseline(actor.events, rate); // the same events the actor got through
  const perSec = (r: Run) => (r.events / r.ms) * 1000;
  const notes =
    `trend actor ${fmt(actor.events)} events in ${actor.ms.toFixed(0)} ms (${fmt(actor.trends)} trends, ${fmt(actor.rising)} rising), ` +
    `baseline ${fmt(baseline.events)} in ${baseline.ms.toFixed(0)} ms; ${seriesCount} series, ${batchEvents} events/batch, ` +
    `spec 60s/10s, lateness ${latenessMs} ms, ${rate} events/s/series of event time`;
  return {
    name: "trend",
    nsPerEvent: (actor.ms * 1e6) / actor.events,
    eventsPerSec: perSec(actor),
    baselineEventsPerSec: perSec(baseline),
    ratio: perSec(actor) / perSec(baseline),
    notes,
  };
}

/** The k-th batch of the stream, the same for both runs: every series in turn, ts advancing, a ramp per series. */
function fillBatch(batch: EventBatch, k: number, rate: number): void {
  const rng = createPrng(k + 1);
  const stepMs = 1000 / rate; // between two events of one series
  for (let i = 0; i < batchEvents; i++) {
    const seq = k * batchEvents + i;
    const sid = (seq * 7919) % seriesCount;
    const ts = t0 + Math.floor(seq / seriesCount) * stepMs + Math.floor(rng.next() * jitterMs);
    batch.sid[i] = sid;
    batch.ts[i] = ts;
    // Series with an odd id climb by 1 a second from 100 (rising); even ones stay at 100 (stable). Noise ±5.
    batch.value[i] = 100 + (sid % 2) * ((ts - t0) / 1000) + 10 * (rng.next() - 0.5);
  }
  batch.recvMs = t0 + ((k * batchEvents) / seriesCount) * stepMs + latenessMs;
}

function newBatch(): EventBatch {
  return { n: batchEvents, sid: new Uint32Array(batchEvents), ts: new Float64Array(batchEvents), value: new Float64Array(batchEvents), recvMs: 0 };
}

function runActor(events: number, rate: number): Run {
  const logic = createTrendLogic({ seriesMax: seriesCount, spec, latenessMs });
  const state = logic.init();
  const batch = newBatch();
  const closed: Trend[] = []; // the windows closed during a batch, for onWindow afterwards; reused
  let trends = 0;
  let rising = 0;
  const emit = (t: Trend) => {
    closed.push(t);
    trends++;
    if (t.class === "rising") rising++;
  };
  const ignore = () => {};
  let ms = 0;
  let done = 0;
  const deadline = performance.now() + runBudgetMs;
  for (let k = 0; done < events && performance.now() < deadline; k++) {
    fillBatch(batch, k, rate);
    const start = performance.now();
    logic.handle(state, batch, emit);
    for (const t of closed) logic.onWindow(state, t.sid, t.start, t.end, ignore);
    closed.length = 0;
    ms += performance.now() - start;
    done += batchEvents;
  }
  return { events: done, ms, trends, rising };
}

function runBaseline(events: number, rate: number): Run {
  const n = new Float64Array(seriesCount);
  const sx = new Float64Array(seriesCount);
  const sy = new Float64Array(seriesCount);
  const batch = newBatch();
  let ms = 0;
  let done = 0;
  for (let k = 0; done < events; k++) {
    fillBatch(batch, k, rate);
    const start = performance.now();
    const { sid, ts, value } = batch;
    for (let i = 0; i < batchEvents; i++) {
      const s = sid[i];
      n[s] += 1;
      sx[s] += (ts[i] - t0) / 1000;
      sy[s] += value[i];
    }
    ms += performance.now() - start;
    done += batchEvents;
  }
  if (n[0] < 0 || sx[0] < -1 || Number.isNaN(sy[0])) console.log("unreachable: keeps the sums alive");
  return { events: done, ms, trends: 0, rising: 0 };
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n);
}

if (import.meta.main) {
  const events = Number(process.env.TREND_BENCH_EVENTS ?? eventsDefault);
  const ratePerSeries = Number(process.env.TREND_BENCH_RATE ?? ratePerSeriesDefault);
  const r = await benchTrend({ events, ratePerSeries });
  console.log(`trend actor: ${r.nsPerEvent.toFixed(1)} ns/event, ${fmt(r.eventsPerSec)} events/s`);
  console.log(`baseline   : ${((1e9 / r.baselineEventsPerSec)).toFixed(1)} ns/event, ${fmt(r.baselineEventsPerSec)} events/s`);
  console.log(`ratio      : ${r.ratio.toFixed(2)}`);
  console.log(r.notes);
}
