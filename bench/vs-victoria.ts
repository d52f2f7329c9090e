/**
 * weir beside VictoriaMetrics on the same events: 1,000,000 events over
 * 1,000 series, event times spanning the 120 s before the run, sent by 4
 * concurrent senders in bodies of 5,000 (bench/fixtures/vs-bodies.ts, its
 * own process): to weir as JSON on POST /api/v1/events, to VictoriaMetrics
 * (Debian's package; bench/fixtures/victoria-process.ts) as InfluxDB line
 * protocol on POST /write?precision=ms. Each run has a fresh server and data
 * directory; the order alternates (weir first in even rounds, VictoriaMetrics
 * first in odd ones).
 *
 * Per run:
 * - accepted events/s: first POST → last 2xx (202 from weir, 204 from VictoriaMetrics);
 * - events per server CPU-second: utime + stime of the server process, read
 *   by the sender just before its first POST and just after its last 2xx;
 *   and the same through "visible" (below), which also holds the work each
 *   server does after its answer (weir's partition workers, VictoriaMetrics'
 *   in-memory buffer flush) and the polls' own cost;
 * - peak RSS of the server (VmRSS every 100 ms, from ready to visible);
 * - visible: first POST → the first poll, every 100 ms after the sender has
 *   finished, at which the server's own read API shows every event. weir:
 *   weir_events_ingested_total = 1,000,000 and weir_queue_depth = 0 (the
 *   partition workers have taken every event off their rings) in /metrics,
 *   and GET /api/v1/series lists the 1,000 series each with its newest event
 *   time as latest. VictoriaMetrics: sum(count_over_time(load_vs_value[1h]))
 *   = 1,000,000 and 1,000 series in /api/v1/query with nocache=1 (without
 *   it an instant query near now is moved back by -search.latencyOffset,
 *   30 s, and sees none of these events); its rows become searchable when
 *   its in-memory buffer is flushed, about every second.
 *   /internal/force_flush is not used.
 * - visible to a repeated query: VictoriaMetrics (1.79) caches which series
 *   a tag filter matches, so a query asked before new series reach its index
 *   keeps answering without them for about 10 s more, nocache=1 or not. So
 *   each poll above asks a filter it has not asked before
 *   (load_vs_value{device!="poll<n>"}, every series), which no earlier poll
 *   can have cached: the moment a new reader sees everything. Beside it the
 *   same query is asked every poll, as a dashboard refreshing from the end
 *   of the load would; for weir the two are one poll.
 *
 *   bun bench/vs-victoria.ts                                   (3 rounds, 6 runs: about 40 s)
 *   VS_VICTORIA_ROUNDS=5 WEIR_DIR=/work/baseline bun bench/vs-victoria.ts
 *
 * Needs /usr/bin/victoria-metrics (apt-get install -y victoria-metrics) or
 * VICTORIA_METRICS_BIN. Prints every run, then the medians and the ratios
 * weir / VictoriaMetrics, then one JSON line.
 */
import { loadavg } from "node:os";
import { join } from "node:path";
import { startVictoriaProcess, victoriaBinary, VictoriaMissingError } from "./fixtures/victoria-process.ts";
import { quantile, rssBytesOf, runFixture, startWeirProcess, weirDir, cpuSecondsOf, type WeirProcess } from "./fixtures/weir-process.ts";
import { eventTsOf } from "./fixtures/ordered-events.ts";

const events = 1_000_000;
const series = 1_000;
const spanMs = 120_000; // event time covered by the run, ending at about its start
const bodyEvents = 5_000;
const senders = 4;
const sendSecondsMax = 120; // the sender starts no request after this
const rssSampleMs = 100;
const visiblePollMs = 100;
const visibleWaitMsMax = 60_000; // after the sender has finished; weir and VictoriaMetrics both need a few seconds at most
const seriesListMax = 10_000; // weir's limits.seriesListMax
const rounds = Number(process.env.VS_VICTORIA_ROUNDS ?? 3);
const systems = ["weir", "victoria-metrics"] as const;
type SystemName = (typeof systems)[number];

