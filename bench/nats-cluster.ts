/**
 * Cluster mode (WEIR_NATS_CLUSTER) on this machine: events/s through NATS
 * with 1, 2 and 3 weir processes sharing the partitions, beside one weir
 * process in plain NATS mode (no repartition hop) and the JetStream publish
 * baseline, all measured in the same run; then the takeover time after a
 * kill -9 of one of three processes.
 *
 * Throughput, each configuration on a fresh nats-server: EVENTS events as
 * 1,000-event JSON messages over 1,000 series, published with 32 in
 * flight, timed from the first publish until the processes together have
 * aggregated every event (the sum of weir_events_ingested_total) and every
 * message of WEIR_INGEST is acknowledged. The order of the configurations
 * alternates each round. CPU is summed over the weir processes.
 *
 * Takeover: three processes with WEIR_NATS_LEASE=TAKEOVER_LEASE; a steady
 * 10,000 events/s; kill -9 of the process owning the most partitions; the
 * time until every partition has an owner again (lease expiry + claim) and
 * until the survivors have aggregated every event published so far
 * (+ restore + catch-up); the survivors' weir_cluster_last_takeover_seconds
 * (claim → backlog read).
 *
 *   bun bench/nats-cluster.ts        # CLUSTER_ROUNDS=2 CLUSTER_EVENTS=500000 TAKEOVER_LEASE=2s
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectNats } from "../src/nats/connection.ts";
import { ingestSubject } from "../src/nats/subjects.ts";
import { startNatsServer, type NatsServer } from "../test/helpers/nats-server.ts";
import { cpuSecondsOf, rssBytesOf, startWeirProcess, type WeirProcess } from "./fixtures/weir-process.ts";
import { benchNatsPublish, encodePool } from "./nats-publish.ts";

const rounds = Number(process.env.CLUSTER_ROUNDS ?? 2);
const events = Number(process.env.CLUSTER_EVENTS ?? 500_000);
const takeoverLease = process.env.TAKEOVER_LEASE ?? "2s";
const partitions = 6;
const eventsPerMessage = 1_000;
const inFlight = 32;
const waitMsMax = 180_000;

interface Run { eventsPerSec: number; cpuSeconds: number; peakRssMiB: number }

async function startCluster(nats: NatsServer, n: number, extra: Record<string, string> = {}): Promise<WeirProcess[]> {
  // One after another: started together, two could be handed the same free port, and the second's /ready check
  // would be answered by the first (seen once: two handles on one process, its figures counted twice).
  const procs: WeirProcess[] = [];
  for (let i = 0; i < n; i++) {
    procs.push(await startWeirProcess({ WEIR_NATS_URL: nats.url, WEIR_PARTITIONS: String(partitions), WEIR_NATS_CLUSTER: "1", WEIR_NODE_NAME: `n${i}`, ...extra }));
  }
  const owned = async () => Promise.all(procs.map(async (p) => (await p.metrics()).weir_cluster_partitions_owned ?? 0));
  const deadline = performance.now() + 60_000;
  for (;;) {
    const o = await owned();
    if (o.reduce((a, b) => a + b, 0) === partitions && o.every((x) => x > 0)) return procs;
    if (performance.now() > deadline) throw new Error(`partitions not spread over ${n} processes: ${o.join("/")}`);
    await Bun.sleep(100);
  }
}

const ingestedBy = async (procs: WeirProcess[]) => (await Promise.all(procs.map(async (p) => (await p.metrics().catch(() => ({} as Record<string, number>))).weir_events_ingested_total ?? 0))).reduce((a, b) => a + b, 0);

/** `n` cluster processes, or (n = 0) one process in plain NATS mode. */
async function throughput(n: number): Promise<Run> {
  const nats = await startNatsServer();
  const procs = n === 0 ? [await startWeirProcess({ WEIR_NATS_URL: nats.url, WEIR_PARTITIONS: String(partitions) })] : await startCluster(nats, n);
  const link = await connectNats(nats.url, { name: "weir-bench" });
  try {
    const js = jetstream(link.nc);
    const jsm = await jetstreamManager(link.nc);
    const pool = encodePool(Date.now());
    const messages = events / eventsPerMessage;
    let next = 0;
    let peakRss = 0;
    const cpu0 = await Promise.all(procs.map(async (p) => (await cpuSecondsOf(p.pid)).process));
    const t0 = performance.now();
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next < messages) {
        const i = next++;
        await js.publish(ingestSubject("bench"), pool[i % pool.length], { msgID: `bench-${i}` });
      }
    }));
    for (;;) {
      let rss = 0;
      for (const p of procs) rss += await rssBytesOf(p.pid);
      peakRss = Math.max(peakRss, rss);
      const ingested = await ingestedBy(procs);
      const c = await jsm.consumers.info("WEIR_INGEST", "weir-ingest");
      if (ingested >= events && c.num_pending === 0 && c.num_ack_pending === 0) break;
      if (performance.now() - t0 > waitMsMax) throw new Error(`${n} processes aggregated ${ingested} of ${events} in ${waitMsMax} ms`);
      await Bun.sleep(20);
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = await Promise.all(procs.map(async (p) => (await cpuSecondsOf(p.pid)).process));
    return { eventsPerSec: events / seconds, cpuSeconds: cpu1.reduce((a, b, i) => a + b - cpu0[i], 0), peakRssMiB: Math.round(peakRss / 2 ** 20) };
  } finally {
    await link.close();
    await Promise.all(procs.map((p) => p.stop()));
    await nats.stop();
  }
}

