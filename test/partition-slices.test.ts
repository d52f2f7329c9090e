/**
 * A partition with many series does its long rounds in slices, with a
 * heartbeat between them (issue 19: workers of 50,000 series missed their
 * 5 s heartbeat while closing or checkpointing them all in one piece).
 * The slices change nothing in what comes out: the sliced snapshot encodes
 * byte for byte as the whole one, the checkpoint stream is the library's
 * encoding, and a mass close sliced before a batch gives the rows a replay
 * (one piece) gives. The loop runs in-process with its deps injected; its
 * `beat` reads the output ring, so each beat sees what was done since the
 * one before.
 */
import { describe, expect, test } from "bun:test";
import { Decoder, Encoder } from "@msgpack/msgpack";
import { type AnomalySnapshot, createAnomalyLogic } from "../src/actors/anomaly.ts";
import { fields as anomalyFields, cycleFields, ringBytes as anomalyRingBytes } from "../src/actors/anomaly-state.ts";
import { cycleBins } from "../src/actors/anomaly-tuning.ts";
import { PartitionPipeline, rollupsFor } from "../src/actors/partition-pipeline.ts";
import { windowRow } from "../src/actors/result-rows.ts";
import { parseWindowSpecs, type WindowSpec } from "../src/actors/window-spec.ts";
import { float64Of, type SketchColumns } from "../src/sketch/quantile.ts";
import { CheckpointStream } from "../src/partition/checkpoint-stream.ts";
import { PartitionLoop, type PartitionData } from "../src/partition/partition-loop.ts";
import { partitionStatSlots } from "../src/partition/worker-stats.ts";
import { encodeEventBatch, type EventBatch } from "../src/runtime/codec.ts";
import { limits } from "../src/runtime/limits.ts";
import { Ring } from "../src/runtime/ring.ts";
import { copyFloat64Slices, runSlices } from "../src/runtime/slices.ts";

const specs = parseWindowSpecs("10s,60s/10s");
/** Tens of thousands of series take seconds on a loaded 2-core machine: the waits inside have their own deadlines. */
const testTimeoutMs = 60_000;
const t0 = 1_700_000_000_000;

/** `n` series from `from`, one event each at ts, received at recvMs (ts ms later than the clock when behind). */
function batch(from: number, n: number, ts: number, recvMs: number, value = (s: number) => s % 97): EventBatch {
  const sid = new Uint32Array(n);
  const tsCol = new Float64Array(n);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    sid[i] = from + i;
    tsCol[i] = ts + (i % 1000);
    v[i] = value(from + i);
  }
  return { n, sid, ts: tsCol, value: v, recvMs };
}

/** A pipeline whose series have open panes, closed windows, pane runs, rollups, delays: `series` of them, three rounds. */
function busyPipeline(series: number, s: WindowSpec[] = specs): PartitionPipeline {
  const p = new PartitionPipeline({ specs: s, latenessMs: 2000, seriesMax: series, rollups: rollupsFor(s) });
  for (let round = 0; round < 3; round++) {
    for (let from = 0; from < series; from += 5000) p.handleBatch(batch(from, Math.min(5000, series - from), t0 + round * 15_000, t0 + round * 15_000 + 40));
    p.take(Infinity);
  }
  p.tick(t0 + 45_000);
  p.take(Infinity);
  return p;
}