interface Sent {
  accepted: number; rejected: number; refused429: number; refused503: number; otherStatus: number; connectionErrors: number; bodiesGivenUp: number;
  bodies: number; bodyBytes: number; firstPostAtMs: number; lastAckAtMs: number; seconds: number;
  serverCpuSeconds: number; serverCpuSecondsBefore: number; senderCpuSeconds: number;
}

/** A server under test: where to send, how far its read API has got, how to stop it. */
interface Target {
  pid: number;
  version: string;
  format: "json" | "influx";
  ingestUrl: string;
  /**
   * Events the read API shows so far (a lower bound); whether every one is visible to a query not asked
   * before (`fresh`, poll n asks its own) and to the query every poll repeats (`repeated`).
   */
  progress(t0: number, poll: number): Promise<{ seen: number; fresh: boolean; repeated: boolean }>;
  stop(): Promise<void>;
}

/** The newest event time of series d<k>: its last event is events − series + k. */
function newestTsOf(k: number, t0: number): number {
  return eventTsOf(events - series + k, t0, spanMs, events);
}

/** weir: every event counted, the rings drained, every series listed with its newest event as latest. */
async function weirProgress(weir: WeirProcess, t0: number) {
  const m = await weir.metrics();
  const ingested = m.weir_events_ingested_total ?? 0;
  if (ingested < events || (m.weir_queue_depth ?? 0) > 0) return { seen: ingested, fresh: false, repeated: false };
  const res = await fetch(`${weir.url}/api/v1/series?match=load.vs*&limit=${seriesListMax}`);
  const listed = (await res.json() as { series: Array<{ tags: { device: string }; last: { ts: number } | null }> }).series;
  const newest = listed.filter((s) => s.last !== null && s.last.ts === newestTsOf(Number(s.tags.device.slice(1)), t0)).length;
  const done = listed.length === series && newest === series;
  return { seen: ingested, fresh: done, repeated: done };
}

/** The checkout and its commit, marked when src/ differs from it (another session may be editing the checkout). */
function weirVersion(): string {
  const git = (...args: string[]) => Bun.spawnSync(["git", "-C", weirDir, ...args], { stdout: "pipe", stderr: "ignore" });
  const rev = git("rev-parse", "--short", "HEAD");
  if (!rev.success) return `${weirDir} (not a git checkout)`;
  const dirty = git("status", "--porcelain", "--", "src").stdout.toString().trim() !== "";
  return `${weirDir} @ ${rev.stdout.toString().trim()}${dirty ? " + uncommitted changes in src/" : ""}`;
}

async function startWeirTarget(): Promise<Target> {
  const weir = await startWeirProcess();
  return {
    pid: weir.pid, version: weirVersion(), format: "json",
    ingestUrl: `${weir.url}/api/v1/events`, progress: (t0) => weirProgress(weir, t0), stop: weir.stop,
  };
}

/** An instant PromQL query's single value (the result cache off), NaN when the result is empty. */
async function queryScalar(url: string, promql: string): Promise<number> {
  const res = await fetch(`${url}/api/v1/query?nocache=1&query=${encodeURIComponent(promql)}`);
  const body = await res.json() as { data: { result: Array<{ value: [number, string] }> } };
  return body.data.result.length === 0 ? NaN : Number(body.data.result[0].value[1]);
}

async function startVictoriaTarget(): Promise<Target> {
  const vm = await startVictoriaProcess();
  return {
    pid: vm.pid, version: vm.version, format: "influx", ingestUrl: `${vm.url}/write?precision=ms`, stop: vm.stop,
    async progress(_t0, poll) {
      // Samples, then series: under a filter no earlier poll asked, then under the one every poll asks.
      const complete = async (selector: string) => {
        const samples = await queryScalar(vm.url, `sum(count_over_time(${selector}[1h]))`);
        const done = samples === events && (await queryScalar(vm.url, `count(count_over_time(${selector}[1h]))`)) === series;
        return { samples: Number.isNaN(samples) ? 0 : samples, done };
      };
      const fresh = await complete(`load_vs_value{device!="poll${poll}"}`);
      const repeated = await complete("load_vs_value");
      return { seen: fresh.samples, fresh: fresh.done, repeated: repeated.done };
    },
  };
}

