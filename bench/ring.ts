/**
 * Ring throughput: columnar batches (seriesId u32, ts f64, value f64;
 * MessagePack) cross a Ring from a producer Worker to a consumer Worker that
 * decodes them and sums the values. The baseline does the same encode →
 * decode → sum on one thread with no ring, so the ratio shows what the ring
 * and the thread hop cost or win. Prints figures; asserts nothing on time.
 *
 * The default is 200 M events because 20 M cross in about 0.1 s, a figure
 * dominated by the workers' JIT warm-up; each run still stops after 5 s.
 *
 * @example bun bench/ring.ts
 *          RING_BENCH_EVENTS=2e7 RING_BENCH_BYTES=1048576 bun bench/ring.ts
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { Ring } from "../src/runtime/ring.ts";
import { limits } from "../src/runtime/limits.ts";
import { addBatch, encodeBatch, makeBatch, type Totals } from "./fixtures/columnar.ts";

const eventsDefault = 200_000_000;
const eventsPerMessage = 4096;
const runBudgetMs = 5_000; // per run, so the whole bench stops after about 10 s
const producerUrl = new URL("./fixtures/ring-producer.worker.ts", import.meta.url).href;
const consumerUrl = new URL("./fixtures/ring-consumer.worker.ts", import.meta.url).href;

type Run = Totals & { ms: number };
export type RingBenchResult = {
  name: string;
  eventsPerSec: number;
  baselineEventsPerSec: number;
  ratio: number;
  notes: string;
};

/**
 * Runs the baseline, then the two-worker ring run, over the same events.
 * @example const { eventsPerSec, ratio } = await benchRing({ events: 5_000_000 });
 */
export async function benchRing(opts: { events?: number; ringBytes?: number } = {}): Promise<RingBenchResult> {
  const events = opts.events ?? eventsDefault;
  const ringBytes = opts.ringBytes ?? limits.ringBytesDefault;
  const baseline = runBaseline(events);
  const threaded = await runThreaded(events, ringBytes);
  const perSec = (run: Run) => (run.events / run.ms) * 1000;
  const sameSum = threaded.events !== baseline.events || threaded.sum === baseline.sum;
  const notes =
    `ring ${fmt(threaded.events)} events in ${threaded.ms.toFixed(0)} ms, ` +
    `baseline ${fmt(baseline.events)} in ${baseline.ms.toFixed(0)} ms; ` +
    `${eventsPerMessage} events/message (${threaded.messageBytes} B), ${ringBytes / 2 ** 20} MiB ring, ` +
    `producer full spins ${threaded.fullSpins}, consumer sleeps ${threaded.sleeps}` +
    (sameSum ? "" : `; SUM MISMATCH ${threaded.sum} vs ${baseline.sum}`);
  return {
    name: "ring",
    eventsPerSec: perSec(threaded),
    baselineEventsPerSec: perSec(baseline),
    ratio: perSec(threaded) / perSec(baseline),
    notes,
  };
}

/** encode → decode → sum in one loop on this thread. */
function runBaseline(events: number): Run {
  const encoder = new Encoder();
  const decoder = new Decoder();
  const batch = makeBatch(eventsPerMessage);
  const aligned = new Float64Array(eventsPerMessage);
  const totals = { events: 0, sum: 0 };
  const start = performance.now();
  for (let sent = 0; sent < events && performance.now() - start < runBudgetMs; ) {
    const n = Math.min(eventsPerMessage, events - sent);
    addBatch(decoder, encodeBatch(encoder, batch, sent, n), aligned, totals);
    sent += n;
  }
  return { ...totals, ms: performance.now() - start };
}

/** Producer worker → ring → consumer worker; timed from the start message to the consumer's report. */
async function runThreaded(events: number, ringBytes: number): Promise<Run & { fullSpins: number; sleeps: number; messageBytes: number }> {
  const ring = Ring.create(ringBytes);
  const producer = new Worker(producerUrl);
  const consumer = new Worker(consumerUrl);
  try {
    await Promise.all([nextMessage(producer), nextMessage(consumer)]); // both loaded
    consumer.postMessage({ sab: ring.sab });
    const produced = nextMessage<{ events: number; fullSpins: number; messageBytes: number }>(producer);
    const consumed = nextMessage<Totals & { sleeps: number }>(consumer);
    const start = performance.now();
    producer.postMessage({ sab: ring.sab, events, eventsPerMessage, deadlineMs: Date.now() + runBudgetMs });
    const totals = await consumed;
    const ms = performance.now() - start;
    const { fullSpins, messageBytes } = await produced;
    return { ...totals, ms, fullSpins, messageBytes };
  } finally {
    producer.terminate();
    consumer.terminate();
  }
}

/** The worker's next message; rejects if the worker throws first. */
function nextMessage<T = unknown>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    worker.addEventListener("message", (e) => resolve(e.data as T), { once: true });
    worker.addEventListener("error", (e) => reject(e.error ?? new Error(e.message)), { once: true });
  });
}

const fmt = (n: number) => `${(n / 1e6).toFixed(1)} M`;

if (import.meta.main) {
  const events = Number(process.env.RING_BENCH_EVENTS ?? eventsDefault);
  const ringBytes = Number(process.env.RING_BENCH_BYTES ?? limits.ringBytesDefault);
  const r = await benchRing({ events, ringBytes });
  console.log(
    `${r.name}: ${fmt(r.eventsPerSec)} events/s across 2 workers vs ${fmt(r.baselineEventsPerSec)} events/s ` +
      `on one thread (ratio ${r.ratio.toFixed(2)}); ${r.notes}`,
  );
}