describe("partition - sliced snapshot", () => {
  test("partition - a snapshot in slices of N series yields between them and encodes byte for byte as the snapshot in one piece", () => {
    const series = 3_000;
    const slice = 1_000;
    const p = busyPipeline(series);
    const enc = new Encoder();
    const whole = enc.encode(p.snapshot());
    const slices = p.snapshotSlices(slice);
    let yields = 0;
    let r = slices.next();
    for (; !r.done; r = slices.next()) yields++;
    expect(enc.encode(r.value)).toEqual(whole);
    // Window: 3 series slices, then the 3 pieces of each of 5 columns joined, a yield per piece; one after the anomaly
    // state; trend: 3 series slices; one after it.
    expect(yields).toBe(3 + 5 * 3 + 1 + 3 + 1);
  }, testTimeoutMs);

  test("partition - a sliced snapshot restores to a pipeline that goes on exactly as the original", () => {
    const p = busyPipeline(3_000);
    const q = new PartitionPipeline({ specs, latenessMs: 2000, seriesMax: 3_000, rollups: rollupsFor(specs) });
    q.restore(new Decoder().decode(new Encoder().encode(runSlices(p.snapshotSlices(1_000)))) as ReturnType<PartitionPipeline["snapshot"]>);
    for (const x of [p, q]) {
      x.handleBatch(batch(0, 3_000, t0 + 60_000, t0 + 60_040));
      x.tick(t0 + 200_000);
    }
    const a = p.take(Infinity);
    expect(a.w.length).toBeGreaterThan(3_000);
    expect(q.take(Infinity)).toEqual(a);
  }, testTimeoutMs);

  test("partition - a restore in slices of N series yields between them and gives the state a restore in one piece gives", () => {
    const p = busyPipeline(3_000);
    const enc = new Encoder();
    const bytes = enc.encode(p.snapshot());
    const snap = () => new Decoder().decode(bytes) as ReturnType<PartitionPipeline["snapshot"]>;
    const whole = new PartitionPipeline({ specs, latenessMs: 2000, seriesMax: 3_000, rollups: rollupsFor(specs) });
    whole.restore(snap());
    const sliced = new PartitionPipeline({ specs, latenessMs: 2000, seriesMax: 3_000, rollups: rollupsFor(specs) });
    const slices = sliced.restoreSlices(snap(), 1_000);
    let yields = 0;
    for (let r = slices.next(); !r.done; r = slices.next()) yields++;
    expect(enc.encode(sliced.snapshot())).toEqual(enc.encode(whole.snapshot()));
    expect(enc.encode(sliced.snapshot())).toEqual(bytes);
    // Window: pane sketches, series, rollup sketches and windows by the thousand; one after the anomaly state; trend: a
    // yield before its 1,001st and 2,001st series and latest trends; one after it. And every column copied 1 MiB a yield.
    const all = p.snapshot();
    const w = all.w as { series: Float64Array; panes: Float64Array; rollups: Float64Array; sketches: SketchColumns; rollupSketches: SketchColumns };
    const t = all.t as { series: Float64Array; panes: Float64Array; latest: Float64Array };
    const copies = [w.series, w.panes, w.rollups, w.sketches.head, w.sketches.values, w.rollupSketches.head, w.rollupSketches.values, t.series, t.panes, t.latest]
      .reduce((n, c) => n + Math.max(0, Math.ceil(c.byteLength / 2 ** 20) - 1), 0);
    const panes = w.panes.length / 9;
    const rollupWindows = w.rollups.length / 12;
    expect(yields).toBe(Math.floor(panes / 1_000) + 3 + 2 * Math.floor(rollupWindows / 1_000) + 1 + 2 + 2 + 1 + copies);
  }, testTimeoutMs);

  test("partition - a state without series snapshots in slices as in one piece", () => {
    const p = new PartitionPipeline({ specs, latenessMs: 2000, seriesMax: 10, rollups: rollupsFor(specs) });
    const enc = new Encoder();
    expect(enc.encode(runSlices(p.snapshotSlices(1)))).toEqual(enc.encode(p.snapshot()));
  });
});

