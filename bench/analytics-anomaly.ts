/**
 * Anomaly actor throughput: handle() over columnar batches of 4,096 events
 * from 1,000 series (round robin in a scrambled order), ~20 M events or
 * about 5 s of wall time in all, whichever comes first. Each series is a
 * 10-minute cycle sampled once a second plus Gaussian noise, with a 10 σ
 * spike every 10,007 events, so alerts are raised and the robust update's
 * clipped branch is taken now and then. Only the handle() calls are timed;
 * filling the batches is not.
 *
 * The baseline, in the same run over the same batches (interleaved batch by
 * batch): a loop that only updates a plain (non-robust) exponentially
 * weighted mean per series in a Float64Array. The ratio says what the
 * detector (the robust baseline, its tests and their learning, the strength
 * ring, the verdicts and the alerts) costs on top of touching the data; the
 * default knobs, so the season ring is written at every value. Prints
 * figures; asserts nothing on time.
 *
 * Besides the total, the median over batches of the actor's ns/event: on a
 * shared host a batch the scheduler preempted counts its wait as the actor's
 * time, and the median of ~5,000 batches leaves those out where the total
 * cannot (at load 11–14 on 2 cores the total ran 3–6× the median).
 *
 * @example bun bench/analytics-anomaly.ts
 *          ANOMALY_BENCH_EVENTS=5000000 bun bench/analytics-anomaly.ts
 */
import { createAnomalyLogic } from "../src/actors/anomaly.ts";
import type { EventBatch } from "../src/actors/window.ts";
import { createPrng } from "../src/sim/prng.ts";
import type { BenchResult } from "./fixtures/result.ts";

const eventsDefault = 20_000_000;
const seriesCount = 1000;
const batchEvents = 4096;
const runBudgetMs = 5_000; // wall time, filling included
const t0 = Date.UTC(2025, 10, 22, 8, 0, 0);
const stepMs = 1000; // between two events of one series
const periodMs = 10 * 60_000;
const amplitude = 10;
const sigma = 0.5;
const spikeEvery = 10_007;
const noiseTable = 1 << 16; // pre-drawn normals, so filling a batch is cheap

export type AnomalyBenchResult = BenchResult & { nsPerEvent: number; medianBatchNsPerEvent: number };

type Run = { events: number; actorMs: number; baselineMs: number; alerts: number; medianBatchMs: number };

/**
 * Runs the anomaly actor and the baseline over the same batches.
 * @example const { nsPerEvent, ratio } = await benchAnomaly();
 */
export async function benchAnomaly(opts: { events?: number } = {}): Promise<AnomalyBenchResult> {
  const events = opts.events ?? eventsDefault;
  const noise = new Float64Array(noiseTable);
  const rng = createPrng(7);
  for (let i = 0; i < noiseTable; i++) noise[i] = sigma * rng.gaussian();
  const r = run(events, noise);
  const actorPerSec = (r.events / r.actorMs) * 1000;
  const baselinePerSec = (r.events / r.baselineMs) * 1000;
  const notes =
    `${fmt(r.events)} events: anomaly actor ${r.actorMs.toFixed(0)} ms (${r.alerts} alerts), ` +
    `baseline (plain EW mean per series) ${r.baselineMs.toFixed(0)} ms, interleaved batch by batch; ` +
    `${seriesCount} series, ${batchEvents} events/batch, 10-minute cycle + noise + a 10σ spike every ${spikeEvery} events`;
  return {
    name: "anomaly",
    nsPerEvent: (r.actorMs * 1e6) / r.events,
    medianBatchNsPerEvent: (r.medianBatchMs * 1e6) / batchEvents,
    eventsPerSec: actorPerSec,
    baselineEventsPerSec: baselinePerSec,
    ratio: actorPerSec / baselinePerSec,
    notes,
  };
}

function newBatch(): EventBatch {
  return { n: batchEvents, sid: new Uint32Array(batchEvents), ts: new Float64Array(batchEvents), value: new Float64Array(batchEvents), recvMs: 0 };
}

/** The k-th batch of the stream: every series in turn, ts advancing. */
function fillBatch(b: EventBatch, k: number, noise: Float64Array): void {
  const w = (2 * Math.PI * stepMs) / periodMs;
  for (let i = 0; i < batchEvents; i++) {
    const seq = k * batchEvents + i;
    const round = Math.floor(seq / seriesCount);
    const sid = (seq * 7919) % seriesCount;
    b.sid[i] = sid;
    b.ts[i] = t0 + round * stepMs;
    const spike = seq % spikeEvery === spikeEvery - 1 ? 10 * sigma : 0;
    b.value[i] = sid + amplitude * Math.sin(w * round + sid) + noise[seq & (noiseTable - 1)] + spike;
  }
  b.recvMs = b.ts[batchEvents - 1];
}

/**
 * Batch by batch: fill (untimed), the actor's handle(), then the baseline
 * loop over the same typed arrays. Interleaving keeps both under the same
 * machine load, which matters on a shared host.
 */
function run(events: number, noise: Float64Array): Run {
  const logic = createAnomalyLogic({ seriesMax: seriesCount });
  const state = logic.init();
  const mean = new Float64Array(seriesCount);
  const gain = 2 / 21;
  const batch = newBatch();
  const r: Run = { events: 0, actorMs: 0, baselineMs: 0, alerts: 0, medianBatchMs: 0 };
  const batchMs = new Float64Array(Math.ceil(events / batchEvents)); // the actor's time per batch, for the median
  const emit = () => {
    r.alerts++;
  };
  const deadline = performance.now() + runBudgetMs;
  for (let k = 0; r.events < events && performance.now() < deadline; k++) {
    fillBatch(batch, k, noise);
    const t1 = performance.now();
    logic.handle(state, batch, emit);
    const t2 = performance.now();
    const { sid, value } = batch;
    for (let i = 0; i < batchEvents; i++) {
      const s = sid[i];
      mean[s] += gain * (value[i] - mean[s]);
    }
    r.baselineMs += performance.now() - t2;
    r.actorMs += t2 - t1;
    batchMs[k] = t2 - t1;
    r.events += batchEvents;
  }
  const timed = batchMs.subarray(0, r.events / batchEvents).sort();
  r.medianBatchMs = timed[timed.length >> 1];
  if (Number.isNaN(mean[0])) throw new Error("baseline mean is NaN"); // keeps the loop's result alive
  return r;
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n);
}

if (import.meta.main) {
  const events = Number(process.env.ANOMALY_BENCH_EVENTS ?? eventsDefault);
  const r = await benchAnomaly({ events });
  console.log(`anomaly actor: ${r.nsPerEvent.toFixed(1)} ns/event, ${fmt(r.eventsPerSec)} events/s; median batch ${r.medianBatchNsPerEvent.toFixed(1)} ns/event`);
  console.log(`baseline     : ${((1e9 / r.baselineEventsPerSec)).toFixed(1)} ns/event, ${fmt(r.baselineEventsPerSec)} events/s`);
  console.log(`ratio        : ${r.ratio.toFixed(2)}`);
  console.log(r.notes);
}