/** Peak VmRSS of a process, sampled every rssSampleMs until stopped. */
function startRssSampler(pid: number) {
  let peakBytes = 0;
  const timer = setInterval(async () => {
    const rss = await rssBytesOf(pid);
    if (rss > peakBytes) peakBytes = rss;
  }, rssSampleMs);
  return { peakBytes: () => peakBytes, stop: () => clearInterval(timer) };
}

/**
 * Polls the read API until both kinds of query show every event: the epoch ms of each first complete
 * answer (NaN past visibleWaitMsMax), and the server's CPU seconds and peak RSS when the fresh one came.
 */
async function waitVisible(target: Target, t0: number, peakRssBytes: () => number) {
  const deadline = performance.now() + visibleWaitMsMax;
  let seen = 0;
  let atMs = NaN;
  let repeatedAtMs = NaN;
  let cpuAtVisible = NaN;
  let peakRssBytesAtVisible = NaN;
  for (let poll = 0; performance.now() < deadline && (Number.isNaN(atMs) || Number.isNaN(repeatedAtMs)); poll++) {
    try {
      const p = await target.progress(t0, poll);
      seen = Math.max(seen, p.seen);
      if (p.fresh && Number.isNaN(atMs)) {
        atMs = Date.now();
        cpuAtVisible = (await cpuSecondsOf(target.pid)).process;
        peakRssBytesAtVisible = peakRssBytes();
      }
      if (p.repeated && Number.isNaN(repeatedAtMs)) repeatedAtMs = Date.now();
    } catch { /* a slow or refused read: the next poll counts */ }
    await Bun.sleep(visiblePollMs);
  }
  return { atMs, repeatedAtMs, cpuAtVisible, peakRssBytesAtVisible, seen };
}

async function runOnce(system: SystemName, round: number, slot: number) {
  const loadAvg1m = +loadavg()[0].toFixed(2); // the machine is shared: how busy it was as the run began
  const target = system === "weir" ? await startWeirTarget() : await startVictoriaTarget();
  const idleRssBytes = await rssBytesOf(target.pid);
  const rss = startRssSampler(target.pid);
  try {
    const t0 = Date.now() - spanMs;
    const sent = await runFixture<Sent>([join(import.meta.dir, "fixtures/vs-bodies.ts"), target.ingestUrl, target.format, String(events), String(series),
      String(spanMs), String(t0), String(bodyEvents), String(senders), String(sendSecondsMax), String(target.pid)]).result;
    const visible = await waitVisible(target, t0, rss.peakBytes);
    const cpuAtVisible = visible.cpuAtVisible - sent.serverCpuSecondsBefore;
    const visibleSeconds = (visible.atMs - sent.firstPostAtMs) / 1000;
    const repeatedSeconds = (visible.repeatedAtMs - sent.firstPostAtMs) / 1000;
    return {
      round, slot, system, version: target.version, loadAvg1m,
      accepted: sent.accepted, acceptedPerSec: Math.round(sent.accepted / sent.seconds), sendSeconds: +sent.seconds.toFixed(2),
      serverCpuS: +sent.serverCpuSeconds.toFixed(2), eventsPerCpuS: Math.round(events / sent.serverCpuSeconds),
      serverCpuToVisibleS: +cpuAtVisible.toFixed(2), eventsPerCpuSToVisible: Math.round(events / cpuAtVisible),
      peakRssMiB: Math.round(visible.peakRssBytesAtVisible / 2 ** 20), idleRssMiB: Math.round(idleRssBytes / 2 ** 20),
      visibleS: +visibleSeconds.toFixed(2), visiblePerSec: Math.round(events / visibleSeconds), seenAtEnd: visible.seen,
      visibleRepeatedS: +repeatedSeconds.toFixed(2), visibleRepeatedPerSec: Math.round(events / repeatedSeconds),
      senderCpuS: +sent.senderCpuSeconds.toFixed(2), bodyMiB: +(sent.bodyBytes / 2 ** 20).toFixed(1),
      refusals: sent.refused429 + sent.refused503, otherStatus: sent.otherStatus, rejected: sent.rejected, bodiesGivenUp: sent.bodiesGivenUp,
    };
  } finally {
    rss.stop();
    await target.stop();
  }
}

