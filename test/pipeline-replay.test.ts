/**
 * The quiet rule decides the same on live processing and on replay: a live
 * worker ticks on the wall clock between batches (never past the receive
 * time of a batch it has not handled), a replay of the raw log ticks only at
 * each batch's receive time, and a worker restarted from a checkpoint
 * replays the rest. All three must give the same results, and producers
 * behind the clock (steady, jittered, stopping) must lose nothing.
 */
import { describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { defaultRollups, PartitionPipeline, type PartitionOutput, type PipelineSnapshot } from "../src/actors/partition-pipeline.ts";
import { windowRow } from "../src/actors/result-rows.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import { toBatch, type Event } from "./fixtures/windows/generate.ts";
import { mulberry32 } from "./helpers/prng.ts";

const t0 = 1_700_000_000_000;
type Batch = { recvMs: number; events: Event[] };

/**
 * 36 series for 4 minutes, each in order: 12 real-time (0–50 ms behind),
 * 12 behind a queue 30 s, 12 behind one with 20–40 s of jitter (first in,
 * first out); a third of each kind stops after a minute. Arrivals are cut
 * into batches of 100 ms of receive time.
 */
function producers(seed: number): Batch[] {
  const rnd = mulberry32(seed);
  const arrivals: Array<{ at: number; e: Event }> = [];
  for (let sid = 0; sid < 36; sid++) {
    const kind = Math.floor(sid / 12);
    const everyMs = 1000 + Math.floor(rnd() * 4000);
    const untilMs = sid % 3 === 0 ? 60_000 : 240_000;
    let prev = -Infinity;
    for (let ts = t0 + Math.floor(rnd() * everyMs); ts < t0 + untilMs; ts += everyMs) {
      const delay = kind === 0 ? Math.floor(rnd() * 50) : kind === 1 ? 30_000 : 20_000 + Math.floor(rnd() * 20_000);
      prev = Math.max(prev, ts + delay);
      arrivals.push({ at: prev, e: [sid, ts, Math.round(50 + 20 * Math.sin(ts / 9_000) + rnd() * 4)] });
    }
  }
  arrivals.sort((a, b) => a.at - b.at || a.e[0] - b.e[0]);
  const batches: Batch[] = [];
  for (const { at, e } of arrivals) {
    const recvMs = Math.ceil(at / 100) * 100;
    if (batches.length === 0 || batches[batches.length - 1].recvMs !== recvMs) batches.push({ recvMs, events: [] });
    batches[batches.length - 1].events.push(e);
  }
  return batches;
}

const specs = parseWindowSpecs("10s,60s/10s");
const newPipeline = () => new PartitionPipeline({ specs, latenessMs: 2000, seriesMax: 64, rollups: defaultRollups });
const endMs = t0 + 3 * 3_600_000;

/** Results without the wall time of their close (which a live tick and a replay may differ in), sorted. */
function results(outs: PartitionOutput[]) {
  const w = outs.flatMap((o) => o.w.map((r) => r.slice(0, 13).join(" "))).sort();
  const a = outs.flatMap((o) => o.a.map((r) => r.slice(0, 10).join(" "))).sort();
  const t = outs.flatMap((o) => o.t.map((r) => r.join(" "))).sort();
  const late = outs.flatMap((o) => o.late.map((r) => r.join(" "))).sort();
  return { w, a, t, late };
}

/** A live worker: before each batch, ticks at random moments after the previous one, none past this batch's receive time. */
function live(p: PartitionPipeline, batches: Batch[], rnd: () => number, outs: PartitionOutput[]): void {
  let wall = t0;
  for (const b of batches) {
    while (rnd() < 0.6) {
      wall = Math.min(b.recvMs, wall + Math.floor(rnd() * 1500));
      p.tick(wall);
      outs.push(p.take(1e9));
    }
    p.handleBatch(toBatch(b.events, b.recvMs));
    outs.push(p.take(1e9));
    wall = Math.max(wall, b.recvMs);
  }
}

/** A replay: batches only; handleBatch ticks at each one's receive time. */
function replay(p: PartitionPipeline, batches: Batch[], outs: PartitionOutput[]): void {
  for (const b of batches) {
    p.handleBatch(toBatch(b.events, b.recvMs));
    outs.push(p.take(1e9));
  }
}

function finish(p: PartitionPipeline, outs: PartitionOutput[]): void {
  for (let t = t0 + 240_000; t <= endMs; t += 60_000) p.tick(t);
  outs.push(p.take(1e9));
}

describe("pipeline - live and replay", () => {
  for (const seed of [1, 2, 3]) {
    test(`pipeline - live ticks and a replay decide the same, nothing of in-order producers late (seed ${seed})`, () => {
      const batches = producers(seed);
      const a: PartitionOutput[] = [];
      const b: PartitionOutput[] = [];
      const pa = newPipeline();
      live(pa, batches, mulberry32(seed + 100), a);
      finish(pa, a);
      const pb = newPipeline();
      replay(pb, batches, b);
      finish(pb, b);
      const ra = results(a);
      expect(ra.late).toEqual([]);
      expect(ra.w.length).toBeGreaterThan(1000);
      expect(ra.a.length + ra.t.length).toBeGreaterThan(0);
      expect(results(b)).toEqual(ra);
      // Every event is in exactly one 10s window of its series.
      const events = batches.reduce((n, x) => n + x.events.length, 0);
      const counted = a.flatMap((o) => o.w.map(windowRow.decode)).filter((r) => r.spec === 0).reduce((n, r) => n + r.count, 0);
      expect(counted).toBe(events);
    });

    test(`pipeline - a worker restarted from a mid-stream checkpoint replays to the same results (seed ${seed})`, () => {
      const batches = producers(seed);
      const whole: PartitionOutput[] = [];
      const pw = newPipeline();
      live(pw, batches, mulberry32(seed + 200), whole);
      finish(pw, whole);
      for (const cut of [Math.floor(batches.length / 3), Math.floor((2 * batches.length) / 3)]) {
        const outs: PartitionOutput[] = [];
        const first = newPipeline();
        live(first, batches.slice(0, cut), mulberry32(seed + 200), outs);
        const snap = decode(encode(first.snapshot())) as PipelineSnapshot;
        const second = newPipeline();
        second.restore(snap);
        replay(second, batches.slice(cut), outs);
        finish(second, outs);
        expect(results(outs)).toEqual(results(whole));
      }
    });
  }
});
