/**
 * The 100,000-series pass: a producer that runs 30 s behind the clock sends
 * one event to each of 100,000 series (sensor.delayed{device="d<k>"}), five
 * passes one second apart, in 5,000-event JSON bodies, 4 requests in flight
 * (bench/fixtures/delayed-passes.ts, its own process). Meanwhile a probe
 * (bench/fixtures/latency-probe.ts, another process) POSTs one real-time
 * event every 20 ms and times each request, and this process samples
 * weir's RSS every 100 ms. After the passes it keeps going until the
 * delayed series' windows have closed by the quiet rule: until
 * weir_windows_emitted_total has not moved (but for the probe's own few
 * windows) for `stableMs` once `quietMinMs` have passed since the last
 * pass, or `quietCapMs` at most. Event times follow the wall clock of each
 * pass, so a pass that weir slows down also shifts the next pass's times.
 *
 * Reported: events accepted, late, windows emitted; probe ingest latency
 * p50 / p99 / max and the longest gap between two probe answers (the
 * stall), and whether the worst stall began during the passes or during the
 * quiet close after them; peak RSS; refusals (429/503) of both processes.
 *
 *   bun bench/mass-close.ts                      (the repo it lives in)
 *   WEIR_DIR=/work/baseline bun bench/mass-close.ts   (another checkout, same load)
 *
 * One run: about 1.5 minutes when weir keeps up; the passes are cut at
 * 120 s and the wait after them at 120 s. Prints a table, then one JSON
 * line (times in seconds from the first pass's start).
 */
import { loadavg } from "node:os";
import { join } from "node:path";
import { cpuSecondsOf, quantile, rssBytesOf, runFixture, startWeirProcess, weirDir, type WeirProcess } from "./fixtures/weir-process.ts";

const here = import.meta.dir;
const delayedSeries = 100_000;
const passes = 5;
const passIntervalMs = 1_000;
const producerDelayMs = 30_000; // the producer's queue: every event is this old when sent
const bodyEvents = 5_000;
const bodiesInFlight = 4;
const passesSecondsMax = 120; // the load process stops starting requests after this
const probeIntervalMs = 20;
const rssSampleMs = 100;
const metricsSampleMs = 1_000;
const warmupMs = 2_000; // probe latencies before the first pass: the quiet machine's figure
// With the delay-aware rule, a 10 s window closes at its end + 30 s + lateness, i.e. up to ~42 s after the
// last pass, and each 60s/10s window 10 s after the one before: so wait at least this long, and call the
// close finished only after no window for longer than one 10 s pane step.
const quietMinMs = Number(process.env.MASS_CLOSE_QUIET_MIN_MS ?? 40_000);
const stableMs = Number(process.env.MASS_CLOSE_STABLE_MS ?? 12_000);
const quietCapMs = 120_000; // hard cap after the last pass
// The probe's series closes 2 windows every 10 s (10s, 60s/10s) and a 1m rollup a minute; the delayed
// series close theirs by the thousand. Fewer than this many in stableMs is the probe alone.
const probeWindowsSlack = 20;
// weir's default series bound is exactly 100,000; the probe's series and a margin must fit beside the delayed ones.
const seriesMax = delayedSeries + 1_000;
const probeSecondsMax = (warmupMs / 1000) + passesSecondsMax + quietCapMs / 1000 + 30;
const topStalls = 5;
const timelineRowsMax = 60; // metrics samples that changed, in the JSON line

interface Passes {
  passes: Array<{ startMs: number; endMs: number; ts: number }>;
  accepted: number; rejected: number; refused429: number; refused503: number; otherStatus: number; connectionErrors: number; bodiesGivenUp: number;
  seconds: number; ackMsP50: number; ackMsP99: number; ackMsMax: number;
}
interface Probe { skipped: number; samples: Array<[number, number, number]> }
interface CpuSample { atMs: number; process: number; mainThread: number }
interface MetricsSample { atMs: number; windows: number; late: number; ingested: number }

