/**
 * The durability run for cluster mode (WEIR_NATS_CLUSTER): three weir
 * processes share one nats-server's partitions; seeded generators send
 * events with unique ids over HTTP to whichever process is up (each
 * publishes through JetStream and answers 202 once stored) and keep a
 * ledger of what got a 202; one process is SIGKILLed mid-stream (its
 * partitions are taken over once its leases expire) and started again
 * later (it takes its share back). Then every window is recomputed from the
 * ledger and compared with what ONE process answers for all series (its
 * own partitions and the results it copied from the others).
 *
 * @example
 *   const r = await runClusterScenario({ ...small, natsUrl, dataDirs, killAtMs: 6_000, restartAfterMs: 5_000 });
 */
import { strict as assert } from "node:assert";
import { awaitWindows, compare, formatReport, parseSpecs, recount, type CheckReport } from "./checker.ts";
import { runGenerator } from "./generator.ts";
import { Ledger, ledgerSeries } from "./ledger.ts";
import { WeirProcess } from "./process.ts";

export interface ClusterScenarioOptions {
  name: string;
  seed: number;
  natsUrl: string;
  /** One data directory per process (three for the test). */
  dataDirs: readonly string[];
  partitions: number;
  leaseMs: number;
  generators: number;
  seriesPerGenerator: number;
  eventsPerRequest: number;
  eventsPerSec: number;
  durationMs: number;
  /** When (ms after the traffic starts) process 1 is SIGKILLed (null: never), and how long it stays down (null: not started again). */
  killAtMs: number | null;
  restartAfterMs: number | null;
  /** nats-server itself SIGKILLed at `atMs` and started again `downMs` later. */
  natsOutage?: { atMs: number; downMs: number; kill: () => Promise<void>; restart: () => Promise<void> };
  specsText: string;
  latenessMs: number;
  /** How long past the last window's end (plus lateness) every window may take to be answered (default 30 s). */
  tailSlackMs?: number;
  progress?: (line: string) => void;
}

export interface ClusterScenarioResult {
  report: CheckReport;
  windowsComplete: boolean;
  /** Partitions each process owned when the traffic started, and at the end. */
  ownedAtStart: number[];
  ownedAtEnd: number[];
  /** Takeovers each process made (from /metrics at the end). */
  takeovers: number[];
  /** Seconds from a survivor's claim to its backlog read, the last one. */
  lastTakeoverSeconds: number[];
  /** From the kill until every partition had an owner again (ms; -1 without a kill). */
  reownedMs: number;
  /** HTTP attempts refused (503: NATS away, or a process stopping). */
  refused: number;
  logTail: string;
}

const tailSlackMsDefault = 30_000;
const waitStepMs = 100;