describe("anomaly - sliced snapshot and restore", () => {
  /** An anomaly state of `series` series, 120 values each, a spike (an alert) on every 100th series' last value. */
  function anomalyState(series: number) {
    const logic = createAnomalyLogic({ seriesMax: series });
    const st = logic.init();
    for (let round = 0; round < 120; round++) {
      logic.handle(st, batch(0, series, t0 + round * 1000, 0, (s) => Math.sin(s + round) * 10 + (round === 119 && s % 100 === 0 ? 500 : 0)), () => {});
    }
    return { logic, st };
  }

  test("anomaly - the columns are copied 1 MiB a slice, yielding between, into a snapshot equal to the state's own rows", () => {
    const series = 6_000;
    const { logic, st } = anomalyState(series);
    const slices = logic.snapshotSlices(st);
    let yields = 0;
    let r = slices.next();
    for (; !r.done; r = slices.next()) yields++;
    const snap = r.value;
    const rowBytes = series * anomalyFields * 8;
    const ringBytesAll = series * anomalyRingBytes;
    // Two rows columns, the ring, the cycle profile and its spreads, each a yield per MiB after its first.
    const columns = [rowBytes, rowBytes, ringBytesAll, series * cycleFields * 8, series * cycleBins * 4];
    expect(yields).toBe(columns.reduce((n, b) => n + Math.max(0, Math.ceil(b / 2 ** 20) - 1), 0));
    expect(yields).toBeGreaterThanOrEqual(3);
    expect(snap.rows).toBe(series);
    expect(snap.value).toEqual(st.value.rows.slice(0, series * anomalyFields));
    expect(snap.count).toEqual(st.count.rows.slice(0, series * anomalyFields));
    expect(snap.ring).toEqual(st.ring.slice(0, ringBytesAll));
    expect(snap.cycle).toEqual(st.cycle.slice(0, series * cycleFields));
    expect(snap.cycleSpread).toEqual(st.cycleSpread.slice(0, series * cycleBins));
    expect(snap.alerts.length).toBe(series / 100);
  }, testTimeoutMs);

  test("anomaly - a restore in slices goes on exactly as the detector that never stopped; a column of the wrong length is refused", () => {
    const series = 6_000;
    const { logic, st } = anomalyState(series);
    const bytes = new Encoder().encode(logic.snapshot(st));
    const slices = logic.restoreSlices(new Decoder().decode(bytes) as AnomalySnapshot);
    let yields = 0;
    let r = slices.next();
    for (; !r.done; r = slices.next()) yields++;
    expect(yields).toBeGreaterThanOrEqual(3);
    const again = r.value;
    const next = batch(0, series, t0 + 200_000, 0, (s) => (s % 50 === 0 ? -900 : Math.sin(s) * 10));
    const a: unknown[] = [];
    const b: unknown[] = [];
    logic.handle(st, next, (x) => a.push(x));
    logic.handle(again, next, (x) => b.push(x));
    // Every 50th series spikes; every 100th is still in the cooldown of its alert of the value before.
    expect(a.length).toBe(series / 50 - series / 100);
    expect(b).toEqual(a);
    const short = new Decoder().decode(bytes) as AnomalySnapshot;
    short.ring = short.ring.subarray(1);
    const profile = `${series * cycleFields * 8}, ${series * cycleBins * 4}`;
    expect(() => logic.restore(short)).toThrow(`anomaly snapshot: columns of ${series * anomalyFields * 8}, ${series * anomalyFields * 8}, ${series * anomalyRingBytes - 1}, ${profile} bytes for ${series} series`);
  }, testTimeoutMs);
});

describe("partition - sliced column copy", () => {
  test("partition - a column is copied 1 MiB a slice into an aligned Float64Array of its own, as float64Of() copies it", () => {
    const src = new Float64Array((3 * 2 ** 20) / 8 + 1).map((_, i) => i * 1.5);
    const bytes = new Uint8Array(src.byteLength + 3);
    bytes.set(new Uint8Array(src.buffer), 3);
    const unaligned = bytes.subarray(3); // as a decoded bin often is
    for (const x of [src, unaligned]) {
      const it = copyFloat64Slices(x);
      let yields = 0;
      let r = it.next();
      for (; !r.done; r = it.next()) yields++;
      expect(yields).toBe(3); // 3 MiB and 8 bytes: four slices
      expect(r.value).toEqual(float64Of(x));
      expect(r.value.buffer).not.toBe(src.buffer);
    }
    expect(() => runSlices(copyFloat64Slices(new Uint8Array(12)))).toThrow("snapshot column of 12 bytes is not a Float64Array");
  });
});