/** Samples RSS and CPU every rssSampleMs and /metrics every metricsSampleMs until stopped. */
function startSamplers(weir: WeirProcess) {
  let peakRssBytes = 0;
  let peakRssAtMs = 0;
  const cpu: CpuSample[] = [];
  const rssTimer = setInterval(async () => {
    const atMs = Date.now();
    const rss = await rssBytesOf(weir.pid);
    if (rss > peakRssBytes) {
      peakRssBytes = rss;
      peakRssAtMs = atMs;
    }
    const c = await cpuSecondsOf(weir.pid);
    if (!Number.isNaN(c.process)) cpu.push({ atMs, ...c });
  }, rssSampleMs);
  const metrics: MetricsSample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const m = await weir.metrics();
        metrics.push({ atMs: Date.now(), windows: m.weir_windows_emitted_total ?? 0, late: m.weir_events_late_total ?? 0, ingested: m.weir_events_ingested_total ?? 0 });
      } catch { /* a metrics read that timed out: the next one counts */ }
      await Bun.sleep(metricsSampleMs);
    }
  })();
  return {
    metrics, cpu,
    peak: () => ({ peakRssBytes, peakRssAtMs }),
    async stop() {
      clearInterval(rssTimer);
      running = false;
      await loop;
    },
  };
}

/**
 * Waits until the delayed series' windows stop closing (after quietMinMs past the last pass) or quietCapMs pass.
 * The probe's own series closes a few windows every 10 s, so "stopped" means at most probeWindowsSlack in stableMs.
 */
async function waitForQuietClose(metrics: MetricsSample[], lastPassEndMs: number): Promise<boolean> {
  for (;;) {
    await Bun.sleep(metricsSampleMs);
    const now = Date.now();
    if (now - lastPassEndMs >= quietCapMs) return false;
    if (now - lastPassEndMs < quietMinMs || metrics.length === 0) continue;
    const then = metrics.findLast((s) => s.atMs <= now - stableMs);
    if (then !== undefined && metrics[metrics.length - 1].windows - then.windows <= probeWindowsSlack) return true;
  }
}

type PassSpan = { startMs: number; endMs: number };

/** Where a moment falls: before, in pass k, between passes, or in the quiet close after them. */
function phaseOf(atMs: number, spans: PassSpan[]): { phase: string; detail: string } {
  const last = spans[spans.length - 1];
  if (atMs < spans[0].startMs) return { phase: "before the passes", detail: "before the passes" };
  if (atMs > last.endMs) return { phase: "quiet close", detail: "after the last pass" };
  const k = spans.findIndex((p) => atMs >= p.startMs && atMs <= p.endMs);
  return { phase: "during the passes", detail: k >= 0 ? `in pass ${k + 1}` : "between passes" };
}

/** The probe's figures, and where its worst requests fall against the passes (times in s from the first pass's start). */
function analyseProbe(p: Probe, spans: PassSpan[]) {
  const t0 = spans[0].startMs;
  const sec = (ms: number) => +((ms - t0) / 1000).toFixed(2);
  const latencies = Float64Array.from(p.samples, (s) => s[1]).sort();
  const worst = [...p.samples].sort((a, b) => b[1] - a[1]).slice(0, topStalls).map(([sentMs, ms, status]) => ({
    ms: Math.round(ms), status, ...phaseOf(sentMs, spans), sentS: sec(sentMs), answeredS: sec(sentMs + ms),
  }));
  // Longest time with no probe answer at all, while probes went out every probeIntervalMs.
  const answers = p.samples.filter((s) => s[2] !== 0).map((s) => s[0] + s[1]).sort((a, b) => a - b);
  let gapMs = 0;
  let gapEndMs = NaN;
  for (let i = 1; i < answers.length; i++) {
    if (answers[i] - answers[i - 1] > gapMs) {
      gapMs = answers[i] - answers[i - 1];
      gapEndMs = answers[i];
    }
  }
  const before = p.samples.filter((s) => s[0] < t0).map((s) => s[1]).sort((a, b) => a - b);
  const byStatus: Record<string, number> = {};
  for (const s of p.samples) byStatus[s[2]] = (byStatus[s[2]] ?? 0) + 1;
  return {
    requests: p.samples.length, skipped: p.skipped, byStatus,
    p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99), maxMs: latencies.at(-1) ?? NaN,
    idleP99Ms: quantile(before, 0.99),
    longestGapMs: Math.round(gapMs), longestGapFromS: sec(gapEndMs - gapMs), longestGapToS: sec(gapEndMs),
    worstPhase: worst[0]?.phase ?? "none", worst,
  };
}

