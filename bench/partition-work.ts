/**
 * A partition worker's work alone, on one thread, so Bun's profiler (which
 * sees the main thread only) can say where a worker's time goes: the side
 * by side's events (1,000,000 over 1,000 series, event times over 2
 * minutes, as bench/fixtures/vs-bodies.ts makes them) split into each
 * partition's share of 2,500-event batches, handled by a PartitionPipeline
 * per partition with the default windows, the output rows encoded as the
 * worker ships them, and a checkpoint (snapshot + MessagePack) per
 * partition every 40 batches (about one a second at the side by side's rate).
 *
 *   bun bench/partition-work.ts
 *   bun --cpu-prof-md --cpu-prof-dir=/tmp/prof bench/partition-work.ts   # the profile
 */
import { Encoder } from "@msgpack/msgpack";
import { PartitionPipeline, rollupsFor } from "../src/actors/partition-pipeline.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import { partitionOf, seriesKey } from "../src/runtime/series.ts";
import { eventTsOf, eventValueOf } from "./fixtures/ordered-events.ts";

const events = 1_000_000;
const series = 1_000;
const spanMs = 120_000;
const partitions = 2;
const batchEvents = 2_500;
const checkpointEveryBatches = 40;

const specs = parseWindowSpecs("10s,60s/10s");
const pipelines = Array.from({ length: partitions }, () => new PartitionPipeline({ specs, latenessMs: 2000, seriesMax: series, rollups: rollupsFor(specs) }));
const partitionOfSeries = new Uint8Array(series);
const localOfSeries = new Uint32Array(series);
const locals = new Array<number>(partitions).fill(0);
for (let s = 0; s < series; s++) {
  const p = partitionOf(seriesKey("load.vs", { device: `d${s}` }), partitions);
  partitionOfSeries[s] = p;
  localOfSeries[s] = locals[p]++;
}
const bufs = pipelines.map(() => ({ n: 0, sid: new Uint32Array(batchEvents), ts: new Float64Array(batchEvents), value: new Float64Array(batchEvents), batches: 0 }));
const enc = new Encoder();
const t0 = Date.now() - spanMs;
let rows = 0;
let checkpointBytes = 0;

function flush(p: number, recvMs: number): void {
  const b = bufs[p];
  if (b.n === 0) return;
  pipelines[p].handleBatch({ n: b.n, sid: b.sid, ts: b.ts, value: b.value, recvMs });
  const out = pipelines[p].take(Number.MAX_SAFE_INTEGER);
  rows += out.w.length + out.a.length + out.t.length;
  enc.encode({ k: "out", e: 1, ...out }); // as the worker ships them
  b.n = 0;
  if (++b.batches % checkpointEveryBatches === 0) checkpointBytes += enc.encode(pipelines[p].snapshot()).byteLength;
}

const started = performance.now();
for (let i = 0; i < events; i++) {
  const s = i % series;
  const p = partitionOfSeries[s];
  const b = bufs[p];
  b.sid[b.n] = localOfSeries[s];
  b.ts[b.n] = eventTsOf(i, t0, spanMs, events);
  b.value[b.n] = eventValueOf(i);
  if (++b.n === batchEvents) flush(p, t0 + spanMs);
}
for (let p = 0; p < partitions; p++) flush(p, t0 + spanMs);
for (const pl of pipelines) pl.tick(t0 + spanMs + 60_000); // the quiet closes after the load
const seconds = (performance.now() - started) / 1000;
console.log(`${events} events in ${seconds.toFixed(2)} s on one thread: ${Math.round(events / seconds / 1000)} k events/s; ${rows} result rows; checkpoints ${(checkpointBytes / 2 ** 20).toFixed(1)} MiB`);
