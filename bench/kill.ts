/**
 * Durability under repeated kill -9, the big version of
 * test/durability-kill.test.ts: a few sequential generators (each with its
 * own series, so every series stays in order) send thousands of events per
 * second over HTTP to weir running as a child process; weir is SIGKILLed
 * every few seconds and restarted on the same data directory; at the end
 * every window is recomputed from the acknowledged events and compared with
 * the API. Prints the figures for BENCHMARKS.md; exits 1 if an acknowledged
 * event was lost or doubled or a window differs (a correctness failure, not
 * a timing).
 *
 *   bun bench/kill.ts                                  # ~3,000 events/s for 75 s, a kill every ~5 s
 *   bun bench/kill.ts --rate=5000 --seconds=90 --kill-every=4 --seed=7
 *   KILL_BENCH_RATE=2000 bun bench/kill.ts --json=/tmp/kill.json
 *
 * Options (argv `--name=value`, or env KILL_BENCH_<NAME>): rate (events/s,
 * all generators), seconds (of traffic), generators, series (per generator),
 * batch (events per request), kill-every (seconds, ± 30 %), lateness
 * (ms), seed, json (also write the result there), keep (keep the data dir),
 * baseline (default 1: first the same traffic without kills, the same-run
 * baseline; the ratio is acked events/s with kills over without).
 */
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { periodicKillTimes, runScenario, type ScenarioResult } from "../test/ledger/scenario.ts";

export interface KillBenchOptions {
  rate: number;
  seconds: number;
  generators: number;
  series: number;
  batch: number;
  killEvery: number;
  lateness: number;
  seed: number;
  json: string;
  keep: boolean;
  /** Also run the same traffic without kills first, as the same-run baseline. */
  baseline: boolean;
}

const defaults: KillBenchOptions = {
  rate: 3_000, seconds: 75, generators: 4, series: 8, batch: 100, killEvery: 5, lateness: 5_000, seed: 1, json: "", keep: false, baseline: true,
};
/** Bounds on what one invocation may ask for: its time, its kills and the harness's memory. */
const bounds = { rateMax: 50_000, secondsMax: 600, generatorsMax: 32, seriesMax: 1_000, killEveryMin: 1, killsMax: 300 };

