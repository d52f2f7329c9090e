/**
 * Events/s through NATS into one weir process, beside the JetStream publish
 * baseline measured in the same run (bench/nats-publish.ts). Each round:
 * the baseline on its own fresh nats-server; then a fresh nats-server and a
 * fresh weir (WEIR_NATS_URL, its own process and data directory), the same
 * 1,000,000 events as 1,000-event JSON messages published with 32 in
 * flight, timed from the first publish until weir has ingested every event
 * (weir_events_ingested_total) and acknowledged every message (its
 * consumer's ack pending 0: every message's checkpoint committed). The
 * order alternates each round.
 *
 *   bun bench/nats-ingest.ts          # NATS_INGEST_ROUNDS=2
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectNats } from "../src/nats/connection.ts";
import { ingestSubject } from "../src/nats/subjects.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { cpuSecondsOf, rssBytesOf, startWeirProcess } from "./fixtures/weir-process.ts";
import { benchNatsPublish, encodePool } from "./nats-publish.ts";

const rounds = Number(process.env.NATS_INGEST_ROUNDS ?? 2);
const events = 1_000_000;
const eventsPerMessage = 1_000;
const inFlight = 32;
const waitMsMax = 120_000;

interface WeirRun { eventsPerSec: number; publishEventsPerSec: number; ackedSeconds: number; weirCpuSeconds: number; weirPeakRssMiB: number }

async function throughWeir(): Promise<WeirRun> {
  const nats = await startNatsServer();
  const weir = await startWeirProcess({ WEIR_NATS_URL: nats.url });
  const link = await connectNats(nats.url, { name: "weir-bench" });
  try {
    const js = jetstream(link.nc);
    const jsm = await jetstreamManager(link.nc);
    const pool = encodePool(Date.now());
    const messages = events / eventsPerMessage;
    let next = 0;
    let peakRss = 0;
    const cpu0 = (await cpuSecondsOf(weir.pid)).process;
    const t0 = performance.now();
    const publisher = async () => {
      while (next < messages) {
        const i = next++;
        await js.publish(ingestSubject("bench"), pool[i % pool.length], { msgID: `bench-${i}` });
      }
    };
    await Promise.all(Array.from({ length: inFlight }, publisher));
    const published = performance.now();
    for (;;) {
      peakRss = Math.max(peakRss, await rssBytesOf(weir.pid));
      const ingested = (await weir.metrics()).weir_events_ingested_total ?? 0;
      const c = await jsm.consumers.info("WEIR_INGEST", "weir-ingest");
      if (ingested >= events && c.num_pending === 0 && c.num_ack_pending === 0) break;
      if (performance.now() - t0 > waitMsMax) throw new Error(`weir ingested ${ingested} of ${events} in ${waitMsMax} ms`);
      await Bun.sleep(20);
    }
    const seconds = (performance.now() - t0) / 1000;
    return {
      eventsPerSec: events / seconds, publishEventsPerSec: events / ((published - t0) / 1000), ackedSeconds: seconds,
      weirCpuSeconds: (await cpuSecondsOf(weir.pid)).process - cpu0, weirPeakRssMiB: Math.round(peakRss / 2 ** 20),
    };
  } finally {
    await link.close();
    await weir.stop();
    await nats.stop();
  }
}

const k = (n: number) => `${Math.round(n / 1000)} k`;
const baselines: number[] = [];
const runs: WeirRun[] = [];
for (let r = 0; r < rounds; r++) {
  for (const which of r % 2 === 0 ? ["baseline", "weir"] : ["weir", "baseline"]) {
    if (which === "baseline") {
      const b = await benchNatsPublish({ events, inFlight });
      baselines.push(b.eventsPerSec);
      console.error(`round ${r + 1}: JetStream publish alone ${k(b.eventsPerSec)} events/s`);
    } else {
      const w = await throughWeir();
      runs.push(w);
      console.error(`round ${r + 1}: through weir ${k(w.eventsPerSec)} events/s (all acknowledged after ${w.ackedSeconds.toFixed(2)} s; publishing alone took ${k(w.publishEventsPerSec)} events/s), weir ${w.weirCpuSeconds.toFixed(2)} CPU-s, peak RSS ${w.weirPeakRssMiB} MiB`);
    }
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const through = median(runs.map((x) => x.eventsPerSec));
const base = median(baselines);
console.log(`| ${rounds} rounds, medians | events/s | ratio |`);
console.log("|---|---|---|");
console.log(`| JetStream publish alone (baseline) | ${k(base)} | 1.00 |`);
console.log(`| through one weir process, until every message is acknowledged | ${k(through)} | ${(through / base).toFixed(2)} |`);
console.log(`| weir's events per CPU-second | ${k(median(runs.map((x) => events / x.weirCpuSeconds)))} | |`);