/** CPU seconds per wall second of weir (all threads) and of its main thread alone, between two moments. */
function cpuShareOf(cpu: CpuSample[], fromMs: number, toMs: number): { process: number; mainThread: number } {
  const a = cpu.findLast((c) => c.atMs <= fromMs) ?? cpu[0];
  const b = cpu.find((c) => c.atMs >= toMs) ?? cpu[cpu.length - 1];
  if (a === undefined || b === undefined || b.atMs <= a.atMs) return { process: NaN, mainThread: NaN };
  const wallS = (b.atMs - a.atMs) / 1000;
  return { process: +((b.process - a.process) / wallS).toFixed(2), mainThread: +((b.mainThread - a.mainThread) / wallS).toFixed(2) };
}

/** The metrics samples at which windows or late events moved (s from the first pass's start), at most timelineRowsMax. */
function timelineOf(samples: MetricsSample[], t0: number) {
  const rows = samples.filter((s, i, a) => i === 0 || a[i - 1].windows !== s.windows || a[i - 1].late !== s.late);
  return rows.slice(0, timelineRowsMax).map((s) => ({ s: +((s.atMs - t0) / 1000).toFixed(1), windows: s.windows, late: s.late, ingested: s.ingested }));
}

export async function benchMassClose() {
  const loadAvgAtStart = loadavg()[0]; // the machine is shared: its 1-minute load says how noisy the run was
  const weir = await startWeirProcess({ WEIR_MAX_SERIES: String(seriesMax) });
  const samplers = startSamplers(weir);
  const ingestUrl = `${weir.url}/api/v1/events`;
  const probe = runFixture<Probe>([join(here, "fixtures/latency-probe.ts"), ingestUrl, String(probeIntervalMs), String(probeSecondsMax)]);
  try {
    await Bun.sleep(warmupMs);
    const sent = await runFixture<Passes>([join(here, "fixtures/delayed-passes.ts"), ingestUrl, String(delayedSeries), String(passes),
      String(passIntervalMs), String(producerDelayMs), String(bodyEvents), String(bodiesInFlight), String(passesSecondsMax)]).result;
    const spans = sent.passes;
    const t0 = spans[0].startMs;
    const lastPassEndMs = spans[spans.length - 1].endMs;
    const settled = await waitForQuietClose(samplers.metrics, lastPassEndMs);
    probe.stopInput();
    const probed = analyseProbe(await probe.result, spans);
    const m = await weir.metrics();
    await samplers.stop();
    const sec = (ms: number) => +((ms - t0) / 1000).toFixed(1);
    const windowsAtLastPass = samplers.metrics.findLast((s) => s.atMs <= lastPassEndMs)?.windows ?? 0;
    const lastChange = samplers.metrics.findLast((s, i, a) => i > 0 && a[i - 1].windows - s.windows < -probeWindowsSlack);
    const gapFromMs = t0 + probed.longestGapFromS * 1000;
    const gapToMs = t0 + probed.longestGapToS * 1000;
    const windowsBeforeGap = samplers.metrics.findLast((s) => s.atMs <= gapFromMs)?.windows ?? 0;
    const windowsAfterGap = samplers.metrics.find((s) => s.atMs >= gapToMs)?.windows ?? NaN;
    const gapCpu = cpuShareOf(samplers.cpu, gapFromMs, gapToMs);
    const { peakRssBytes, peakRssAtMs } = samplers.peak();
    return {
      name: "mass-close: 100,000 series 30 s behind, 5 passes 1 s apart, probe every 20 ms",
      weirDir, settled, loadAvg1m: [+loadAvgAtStart.toFixed(2), +loadavg()[0].toFixed(2)], timesIn: "s from the first pass's start",
      passesDone: spans.length, passes: spans.map((p) => [sec(p.startMs), sec(p.endMs)]), lastPassEndS: sec(lastPassEndMs),
      accepted: m.weir_events_ingested_total, loadAccepted: sent.accepted, loadRejected: sent.rejected,
      late: m.weir_events_late_total, windowsEmitted: m.weir_windows_emitted_total, windowsAtLastPass,
      windowsLastCloseS: lastChange ? sec(lastChange.atMs) : NaN,
      refusals: { load429: sent.refused429, load503: sent.refused503, loadOther: sent.otherStatus, loadConnErrors: sent.connectionErrors, loadBodiesGivenUp: sent.bodiesGivenUp,
        probe429: probed.byStatus["429"] ?? 0, probe503: probed.byStatus["503"] ?? 0, probeNoAnswer: probed.byStatus["0"] ?? 0 },
      loadAckMs: { p50: sent.ackMsP50, p99: sent.ackMsP99, max: sent.ackMsMax },
      probe: probed,
      // Between the last metrics read before the longest gap and the first after it: what closed around the stall.
      windowsAroundLongestGap: windowsAfterGap - windowsBeforeGap,
      // CPU seconds per second during the longest gap: 1.0 on the main thread means its event loop was busy throughout.
      longestGapCpu: gapCpu,
      peakRssMiB: +(peakRssBytes / 2 ** 20).toFixed(0), peakRssAtS: sec(peakRssAtMs), ...phaseOf(peakRssAtMs, spans),
      timeline: timelineOf(samplers.metrics, t0),
    };
  } finally {
    if (probe.proc.exitCode === null) {
      // Only after a failure (on the normal path it has exited): its result no longer matters.
      probe.result.catch(() => {});
      probe.proc.kill("SIGTERM");
    }
    await samplers.stop();
    await weir.stop();
  }
}