export async function runClusterScenario(o: ClusterScenarioOptions): Promise<ClusterScenarioResult> {
  assert(o.dataDirs.length >= 2, "a cluster of two at least");
  const say = (line: string) => o.progress?.(`${o.name}: ${line}`);
  const specs = parseSpecs(o.specsText);
  const procs = await Promise.all(o.dataDirs.map((dataDir, i) => WeirProcess.start({
    dataDir,
    env: {
      WEIR_NATS_URL: o.natsUrl, WEIR_NATS_CLUSTER: "1", WEIR_NODE_NAME: `n${i}`, WEIR_NATS_LEASE: `${o.leaseMs}ms`,
      WEIR_PARTITIONS: String(o.partitions), WEIR_WINDOWS: o.specsText, WEIR_LATENESS: `${o.latenessMs}ms`,
    },
  })));
  const victim = procs[1];
  try {
    const owned = async () => Promise.all(procs.map(async (p) => (p.alive ? (await p.scrape())?.get("weir_cluster_partitions_owned") ?? 0 : 0)));
    await until(async () => {
      const n = await owned();
      return n.reduce((a, b) => a + b, 0) === o.partitions && n.every((x) => x > 0);
    }, 30_000, "the partitions spread over the three processes");
    const ownedAtStart = await owned();
    say(`three processes up, partitions owned ${ownedAtStart.join("/")}`);
    const ledger = new Ledger();
    let rr = 0;
    // Round robin over the processes that are up; a request to the one being killed is retried (same ids) elsewhere.
    const endpoint = async () => {
      for (let i = 0; i < procs.length; i++) {
        const p = procs[rr++ % procs.length];
        if (p.alive && p.url !== "") return p.endpoint();
      }
      return procs[0].endpoint();
    };
    const stats = Promise.all(Array.from({ length: o.generators }, (_, g) => runGenerator({
      seed: (o.seed * 7919 + g) >>> 0,
      series: Array.from({ length: o.seriesPerGenerator }, (_, i) => g * o.seriesPerGenerator + i),
      eventsPerRequest: o.eventsPerRequest, eventsPerSec: o.eventsPerSec / o.generators, durationMs: o.durationMs,
      idPrefix: `${o.name}-${o.seed}-g${g}`, ledger, endpoint,
    })));
    let reownedMs = -1;
    const chaos = async () => {
      if (o.natsOutage !== undefined) {
        const n = o.natsOutage;
        await Bun.sleep(n.atMs);
        await n.kill();
        say(`nats-server killed at ${(n.atMs / 1000).toFixed(1)} s`);
        await Bun.sleep(n.downMs);
        await n.restart();
        say(`nats-server back ${(n.downMs / 1000).toFixed(1)} s later`);
        return;
      }
      if (o.killAtMs === null) return;
      await Bun.sleep(o.killAtMs);
      await victim.kill9();
      const killedAt = performance.now();
      say(`kill -9 of n1 at ${(o.killAtMs / 1000).toFixed(1)} s`);
      await until(async () => (await owned()).reduce((a, b) => a + b, 0) === o.partitions, 30_000, "the survivors owning every partition");
      reownedMs = performance.now() - killedAt;
      say(`every partition owned again ${reownedMs.toFixed(0)} ms after the kill (lease ${o.leaseMs} ms)`);
      if (o.restartAfterMs !== null) {
        await Bun.sleep(Math.max(0, o.restartAfterMs - reownedMs));
        say(`n1 back in ${(await victim.restart()).toFixed(0)} ms`);
      }
    };
    await chaos();
    await stats;
    const refused = ledger.attemptsRefused;
    say(`traffic done, ${ledger.acked.length} events acknowledged`);
    if (o.killAtMs === null || o.restartAfterMs !== null) {
      await until(async () => {
        const n = await owned();
        return n.reduce((a, b) => a + b, 0) === o.partitions && n.every((x) => x > 0);
      }, 30_000, "every process owning its share again");
    }
    const expected = recount(ledger.acked, specs);
    let maxEnd = 0;
    for (const w of expected.values()) maxEnd = Math.max(maxEnd, w.end);
    const series = Array.from({ length: o.generators * o.seriesPerGenerator }, (_, k) => ledgerSeries(k).key);
    const reader = procs[0]; // never killed: answers for every series, the others' through WEIR_OUT
    const got = await awaitWindows({ url: () => reader.endpoint(), series, specs, expected, deadlineMs: Math.max(Date.now(), maxEnd + o.latenessMs) + (o.tailSlackMs ?? tailSlackMsDefault) });
    const metrics = await Promise.all(procs.map((p) => p.scrape()));
    // Where late events happened (each process' dead letters of reason late), for a report that fails.
    const lateLines = await Promise.all(procs.map(async (p, i) => {
      if (!p.alive) return `n${i}: down`;
      const dead = ((await (await fetch(`${p.url}/api/v1/deadletters?limit=200`)).json()) as { deadletters: Array<{ ts: number; reason: string; event: { series?: string; ts?: number } }> }).deadletters;
      const late = dead.filter((d) => d.reason === "late");
      return `n${i}: late ${late.length} ${late.slice(0, 6).map((d) => `${JSON.stringify(d.event)}@${d.ts}`).join(" ")}`;
    }).map((x) => x.catch((e: Error) => `? ${e.message}`)));
    const late = metrics.reduce((n, m) => n + (m?.get("weir_events_late_total") ?? 0), 0);
    const pick = (m: Map<string, number> | null, k: string) => m?.get(k) ?? -1;
    say(`per process (ingested, copied, owned, takeovers, lost, splits acked): ${metrics.map((m) => [pick(m, "weir_events_ingested_total"), pick(m, "weir_cluster_results_copied_total"), pick(m, "weir_cluster_partitions_owned"), pick(m, "weir_cluster_takeovers_total"), pick(m, "weir_cluster_lost_total"), pick(m, 'weir_nats_messages_total{outcome="acked"}')].join("/")).join("  ")}`);
    const report = compare(expected, got.rows, specs, { inDoubtUnacked: ledger.inDoubtUnacked(), acknowledged: ledger.acked.length, lateEvents: late });
    say(`\n${formatReport(report)}`);
    return {
      report, windowsComplete: got.complete, ownedAtStart, ownedAtEnd: await owned(),
      takeovers: metrics.map((m) => m?.get("weir_cluster_takeovers_total") ?? 0),
      lastTakeoverSeconds: metrics.map((m) => m?.get("weir_cluster_last_takeover_seconds") ?? 0),
      reownedMs, refused, logTail: `${lateLines.join("\n")}\n${procs.map((p, i) => `--- n${i} ---\n${p.logTail(40)}`).join("\n")}`,
    };
  } finally {
    await Promise.all(procs.map((p) => p.close("scenario over")));
  }
}

async function until(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(waitStepMs);
  }
}