interface Takeover { reownedMs: number; caughtUpMs: number; claimToCaughtUpS: number }

async function takeover(): Promise<Takeover> {
  const nats = await startNatsServer();
  const procs = await startCluster(nats, 3, { WEIR_NATS_LEASE: takeoverLease });
  const link = await connectNats(nats.url, { name: "weir-bench" });
  try {
    const js = jetstream(link.nc);
    const pool = encodePool(Date.now());
    const ratePerSec = 10_000;
    const ownedOf = async (p: WeirProcess) => (await p.metrics()).weir_cluster_partitions_owned ?? 0;
    const owned = await Promise.all(procs.map(ownedOf));
    const victim = procs[owned.indexOf(Math.max(...owned))];
    const survivors = procs.filter((p) => p !== victim);
    let published = 0;
    let stop = false;
    const t0 = performance.now();
    const publisher = (async () => {
      for (let i = 0; !stop && i < 1_000; i++) { // bounded: 1,000 messages at most (100 s)
        const due = t0 + (i * eventsPerMessage * 1000) / ratePerSec;
        if (due > performance.now()) await Bun.sleep(due - performance.now());
        if (stop) break;
        await js.publish(ingestSubject("bench"), pool[i % pool.length], { msgID: `takeover-${i}` });
        published += eventsPerMessage;
      }
    })();
    await Bun.sleep(4_000);
    const victimIngested = await ingestedBy([victim]); // what it aggregated; some of it after its last shared checkpoint, which a survivor counts again
    process.kill(victim.pid, "SIGKILL");
    const killedAt = performance.now();
    let reownedMs = -1;
    for (;;) {
      if (reownedMs < 0 && (await Promise.all(survivors.map(ownedOf))).reduce((a, b) => a + b, 0) === partitions) reownedMs = performance.now() - killedAt;
      // Caught up: the survivors have aggregated everything published that the victim had not (at least).
      if (reownedMs >= 0 && (await ingestedBy(survivors)) >= published - victimIngested) break;
      if (performance.now() - killedAt > 60_000) {
        throw new Error(`no takeover within 60 s: partitions owned ${(await Promise.all(survivors.map(ownedOf))).join("/")}, survivors aggregated ${await ingestedBy(survivors)} of ${published - victimIngested}`);
      }
      await Bun.sleep(20);
    }
    const caughtUpMs = performance.now() - killedAt;
    stop = true;
    await publisher;
    const claims = await Promise.all(survivors.map(async (p) => (await p.metrics()).weir_cluster_last_takeover_seconds ?? 0));
    return { reownedMs, caughtUpMs, claimToCaughtUpS: Math.max(...claims) };
  } finally {
    await link.close();
    await Promise.all(procs.map((p) => p.stop().catch(() => {})));
    await nats.stop();
  }
}