function printTable(r: Awaited<ReturnType<typeof benchMassClose>>): void {
  const rows: Array<[string, string]> = [
    ["weir checkout (machine load avg 1 min: start, end)", `${r.weirDir} (${r.loadAvg1m.join(", ")})`],
    ["passes [start, end] (s from the first pass)", `${r.passes.map(([a, b]) => `[${a}, ${b}]`).join(" ")}${r.passesDone < passes ? ` (only ${r.passesDone} of ${passes} within ${passesSecondsMax} s)` : ""}`],
    ["events accepted (weir_events_ingested_total)", `${r.accepted} (the load saw ${r.loadAccepted} accepted, ${r.loadRejected} rejected; the rest are the probe's)`],
    ["weir_events_late_total", String(r.late)],
    ["windows emitted: at the last pass → end", `${r.windowsAtLastPass} → ${r.windowsEmitted} (the probe's included), last close at ${r.windowsLastCloseS} s${r.settled ? "" : " (hard cap reached)"}`],
    ["probe ingest latency p50 / p99 / max (ms)", `${r.probe.p50Ms.toFixed(1)} / ${r.probe.p99Ms.toFixed(1)} / ${r.probe.maxMs.toFixed(0)} (before the passes: p99 ${r.probe.idleP99Ms.toFixed(1)})`],
    ["longest gap between probe answers (ms)", `${r.probe.longestGapMs}, from ${r.probe.longestGapFromS} s to ${r.probe.longestGapToS} s; ${r.windowsAroundLongestGap} windows emitted around it; weir CPU meanwhile ${r.longestGapCpu.process} s/s, main thread ${r.longestGapCpu.mainThread} s/s`],
    ["worst stall (longest probe request)", r.probe.worst.length === 0 ? "none" : `${r.probe.worst[0].ms} ms, ${r.probe.worst[0].phase} (sent at ${r.probe.worst[0].sentS} s, ${r.probe.worst[0].detail})`],
    ["probe requests (slots skipped)", `${r.probe.requests} (${r.probe.skipped})`],
    ["refusals: load 429/503; probe 429/503/no answer", `${r.refusals.load429}/${r.refusals.load503}; ${r.refusals.probe429}/${r.refusals.probe503}/${r.refusals.probeNoAnswer}`],
    ["load acknowledgements p50 / p99 / max (ms)", `${r.loadAckMs.p50.toFixed(0)} / ${r.loadAckMs.p99.toFixed(0)} / ${r.loadAckMs.max.toFixed(0)}`],
    ["peak RSS", `${r.peakRssMiB} MiB at ${r.peakRssAtS} s (${r.phase}, ${r.detail})`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  console.log("worst probe requests [sent → answered, s]:", r.probe.worst.map((s) => `${s.ms} ms [${s.sentS} → ${s.answeredS}] ${s.detail}`).join("; "));
  console.log("windows / late over time [s: windows, late]:", r.timeline.map((t) => `${t.s}: ${t.windows}, ${t.late}`).join("; "));
}

if (import.meta.main) {
  const r = await benchMassClose();
  printTable(r);
  console.log(JSON.stringify(r));
}
