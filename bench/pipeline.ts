/**
 * (c) The whole embedded pipeline fed in-process, two ways:
 *  - columnar: validated columnar batches pushed straight onto the partition
 *    rings (rings → worker threads → window actor → store), 1,000 series;
 *  - json: 1,000-event JSON bodies through engine.ingestBytes (parse,
 *    validate, series keys, raw log, rings, windows) — HTTP without HTTP.
 * Baselines in the same run: a single-thread loop doing the same per-event
 * aggregation over typed arrays (columnar), and JSON.parse alone (json).
 */
import { Encoder } from "@msgpack/msgpack";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine } from "../src/engine/engine.ts";
import { encodeEventBatch } from "../src/runtime/codec.ts";
import { loadConfig } from "../src/config.ts";
import { silentLog } from "../src/runtime/log.ts";
import { aggregationBaseline } from "./window.ts";

export interface PipelineBenchResult { name: string; eventsPerSec: number; baselineEventsPerSec: number; ratio: number; notes: string }

const seriesCount = 1000;
const batchEvents = 4096;

async function withEngine<T>(fn: (e: Engine) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "weir-bench-pipe-"));
  const engine = await Engine.start(loadConfig({ WEIR_DATA_DIR: dir, WEIR_PARTITIONS: "2" }), silentLog);
  try {
    return await fn(engine);
  } finally {
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Registers the bench's series through the normal path and returns their (partition, local id). */
function registerSeries(engine: Engine, now: number): Array<[number, number]> {
  const evs = Array.from({ length: seriesCount }, (_, i) => ({ name: "bench.value", value: 0, ts: now - 3_600_000, tags: { s: String(i) } }));
  engine.ingestEvents(evs);
  return evs.map((_, i) => {
    const id = engine.registry.idOf(`bench.value{s="${i}"}`)!;
    return [engine.registry.partitionOf(id), engine.registry.localOf(id)];
  });
}

export async function benchPipelineColumnar(opts: { events?: number; seconds?: number } = {}): Promise<PipelineBenchResult> {
  const events = opts.events ?? 20_000_000;
  const seconds = opts.seconds ?? 10;
  return withEngine(async (engine) => {
    const now = Date.now();
    const ids = registerSeries(engine, now);
    const perPartition = [ids.filter(([p]) => p === 0).map(([, l]) => l), ids.filter(([p]) => p === 1).map(([, l]) => l)];
    const enc = new Encoder();
    const sid = new Uint32Array(batchEvents);
    const ts = new Float64Array(batchEvents);
    const v = new Float64Array(batchEvents);
    const start0 = engine.processedEvents(0) + engine.processedEvents(1);
    let pushed = 0;
    // Event time advances 1 ms per 100 events: 100 events/s per series, as in bench/window.ts,
    // so windows open and close all along (a real 5 M/s over 1,000 series would close them 50 times less often).
    let t = now - 3_000_000;
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    for (let b = 0; pushed < events && performance.now() < deadline; b++) {
      const p = b & 1;
      const locals = perPartition[p];
      for (let i = 0; i < batchEvents; i++) {
        sid[i] = locals[(b * 31 + i) % locals.length];
        ts[i] = t + Math.floor(i / 100);
        v[i] = (i * 17) % 1000;
      }
      t += Math.ceil(batchEvents / 100);
      const bytes = encodeEventBatch(enc, batchEvents, sid, ts, v, Date.now());
      while (!engine.pushBatch(p, bytes)) await Bun.sleep(1); // backpressure: leave the cores to the workers
      pushed += batchEvents;
    }
    while (engine.processedEvents(0) + engine.processedEvents(1) - start0 < pushed) await new Promise((r) => setImmediate(r));
    const elapsed = (performance.now() - t0) / 1000;
    const eventsPerSec = pushed / elapsed;
    const base = aggregationBaseline(Math.min(pushed, 20_000_000));
    return {
      name: "(c) in-process pipeline, columnar batches, 1,000 series, 2 partitions",
      eventsPerSec, baselineEventsPerSec: base.eventsPerSec, ratio: eventsPerSec / base.eventsPerSec,
      notes: `${pushed} events in ${elapsed.toFixed(2)} s (producer encodes batches on the main thread); baseline = single-thread typed-array aggregation`,
    };
  });
}

export async function benchPipelineJson(opts: { events?: number; seconds?: number } = {}): Promise<PipelineBenchResult> {
  const events = opts.events ?? 3_000_000;
  const seconds = opts.seconds ?? 10;
  return withEngine(async (engine) => {
    const now = Date.now();
    const bodies: Uint8Array[] = [];
    for (let b = 0; b < 32; b++) {
      const evs = Array.from({ length: 1000 }, (_, i) => ({ name: "bench.value", value: (i * 7) % 1000, ts: now - 60_000 + b * 1000 + i, tags: { s: String((b * 1000 + i) % seriesCount) } }));
      bodies.push(new TextEncoder().encode(JSON.stringify(evs)));
    }
    let parsed = 0;
    const tb = performance.now();
    for (let i = 0; parsed < Math.min(events, 1_000_000); i++) parsed += (JSON.parse(new TextDecoder().decode(bodies[i % 32])) as unknown[]).length;
    const baselineEventsPerSec = parsed / ((performance.now() - tb) / 1000);

    const start0 = engine.processedEvents(0) + engine.processedEvents(1);
    let accepted = 0;
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    for (let i = 0; accepted < events && performance.now() < deadline; i++) {
      try {
        // A copy, as a request brings a fresh body: the engine may move it to an ingest thread.
        accepted += (await engine.ingestBytes(bodies[i % 32].slice(), "json")).accepted;
      } catch {
        await Bun.sleep(1); // 503: the rings are full; leave the cores to the workers
      }
    }
    while (engine.processedEvents(0) + engine.processedEvents(1) - start0 < accepted) await new Promise((r) => setImmediate(r));
    const elapsed = (performance.now() - t0) / 1000;
    const eventsPerSec = accepted / elapsed;
    return {
      name: "(c') in-process pipeline from JSON bodies (parse, validate, raw log, rings, windows)",
      eventsPerSec, baselineEventsPerSec, ratio: eventsPerSec / baselineEventsPerSec,
      notes: `${accepted} events in ${elapsed.toFixed(2)} s; baseline = JSON.parse of the same bodies alone`,
    };
  });
}

if (import.meta.main) {
  console.log(JSON.stringify(await benchPipelineColumnar(), null, 1));
  console.log(JSON.stringify(await benchPipelineJson(), null, 1));
}