const k = (x: number) => `${Math.round(x / 1000)} k`;
if (process.env.CLUSTER_ONLY === "takeover") {
  const t = await takeover();
  console.log(`takeover: every partition owned again after ${(t.reownedMs / 1000).toFixed(2)} s; every event aggregated after ${(t.caughtUpMs / 1000).toFixed(2)} s; claim → backlog read ${t.claimToCaughtUpS.toFixed(2)} s`);
  process.exit(0);
}
if (process.env.CLUSTER_ONLY !== undefined) { // a number of processes (0: plain NATS mode), once: for a profile
  const n = Number(process.env.CLUSTER_ONLY);
  const x = await throughput(n);
  console.log(`${n} process(es): ${k(x.eventsPerSec)} events/s, ${x.cpuSeconds.toFixed(2)} CPU-s`);
  process.exit(0);
}
const configs = [-1, 0, 1, 2, 3]; // -1: the JetStream publish baseline; 0: one process, plain NATS mode
const results = new Map<number, Run[]>(configs.map((c) => [c, []]));
for (let r = 0; r < rounds; r++) {
  for (const c of r % 2 === 0 ? configs : [...configs].reverse()) {
    if (c === -1) {
      const b = await benchNatsPublish({ events, inFlight });
      results.get(c)!.push({ eventsPerSec: b.eventsPerSec, cpuSeconds: NaN, peakRssMiB: NaN });
      console.error(`round ${r + 1}: JetStream publish alone ${k(b.eventsPerSec)} events/s`);
      continue;
    }
    const x = await throughput(c);
    results.get(c)!.push(x);
    console.error(`round ${r + 1}: ${c === 0 ? "one process, plain NATS mode" : `${c} cluster process(es)`}: ${k(x.eventsPerSec)} events/s, ${x.cpuSeconds.toFixed(2)} CPU-s, peak RSS ${x.peakRssMiB} MiB (summed)`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(results.get(-1)!.map((x) => x.eventsPerSec));
const plain = median(results.get(0)!.map((x) => x.eventsPerSec));
console.log(`| ${rounds} rounds, ${events / 1000} k events, medians | events/s | vs publish alone | vs one plain process | events per CPU-second | peak RSS (sum) |`);
console.log("|---|---|---|---|---|---|");
console.log(`| JetStream publish alone (baseline) | ${k(base)} | 1.00 | | | |`);
for (const c of [0, 1, 2, 3]) {
  const runs = results.get(c)!;
  const eps = median(runs.map((x) => x.eventsPerSec));
  const label = c === 0 ? "one weir process, plain NATS mode (no repartition hop)" : `${c} weir process${c > 1 ? "es" : ""}, cluster mode`;
  console.log(`| ${label} | ${k(eps)} | ${(eps / base).toFixed(2)} | ${(eps / plain).toFixed(2)} | ${k(median(runs.map((x) => events / x.cpuSeconds)))} | ${median(runs.map((x) => x.peakRssMiB))} MiB |`);
}
const t = await takeover();
console.log(`\ntakeover after kill -9 of one of three (WEIR_NATS_LEASE=${takeoverLease}, 10 k events/s): every partition owned again after ${(t.reownedMs / 1000).toFixed(2)} s; every event published so far aggregated after ${(t.caughtUpMs / 1000).toFixed(2)} s; claim → backlog read ${t.claimToCaughtUpS.toFixed(2)} s`);