describe("partition - checkpoint stream", () => {
  const join = (chunks: Uint8Array[]) => {
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  };
  /** Each chunk copied as it comes: it is a view of the scratch, overwritten by the next. */
  const chunksOf = (stream: CheckpointStream, scratch: Uint8Array) => {
    const out: Uint8Array[] = [];
    for (const c of stream.chunks(scratch)) out.push(c.slice());
    return out;
  };

  test("partition - the chunks of a pipeline snapshot are the library's encoding, all of the scratch's size but the last", () => {
    const snap = busyPipeline(2_000).snapshot();
    const enc = new Encoder();
    const want = enc.encode(snap);
    const stream = CheckpointStream.of(snap, enc);
    const scratch = new Uint8Array(100_000);
    const chunks = chunksOf(stream, scratch);
    expect(stream.totalBytes).toBe(want.byteLength);
    expect(chunks.length).toBe(stream.chunkCount(scratch.byteLength));
    expect(chunks.length).toBe(Math.ceil(want.byteLength / 100_000));
    expect(chunks.slice(0, -1).every((c) => c.byteLength === 100_000)).toBe(true);
    expect(join(chunks)).toEqual(want);
  }, testTimeoutMs);

  test("partition - a snapshot's arrays are its own: the pipeline going on before the last chunk changes no byte of the stream", () => {
    // CheckpointStream copies typed arrays only when their chunk is made; this holds it to what was snapshotted.
    const p = busyPipeline(2_000);
    const snap = p.snapshot();
    const enc = new Encoder();
    const want = enc.encode(snap);
    const stream = CheckpointStream.of(snap, enc);
    const scratch = new Uint8Array(50_000);
    const chunks: Uint8Array[] = [];
    let first = true;
    for (const c of stream.chunks(scratch)) {
      chunks.push(c.slice());
      if (first) {
        first = false;
        // Every series moves on: new panes, closed windows, anomaly and trend state, all before the rest is copied.
        p.handleBatch(batch(0, 2_000, t0 + 60_000, t0 + 60_040, (sid) => sid * 3.5 + 1));
        p.tick(t0 + 200_000);
        p.take(Infinity);
      }
    }
    expect(chunks.length).toBeGreaterThan(2);
    expect(join(chunks)).toEqual(want);
    expect(enc.encode(p.snapshot())).not.toEqual(want); // the pipeline did change
  }, testTimeoutMs);

  test("partition - the stream encodes as the library every header size and leaf: fixmap, map 16, bin 8/16/32, undefined, arrays, strings, a Date", () => {
    const many: Record<string, number> = {};
    for (let i = 0; i < 20; i++) many[`k${i}`] = i === 3 ? -0.5 : i * 1000;
    const value = {
      empty: new Float64Array(0), small: Uint8Array.of(1, 2, 3), mid: new Float64Array(1_000).fill(Math.PI), big: new Float64Array(10_000).map((_, i) => i / 3),
      view: new Float64Array(50).fill(7).subarray(10, 20), gone: undefined, nil: null, list: [1, "two", { three: new Uint8Array(2) }], text: "héllo",
      nested: { deeper: { many, when: new Date(0), flag: true } }, int: 2 ** 40, neg: -17, nan: NaN,
    };
    const enc = new Encoder();
    const want = enc.encode(value);
    for (const size of [1, 7, 4096, 1 << 20]) {
      const stream = CheckpointStream.of(value, enc);
      expect(stream.totalBytes).toBe(want.byteLength);
      expect(join(chunksOf(stream, new Uint8Array(size)))).toEqual(want);
    }
  });
});

/** The loop with its deps injected; every beat reads what the loop put on the output ring since the beat before. */
function loopSetup(seriesMax: number) {
  const stats = new BigInt64Array(new SharedArrayBuffer(8 * partitionStatSlots.count));
  Atomics.store(stats, partitionStatSlots.owner, 1n);
  const data = {
    partition: 0, epoch: 1, specs: parseWindowSpecs("10s"), rollups: [], latenessMs: 2000, seriesMax, faults: false,
    checkpoint: null, checkpointPos: -1, replayTo: 0, rawDir: "/nonexistent", checkpointIntervalMs: 3_600_000,
    checkpointRowsMax: 1_000_000, checkpointBytesMax: 1 << 30, heapBytesMax: 2 ** 40,
  } as unknown as PartitionData; // the SABs are the loop's deps here, not its data
  const inRing = Ring.create(1 << 22);
  const outRing = Ring.create(1 << 23);
  const clock = { ms: 0, now() { return this.ms; } };
  const dec = new Decoder();
  const scratch = new Uint8Array(outRing.messageBytesMax);
  /** Per beat: window rows and checkpoint chunks taken off the output ring since the beat before. */
  const beats: Array<{ rows: number; chunks: number }> = [];
  const rows: Array<ReturnType<typeof windowRow.decode>> = [];
  const chunks: Uint8Array[] = [];
  const read = () => {
    const seen = { rows: 0, chunks: 0 };
    for (let n; (n = outRing.popInto(scratch)) >= 0; ) {
      const m = dec.decode(scratch.subarray(0, n)) as { k: string; w?: number[][]; bytes?: Uint8Array };
      if (m.k === "out") {
        rows.push(...m.w!.map(windowRow.decode));
        seen.rows += m.w!.length;
      } else {
        chunks.push(m.bytes!.slice());
        seen.chunks++;
      }
    }
    return seen;
  };
  const beat = () => {
    beats.push(read());
  };
  const loop = new PartitionLoop({ data, inRing, outRing, stats, clock, readLog: () => [], beat, heapBytes: () => 0 });
  const enc = new Encoder();
  /** Events of series [from, from + n) at ts, received at recvMs, in batches of 5,000. */
  const send = (from: number, n: number, ts: number, recvMs: number) => {
    for (let at = from; at < from + n; at += 5000) {
      const b = batch(at, Math.min(5000, from + n - at), ts, recvMs, () => 1);
      expect(inRing.tryPush(encodeEventBatch(enc, b.n, b.sid, b.ts, b.value, b.recvMs))).toBe(true);
    }
  };
  return { loop, clock, send, read, beats, rows, chunks, inRing, stats };
}