export function parseOptions(argv: readonly string[], env: Record<string, string | undefined>): KillBenchOptions {
  const o: KillBenchOptions = { ...defaults };
  for (const key of Object.keys(defaults) as Array<keyof KillBenchOptions>) {
    const flag = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const fromArgv = argv.find((a) => a === `--${flag}` || a.startsWith(`--${flag}=`));
    const text = fromArgv !== undefined ? (fromArgv.includes("=") ? fromArgv.slice(fromArgv.indexOf("=") + 1) : "1")
      : env[`KILL_BENCH_${flag.replace(/-/g, "_").toUpperCase()}`];
    if (text === undefined) continue;
    if (typeof defaults[key] === "number") {
      const n = Number(text);
      if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag}: "${text}" is not a number ≥ 0`);
      (o[key] as number) = n;
    } else if (typeof defaults[key] === "boolean") (o[key] as boolean) = text === "1" || text === "true";
    else (o[key] as string) = text;
  }
  assert(o.rate > 0 && o.rate <= bounds.rateMax, `--rate within (0, ${bounds.rateMax}]`);
  assert(o.seconds >= 10 && o.seconds <= bounds.secondsMax, `--seconds within [10, ${bounds.secondsMax}]`);
  assert(o.generators >= 1 && o.generators <= bounds.generatorsMax && Number.isInteger(o.generators), `--generators within [1, ${bounds.generatorsMax}]`);
  assert(o.series >= 1 && o.series <= bounds.seriesMax && Number.isInteger(o.series), `--series within [1, ${bounds.seriesMax}]`);
  assert(o.killEvery >= bounds.killEveryMin, `--kill-every ≥ ${bounds.killEveryMin} s`);
  assert(Number.isInteger(o.batch) && o.batch >= 1, "--batch a whole number ≥ 1");
  return o;
}

export async function main(argv: readonly string[] = process.argv.slice(2), env: Record<string, string | undefined> = process.env): Promise<ScenarioResult> {
  const o = parseOptions(argv, env);
  const durationMs = o.seconds * 1000;
  const killAtMs = periodicKillTimes(o.seed, o.killEvery * 1000, durationMs);
  assert(killAtMs.length <= bounds.killsMax, `over ${bounds.killsMax} kills`);
  const scenario = (name: string, killAt: number[]) => {
    const dataDir = mkdtempSync(join(tmpdir(), `weir-bench-${name}-`));
    console.log(`${name}: ${o.rate} events/s for ${o.seconds} s from ${o.generators} generators × ${o.series} series, ${o.batch} events/request, ${killAt.length} kills planned, seed ${o.seed}, data ${dataDir}`);
    return runScenario({
      name, seed: o.seed, dataDir, generators: o.generators, seriesPerGenerator: o.series, eventsPerRequest: o.batch,
      eventsPerSec: o.rate, durationMs, killAtMs: killAt, finalTerm: false, specsText: "10s,60s/10s", latenessMs: o.lateness,
      progress: (line) => console.log(`  ${line}`),
    }).then((r) => {
      if ((r.report.ok && r.windowsComplete) && !o.keep) rmSync(dataDir, { recursive: true, force: true });
      else console.log(`data kept in ${dataDir}`);
      return r;
    });
  };
  const base = o.baseline ? await scenario("no-kill-baseline", []) : null;
  const t0 = performance.now();
  const r = await scenario("kill-bench", killAtMs);
  const wallS = (performance.now() - t0) / 1000;
  const rate = (x: ScenarioResult) => x.report.acknowledged / (x.streamMs / 1000);
  const baseline = base === null ? null : {
    eventsPerSec: rate(base), ok: base.report.ok && base.windowsComplete, rssMaxBytes: base.rssMaxBytes, ratio: rate(r) / rate(base),
  };
  console.log(summary(r, wallS));
  if (baseline) {
    console.log(`baseline           same traffic, no kills: ${baseline.eventsPerSec.toFixed(0)} events/s acked (${baseline.ok ? "PASS" : "FAIL"}), RSS max ${(baseline.rssMaxBytes / 2 ** 20).toFixed(1)} MiB; with kills / without = ${baseline.ratio.toFixed(2)}`);
  }
  if (o.json) writeFileSync(o.json, JSON.stringify({ at: new Date().toISOString(), options: o, machine: machine(), wallS, ...r, logTail: undefined, baseline }, null, 1));
  return r;
}

function summary(r: ScenarioResult, wallS: number): string {
  const x = r.report;
  const restarts = r.recoveryMs.slice(1).sort((a, b) => a - b);
  const pct = x.windowsTotal === 0 ? "—" : ((100 * x.windowsEqual) / x.windowsTotal).toFixed(2);
  const retried = r.generators.reduce((n, g) => n + g.retried, 0);
  return [
    "",
    `verdict            ${x.ok && r.windowsComplete ? "PASS" : "FAIL"}`,
    `events acked       ${x.acknowledged} in ${(r.streamMs / 1000).toFixed(1)} s (${(x.acknowledged / (r.streamMs / 1000)).toFixed(0)} events/s), ${r.requestsAcked} requests`,
    `kills              ${r.kills} SIGKILL, ${r.crashes.length} unplanned crashes`,
    `lost / duplicated  ${x.lost} / ${x.duplicated} events (10 s windows)`,
    `windows equal      ${x.windowsEqual}/${x.windowsTotal} (${pct} %); missing ${x.windowsMissing}, unexpected ${x.windowsUnexpected}, differing ${x.windowsDiffering}${r.windowsComplete ? "" : " (gave up waiting for some)"}`,
    `late events        ${x.lateEvents ?? "unknown"}`,
    `retries            ${r.attemptsUnanswered} unanswered attempts, ${r.attemptsRefused} refused (429/503), ${retried} requests resent; engine counted ${r.metrics.duplicate} duplicates`,
    `recovery           first start ${fmtMs(r.recoveryMs[0])}; restarts p50 ${fmtMs(quantile(restarts, 0.5))}, max ${fmtMs(restarts.at(-1))} (spawn → /ready 200, n = ${restarts.length})`,
    `weir RSS           max ${(r.rssMaxBytes / 2 ** 20).toFixed(1)} MiB (process_resident_memory_bytes, sampled each second)`,
    `windows waited     ${(r.windowsWaitedMs / 1000).toFixed(1)} s after the traffic; whole run ${wallS.toFixed(0)} s`,
    ...x.mismatches.slice(0, 5).map((m) => `  ${m.kind} ${m.series} ${m.window} ${m.start}: expected count ${m.expected?.count ?? "—"}, api ${m.actual?.count ?? "—"}${m.fields.length ? ` [${m.fields.join(",")}]` : ""}`),
    `machine            ${JSON.stringify(machine())}`,
  ].join("\n");
}

function quantile(sorted: number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]; // nearest rank
}

function fmtMs(ms: number | undefined): string {
  return ms === undefined ? "—" : `${ms.toFixed(0)} ms`;
}

function machine() {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), bun: Bun.version, platform: process.platform };
}

if (import.meta.main) {
  const r = await main();
  process.exitCode = r.report.ok && r.windowsComplete ? 0 : 1;
}
