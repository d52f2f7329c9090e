/**
 * The partition loop in-process, with its rings, clock and log reader
 * injected (no worker thread): the quiet rule follows the injected clock,
 * a waiting batch holds it back, and a stop ends with a checkpoint after the
 * results it covers.
 */
import { describe, expect, test } from "bun:test";
import { Decoder, Encoder } from "@msgpack/msgpack";
import { windowRow, type WindowRowView } from "../src/actors/result-rows.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import { PartitionLoop, type PartitionData } from "../src/partition/partition-loop.ts";
import { partitionStatSlots } from "../src/partition/worker-stats.ts";
import { encodeEventBatch } from "../src/runtime/codec.ts";
import { Ring } from "../src/runtime/ring.ts";
import { waitFor } from "./helpers/wait.ts";

function setup(over: Partial<PartitionData> = {}) {
  const stats = new BigInt64Array(new SharedArrayBuffer(8 * partitionStatSlots.count));
  Atomics.store(stats, partitionStatSlots.owner, 1n);
  const data = {
    partition: 0, epoch: 1, specs: parseWindowSpecs("10s"), rollups: [], latenessMs: 2000, seriesMax: 4, faults: false,
    checkpoint: null, checkpointPos: -1, replayTo: 0, rawDir: "/nonexistent", checkpointIntervalMs: 3_600_000,
    checkpointRowsMax: 50_000, checkpointBytesMax: 1 << 30, heapBytesMax: 2 ** 40, ...over,
  } as unknown as PartitionData; // the SABs are the loop's deps here, not its data
  const inRing = Ring.create(1 << 20);
  const outRing = Ring.create(1 << 22);
  const clock = { ms: 0, now() { return this.ms; } };
  const loop = new PartitionLoop({ data, inRing, outRing, stats, clock, readLog: () => [], beat: () => {}, heapBytes: () => 0 });
  const enc = new Encoder();
  const dec = new Decoder();
  const scratch = new Uint8Array(outRing.messageBytesMax);
  const windows: WindowRowView[] = [];
  const checkpoints: number[] = [];
  const read = () => {
    for (let n; (n = outRing.popInto(scratch)) >= 0; ) {
      const m = dec.decode(scratch.subarray(0, n)) as { k: string; w?: number[][]; pos?: number };
      if (m.k === "out") windows.push(...m.w!.map(windowRow.decode));
      else checkpoints.push(windows.length);
    }
    return windows;
  };
  /** One event of series 0 at `ts`, received at `recvMs`. */
  const send = (ts: number, recvMs: number) =>
    expect(inRing.tryPush(encodeEventBatch(enc, 1, Uint32Array.of(0), Float64Array.of(ts), Float64Array.of(1), recvMs))).toBe(true);
  return { loop, clock, send, read, checkpoints, inRing };
}

describe("partition loop", () => {
  test("partition loop - the quiet close follows the injected clock: end + the series' delay + lateness, not before", async () => {
    const t = setup();
    t.clock.ms = 21_000;
    for (let k = 0; k < 8; k++) t.send(1_000 + k * 1000, 21_000 + k * 1000); // 20 s behind, warmed up after 8 events
    const running = t.loop.run();
    await waitFor(() => t.inRing.isEmpty(), 2000, "the batches taken");
    expect(t.read()).toEqual([]); // at 21–28 s nothing is due: [0, 10 s) waits for 10 s + 20 s + 2 s
    t.clock.ms = 32_000;
    await waitFor(() => t.read().length === 1, 2000, "the window closed by the quiet rule");
    // Closed at the injected clock's 32 s: not at the wall clock, and not before.
    expect(t.read()[0]).toMatchObject({ sid: 0, start: 0, end: 10_000, count: 8, closedMs: 32_000 });
    t.loop.stop();
    await running;
    t.read();
    expect(t.checkpoints).toEqual([1]); // the final checkpoint, after the window it covers
  });

  test("partition loop - a held clock holds the quiet rule, not the checkpoints: they are paced by the wall clock", async () => {
    const t = setup({ checkpointIntervalMs: 20 });
    t.clock.ms = 5_000; // held here, as a cluster takeover or handoff holds it
    t.send(1_000, 1_000);
    const running = t.loop.run();
    await waitFor(() => (t.read(), t.checkpoints.length >= 1), 2000, "a checkpoint while the clock stands still");
    expect(t.read()).toEqual([]); // nothing closed: [0, 10 s) waits for the clock
    t.loop.stop();
    await running;
  });

  test("partition loop - a batch waiting on the ring holds the clock back: it is ticked for at its receive time, then handled", async () => {
    const t = setup();
    t.clock.ms = 100_000; // the wall clock is far ahead of the batch, as after a stall
    t.send(5_000, 5_000); // real-time when it was received; its window [0, 10 s) is due at 12 s by its receive time
    t.send(12_500, 12_500); // received at 12.5 s: the tick before it closes [0, 10 s); its own window stays open
    const running = t.loop.run();
    await waitFor(() => t.read().length === 2, 2000, "both windows");
    // The first closed by the tick before the second batch, at its receive time; the second by the wall clock, once nothing waits.
    expect(t.read().map((w) => [w.end, w.count, w.closedMs])).toEqual([[10_000, 1, 12_500], [20_000, 1, 100_000]]);
    t.loop.stop();
    await running;
  });
  test("partition loop - a snapshot over checkpointBytesMax fails the loop (its thread, so the supervisor restarts and then fails the partition), naming the sizes; nothing is sent", async () => {
    const t = setup({ checkpointBytesMax: 64 });
    t.clock.ms = 6_000;
    t.send(5_000, 5_000);
    const running = t.loop.run();
    await waitFor(() => t.inRing.isEmpty(), 2000, "the batch taken");
    t.loop.stop(); // the final checkpoint is due now
    const failed = await running.then(() => "stopped", (e: Error) => e.message);
    expect(failed).toMatch(/^partition 0: checkpoint of \d+ bytes, over 64 \(limits\.checkpointBytesMax\)$/);
    t.read();
    expect(t.checkpoints).toEqual([]);
  });
});