describe("partition - sliced rounds in the loop", () => {
  test("partition - a batch that makes 12,000 series quiet waits while they close, tickSeriesMax a beat; the rows are a replay's", async () => {
    const series = 12_000;
    const t = loopSetup(series);
    t.clock.ms = 1_000; // the loop's own clock stays here: only the second batch's receive time closes anything
    t.send(0, series, 1_000, 1_000);
    t.send(0, 1, 30_000, 30_000); // received at 30 s: every series' [0, 10 s) is due by then (its end + delay + lateness)
    const running = t.loop.run();
    await waitForCount(() => t.rows.length, series + 0, "the mass close's rows");
    t.loop.stop();
    await running;
    t.read();
    // A replay takes the same batches in one piece (PartitionPipeline.handleBatch ticks unsliced).
    const p = new PartitionPipeline({ specs: parseWindowSpecs("10s"), latenessMs: 2000, seriesMax: series, rollups: [] });
    for (let at = 0; at < series; at += 5000) p.handleBatch(batch(at, Math.min(5000, series - at), 1_000, 1_000, () => 1));
    p.handleBatch(batch(0, 1, 30_000, 30_000, () => 1));
    const want = p.take(Infinity).w.map(windowRow.decode);
    expect(want.length).toBe(series);
    expect(t.rows.slice(0, series)).toEqual(want);
    expect(want.every((w) => w.closedMs === 30_000)).toBe(true);
    // No beat saw more than one slice's rows: a series closes one window here.
    expect(Math.max(...t.beats.map((b) => b.rows))).toBeLessThanOrEqual(limits.tickSeriesMax);
    expect(t.beats.filter((b) => b.rows > 0).length).toBeGreaterThanOrEqual(Math.ceil(series / limits.tickSeriesMax));
  }, testTimeoutMs);

  test("partition - a checkpoint of 30,000 series beats after every snapshot slice and every chunk, and is the pipeline's snapshot byte for byte", async () => {
    const series = 30_000;
    const t = loopSetup(series);
    t.clock.ms = 1_000;
    t.send(0, series, 1_000, 1_000); // every series has an open pane: nothing closes at 1 s
    const running = t.loop.run();
    await waitForCount(() => Number(Atomics.load(t.stats, partitionStatSlots.events)), series, "the events taken");
    const before = t.beats.length;
    t.loop.stop(); // the final checkpoint
    await running;
    t.read();
    const during = t.beats.slice(before);
    const first = during.findIndex((b) => b.chunks > 0);
    // Before its first chunk, the snapshot's slices each beat: at least series / slice of them.
    expect(first).toBeGreaterThanOrEqual(Math.ceil(series / limits.snapshotSeriesPerSlice));
    expect(Math.max(...during.map((b) => b.chunks))).toBe(1); // a beat after every chunk
    const p = new PartitionPipeline({ specs: parseWindowSpecs("10s"), latenessMs: 2000, seriesMax: series, rollups: [] });
    for (let at = 0; at < series; at += 5000) p.handleBatch(batch(at, Math.min(5000, series - at), 1_000, 1_000, () => 1));
    p.take(Infinity);
    const want = new Encoder().encode(p.snapshot());
    expect(t.chunks.length).toBe(Math.ceil(want.byteLength / (limits.ringMessageBytesMax - 64 * 1024)));
    const got = new Uint8Array(want.byteLength);
    let at = 0;
    for (const c of t.chunks) {
      got.set(c, at);
      at += c.byteLength;
    }
    expect(at).toBe(want.byteLength);
    expect(got).toEqual(want);
  }, testTimeoutMs);
});

/** Waits (a turn of the event loop at a time, so the loop under test runs) until `count()` reaches `n`; fails after 30 s. */
async function waitForCount(count: () => number, n: number, what: string): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (count() < n) {
    if (performance.now() > deadline) throw new Error(`${what}: ${count()} of ${n} after 30 s`); // within testTimeoutMs
    await new Promise((r) => setImmediate(r));
  }
}
