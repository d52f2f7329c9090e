/**
 * What a series costs in memory: a partition's state (window panes and
 * sketches, rollups, the delay, anomaly baseline, trend fit) and the main
 * thread's share (the series registry and its signatures), measured as the
 * JS heap after a full GC, and the checkpoint bytes of that state.
 *
 * S series each get one event a second (integer values 0–99: the sketches
 * stay exact) for 95 s of event time, received 50 ms after their time, in
 * 5,000-event batches, so every spec has reached its steady state of open
 * panes. Run for the default windows and for "10s" alone; the difference
 * is what the 60 s sliding window's panes cost.
 *
 *   bun bench/state-memory.ts            # STATE_SERIES=50000
 */
import { encode } from "@msgpack/msgpack";
import { DedupeSet } from "../src/actors/dedupe.ts";
import { Ingest } from "../src/actors/ingest.ts";
import { PartitionPipeline, rollupsFor } from "../src/actors/partition-pipeline.ts";
import { SeriesRegistry } from "../src/actors/series-registry.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";

const series = Number(process.env.STATE_SERIES ?? 50_000);
const seconds = 95;
const batch = 5_000;
const t0 = 1_700_000_000_000;

function heapBytes(): number {
  Bun.gc(true);
  return process.memoryUsage().heapUsed;
}

function partitionState(specsText: string): { bytesPerSeries: number; checkpointBytesPerSeries: number } {
  const specs = parseWindowSpecs(specsText);
  const before = heapBytes();
  const p = new PartitionPipeline({ specs, latenessMs: 2000, seriesMax: series, rollups: rollupsFor(specs) });
  const sid = new Uint32Array(batch);
  const ts = new Float64Array(batch);
  const value = new Float64Array(batch);
  for (let s = 0; s < seconds; s++) {
    for (let from = 0; from < series; from += batch) {
      const n = Math.min(batch, series - from);
      for (let i = 0; i < n; i++) {
        sid[i] = from + i;
        ts[i] = t0 + s * 1000 + ((from + i) % 1000);
        value[i] = (from + i + s) % 100;
      }
      p.handleBatch({ n, sid, ts, value, recvMs: t0 + s * 1000 + 1000 + 50 });
      p.take(Number.MAX_SAFE_INTEGER); // shipped: the rows are not state
    }
  }
  const bytes = heapBytes() - before;
  const ck = encode(p.snapshot()).byteLength;
  return { bytesPerSeries: bytes / series, checkpointBytesPerSeries: ck / series };
}

function mainThreadShare(): number {
  const before = heapBytes();
  const registry = new SeriesRegistry(2, series);
  const ingest = new Ingest({ partitions: 2, registry, bounds: { maxEventAgeMs: 1e12, maxFutureSkewMs: 1e12 }, dedupe: new DedupeSet(0) });
  for (let from = 0; from < series; from += batch) {
    const events = Array.from({ length: Math.min(batch, series - from) }, (_, i) => ({ name: "sensor.temp", value: 1, ts: t0, tags: { device: `d${from + i}`, site: "s1" } }));
    ingest.accept(events, t0);
    ingest.commit();
    ingest.accept(events, t0); // seen again: its signatures are remembered
    ingest.commit();
  }
  return (heapBytes() - before) / series;
}

const rows: Array<[string, number, number]> = [];
for (const specs of ["10s,60s/10s", "10s"]) {
  const r = partitionState(specs);
  rows.push([`partition state, windows ${specs} (+ 1m, 1h rollups)`, r.bytesPerSeries, r.checkpointBytesPerSeries]);
}
const main = mainThreadShare();
console.log(`${series} series, one event a second each, ${seconds} s of event time (bun ${Bun.version})`);
console.log("| what | heap bytes per series | checkpoint bytes per series |");
console.log("|---|---|---|");
for (const [what, heap, ck] of rows) console.log(`| ${what} | ${Math.round(heap)} | ${Math.round(ck)} |`);
console.log(`| the 60 s sliding window's 6 panes | ${Math.round(rows[0][1] - rows[1][1])} | ${Math.round(rows[0][2] - rows[1][2])} |`);
console.log(`| main thread: registry, key, name, tags, signature, last value | ${Math.round(main)} | — |`);