type Run = Awaited<ReturnType<typeof runOnce>>;
const figures = [
  ["acceptedPerSec", "accepted events/s (first POST → last 2xx)"],
  ["eventsPerCpuS", "events per server CPU-second (during the load)"],
  ["peakRssMiB", "peak server RSS, MiB (ready → visible)"],
  ["visiblePerSec", "events/s until all visible in the read API"],
  ["eventsPerCpuSToVisible", "events per server CPU-second (load → visible)"],
  ["visibleRepeatedPerSec", "events/s until all visible to a repeated query"],
  ["sendSeconds", "send seconds"],
  ["visibleS", "seconds until all visible"],
  ["visibleRepeatedS", "seconds until all visible to a repeated query"],
  ["senderCpuS", "sender process CPU-seconds"],
] as const;

/** Median of each figure per system, and weir's over VictoriaMetrics'. */
function summarize(runs: Run[]) {
  const median = (system: SystemName, key: (typeof figures)[number][0]) =>
    quantile(runs.filter((r) => r.system === system).map((r) => r[key]).sort((a, b) => a - b), 0.5);
  return figures.map(([key, label]) => {
    const weir = median("weir", key);
    const vm = median("victoria-metrics", key);
    return { key, label, weir, victoriaMetrics: vm, ratio: +(weir / vm).toFixed(2) };
  });
}

function printTables(runs: Run[], summary: ReturnType<typeof summarize>): void {
  const cols = ["round", "slot", "system", "accepted", "acceptedPerSec", "sendSeconds", "serverCpuS", "eventsPerCpuS", "serverCpuToVisibleS", "eventsPerCpuSToVisible",
    "peakRssMiB", "idleRssMiB", "visibleS", "visiblePerSec", "visibleRepeatedS", "senderCpuS", "refusals", "otherStatus", "loadAvg1m"] as const;
  const widths = cols.map((c) => Math.max(c.length, ...runs.map((r) => String(r[c]).length)));
  console.log(cols.map((c, i) => c.padStart(widths[i])).join("  "));
  for (const r of runs) console.log(cols.map((c, i) => String(r[c]).padStart(widths[i])).join("  "));
  console.log("");
  const w = Math.max(...summary.map((s) => s.label.length));
  console.log(`${"median of the runs".padEnd(w)}  ${"weir".padStart(10)}  ${"VictoriaM.".padStart(10)}  weir/VM`);
  for (const s of summary) console.log(`${s.label.padEnd(w)}  ${String(s.weir).padStart(10)}  ${String(s.victoriaMetrics).padStart(10)}  ${s.ratio}`);
}

if (import.meta.main) {
  // Fail now, naming the package to install, rather than after the first weir run.
  try {
    victoriaBinary();
  } catch (e) {
    if (!(e instanceof VictoriaMissingError)) throw e;
    console.error(e.message);
    process.exit(1);
  }
  const loadAvgAtStart = loadavg().map((l) => +l.toFixed(2));
  const runs: Run[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? systems : [...systems].reverse();
    for (const [slot, system] of order.entries()) {
      const run = await runOnce(system, round, slot);
      runs.push(run);
      console.error(`round ${round} ${system}: ${run.acceptedPerSec} accepted/s, ${run.eventsPerCpuS} events/CPU-s, peak RSS ${run.peakRssMiB} MiB, visible after ${run.visibleS} s`);
    }
  }
  const summary = summarize(runs);
  printTables(runs, summary);
  const versions = Object.fromEntries(systems.map((s) => [s, runs.find((r) => r.system === s)?.version]));
  console.log(JSON.stringify({
    name: "vs-victoria: 1,000,000 events, 1,000 series, 4 senders, bodies of 5,000 (weir JSON, VictoriaMetrics line protocol)",
    weirDir, versions, rounds, loadAvg: { start: loadAvgAtStart, end: loadavg().map((l) => +l.toFixed(2)) }, runs, summary,
  }));
}
