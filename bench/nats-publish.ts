/**
 * The JetStream publish baseline on this machine: what NATS alone takes
 * before weir does anything. 1,000,000 events as 1,000-event JSON messages
 * (weir's event shape, 1,000 series) are published to a fresh WEIR_INGEST
 * stream (file storage) on a fresh nats-server (test/helpers/nats-server.ts),
 * each with its own Nats-Msg-Id as weir's producers send, with a bounded
 * number of publishes awaiting their acks. Prints events/s, messages/s,
 * publish-ack latency p50/p99, the server's CPU seconds and peak RSS, and
 * this process's CPU seconds (client and server share the machine).
 *
 * The bodies are encoded once before the clock starts (a pool of distinct
 * messages, reused with new ids), so the figure is JetStream's and the
 * client's, not JSON.stringify's. Bounded in count and in time: a run stops
 * after runBudgetMs and reports what it published.
 *
 * @example bun bench/nats-publish.ts
 *          NATS_BENCH_EVENTS=2e6 NATS_BENCH_IN_FLIGHT=256 bun bench/nats-publish.ts
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectNats } from "../src/nats/connection.ts";
import { ensureIngestStream, ingestStreamDefaults } from "../src/nats/ingest-stream.ts";
import { ingestSubject } from "../src/nats/subjects.ts";
import { createPrng } from "../src/sim/prng.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { cpuSecondsOf, quantile } from "./fixtures/weir-process.ts";

const eventsDefault = 1_000_000;
const eventsPerMessage = 1_000;
const inFlightDefault = 32; // 8 to 64 give the same rate here (about 3 M events/s over 10 M events); latency grows with the count
const inFlightMax = 1_024;
const seriesCount = 1_000;
const poolMessages = 64; // distinct bodies; more would only cost memory
const runBudgetMs = 60_000;

export interface NatsPublishResult {
  events: number;
  messages: number;
  seconds: number;
  eventsPerSec: number;
  messagesPerSec: number;
  ackMsP50: number;
  ackMsP99: number;
  serverCpuSeconds: number;
  serverPeakRssBytes: number;
  clientCpuSeconds: number;
  messageBytes: number;
  inFlight: number;
  streamMessages: number;
  duplicates: number;
}

/**
 * One run on its own nats-server.
 * @example const r = await benchNatsPublish({ events: 1e6, inFlight: 64 }); r.eventsPerSec
 */
export async function benchNatsPublish(opts: { events?: number; inFlight?: number } = {}): Promise<NatsPublishResult> {
  const events = opts.events ?? eventsDefault;
  const inFlight = opts.inFlight ?? inFlightDefault;
  if (!(events >= eventsPerMessage && inFlight >= 1 && inFlight <= inFlightMax)) {
    throw new Error(`events ≥ ${eventsPerMessage} and 1 ≤ in flight ≤ ${inFlightMax}, got ${events} and ${inFlight}`);
  }
  const messages = Math.floor(events / eventsPerMessage);
  const pool = encodePool(Date.now());
  const server = await startNatsServer();
  const link = await connectNats(server.url, { name: "weir-bench" });
  try {
    const jsm = await jetstreamManager(link.nc);
    await ensureIngestStream(jsm, ingestStreamDefaults);
    const js = jetstream(link.nc);
    const subject = ingestSubject("bench");
    const latencyMs = new Float64Array(messages);
    let next = 0;
    let acked = 0;
    let duplicates = 0;
    const cpu0 = await cpuSecondsOf(server.pid);
    const client0 = process.cpuUsage();
    const t0 = performance.now();
    const deadline = t0 + runBudgetMs;
    // inFlight publishers, each awaiting its ack before the next: at most inFlight unacknowledged.
    const publisher = async () => {
      while (next < messages && performance.now() < deadline) {
        const i = next++;
        const sent = performance.now();
        const ack = await js.publish(subject, pool[i % poolMessages], { msgID: `bench-${i}` });
        latencyMs[acked++] = performance.now() - sent;
        if (ack.duplicate) duplicates++;
      }
    };
    await Promise.all(Array.from({ length: inFlight }, publisher));
    const seconds = (performance.now() - t0) / 1000;
    const client = process.cpuUsage(client0);
    const cpu1 = await cpuSecondsOf(server.pid);
    const info = await jsm.streams.info(ingestStreamDefaults.name);
    const sorted = latencyMs.subarray(0, acked).sort();
    return {
      events: acked * eventsPerMessage, messages: acked, seconds,
      eventsPerSec: (acked * eventsPerMessage) / seconds, messagesPerSec: acked / seconds,
      ackMsP50: quantile(sorted, 0.5), ackMsP99: quantile(sorted, 0.99),
      serverCpuSeconds: cpu1.process - cpu0.process, serverPeakRssBytes: await peakRssBytesOf(server.pid),
      clientCpuSeconds: (client.user + client.system) / 1e6,
      messageBytes: Math.round(pool.reduce((n, b) => n + b.length, 0) / poolMessages),
      inFlight, streamMessages: info.state.messages, duplicates,
    };
  } finally {
    await link.close();
    await server.stop();
  }
}

/** poolMessages JSON arrays of eventsPerMessage events over seriesCount devices, encoded once. */
export function encodePool(nowMs: number): Uint8Array[] {
  const rng = createPrng(7);
  const encoder = new TextEncoder();
  const pool: Uint8Array[] = [];
  for (let m = 0; m < poolMessages; m++) {
    const batch = [];
    for (let e = 0; e < eventsPerMessage; e++) {
      const k = rng.int(seriesCount);
      batch.push({ name: "sensor.temperature", value: Math.round((20 + 5 * rng.gaussian()) * 100) / 100, ts: nowMs - 1000 + e, tags: { device: `d${k}` } });
    }
    pool.push(encoder.encode(JSON.stringify(batch)));
  }
  return pool;
}

/** The peak resident set (VmHWM) of a process in bytes, or NaN once it has gone. */
async function peakRssBytesOf(pid: number): Promise<number> {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(await Bun.file(`/proc/${pid}/status`).text())![1]) * 1024;
  } catch {
    return NaN;
  }
}

if (import.meta.main) {
  const r = await benchNatsPublish({ events: Number(process.env.NATS_BENCH_EVENTS ?? eventsDefault), inFlight: Number(process.env.NATS_BENCH_IN_FLIGHT ?? inFlightDefault) });
  const m = (n: number) => `${(n / 1e6).toFixed(2)} M`;
  console.log(
    `JetStream publish, ${eventsPerMessage}-event JSON messages (${(r.messageBytes / 1024).toFixed(1)} KiB), ${r.inFlight} in flight, file storage, Nats-Msg-Id each\n` +
    `  ${m(r.eventsPerSec)} events/s   ${(r.messagesPerSec / 1e3).toFixed(2)} k messages/s   ${r.messages} messages in ${r.seconds.toFixed(2)} s\n` +
    `  publish-ack latency p50 ${r.ackMsP50.toFixed(2)} ms   p99 ${r.ackMsP99.toFixed(2)} ms\n` +
    `  nats-server CPU ${r.serverCpuSeconds.toFixed(2)} s   peak RSS ${(r.serverPeakRssBytes / 2 ** 20).toFixed(1)} MiB   client CPU ${r.clientCpuSeconds.toFixed(2)} s\n` +
    `  stream holds ${r.streamMessages} messages; ${r.duplicates} duplicate acks`,
  );
  console.log(JSON.stringify(r));
}
