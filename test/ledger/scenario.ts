/**
 * One durability run, shared by the test and `bench/kill.ts`: start weir as
 * a child process, run the generators, SIGKILL it at the given moments (and
 * restart it on the same data directory), restart it after any crash it did
 * not ask for (a failpoint), optionally SIGTERM + restart after the traffic,
 * wait until the windows have closed, then check the ledger against the API.
 *
 * @example
 *   const r = await runScenario({ ...smallScenario, dataDir, killAtMs: killTimes(7, 3, 15_000) });
 *   expect(r.report.ok).toBe(true);
 */
import { strict as assert } from "node:assert";
import { mulberry32 } from "../helpers/prng.ts";
import { awaitWindows, compare, formatReport, parseSpecs, recount, type CheckReport } from "./checker.ts";
import { runGenerator, type GeneratorStats } from "./generator.ts";
import { Ledger, ledgerSeries } from "./ledger.ts";
import { WeirProcess, type ExitRecord } from "./process.ts";
import { checkRules, checkView, expectedTransitions, type RulesReport, startRulesRig, type ViewReport } from "./rules-check.ts";
import { waitFor } from "../helpers/wait.ts";

export interface ScenarioOptions {
  name: string;
  seed: number;
  dataDir: string;
  generators: number;
  seriesPerGenerator: number;
  eventsPerRequest: number;
  /** Over all generators together. */
  eventsPerSec: number;
  durationMs: number;
  /** SIGKILL moments, ms after the traffic starts. */
  killAtMs: readonly number[];
  /** WEIR_CRASH_AT for the first start only (the engine kills itself there); later starts go without. */
  crashAt?: string;
  /** After the traffic: SIGTERM, then one more start on the same directory. */
  finalTerm: boolean;
  specsText: string;
  latenessMs: number;
  env?: Record<string, string>;
  /** Alert rules from a config file, with a webhook receiver as their action, checked after the windows (rules-check.ts). */
  rules?: boolean;
  /** Waiting for the last window to close may take this long past its end + lateness. */
  tailSlackMs?: number;
  progress?: (line: string) => void;
}

export interface ScenarioResult {
  name: string;
  report: CheckReport;
  generators: GeneratorStats[];
  requestsAcked: number;
  attemptsUnanswered: number;
  attemptsRefused: number;
  kills: number;
  crashes: ExitRecord[];
  termExitCodes: Array<number | null>;
  /** Spawn → /ready 200, first start included. */
  recoveryMs: number[];
  rssMaxBytes: number;
  /** Summed over the process lifetimes, from the last /metrics read of each. */
  metrics: { ingested: number; duplicate: number; late: number; scrapesMissed: number };
  streamMs: number;
  windowsWaitedMs: number;
  windowsComplete: boolean;
  /** With `rules`: the transitions stored and delivered against those the rules make over the recounted windows. */
  rules: RulesReport | null;
  /** With `rules`: the view over every series against a recount of the acknowledged events. */
  view: ViewReport | null;
  logTail: string;
}

const runsMax = 1_000;
const sampleEveryMs = 1_000;
const tailSlackMsDefault = 20_000;

export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  assert(o.killAtMs.length < runsMax && o.generators >= 1 && o.seriesPerGenerator >= 1, "bounded scenario");
  const say = (line: string) => o.progress?.(`${o.name}: ${line}`);
  const specs = parseSpecs(o.specsText);
  const rig = o.rules === true ? startRulesRig() : null;
  const env = { WEIR_WINDOWS: o.specsText, WEIR_LATENESS: `${o.latenessMs}ms`, ...(rig === null ? {} : { WEIR_CONFIG: rig.configFile }), ...o.env };
  const proc = await WeirProcess.start({ dataDir: o.dataDir, env }, o.crashAt ? { WEIR_CRASH_AT: o.crashAt } : {});
  say(`weir up at ${proc.url} in ${proc.recoveryMs[0].toFixed(0)} ms`);
  const c = new Control(proc, say);
  try {
    const t0 = performance.now();
    const ledger = new Ledger();
    const gens = startGenerators(o, ledger, proc);
    const killer = c.killAt(o.killAtMs, t0, gens.done);
    const stats = await gens.all;
    const streamMs = performance.now() - t0;
    await killer;
    say(`traffic done, ${ledger.acked.length} events acknowledged in ${(streamMs / 1000).toFixed(1)} s, ${c.kills} kills, ${c.crashes.length} crashes`);
    if (o.finalTerm) await c.termAndRestart();
    await c.idle();
    const expected = recount(ledger.acked, specs);
    let maxEnd = 0;
    for (const w of expected.values()) maxEnd = Math.max(maxEnd, w.end);
    const series = Array.from({ length: o.generators * o.seriesPerGenerator }, (_, k) => ledgerSeries(k).key);
    const deadlineMs = Math.max(Date.now(), maxEnd + o.latenessMs) + (o.tailSlackMs ?? tailSlackMsDefault);
    say(`waiting up to ${((deadlineMs - Date.now()) / 1000).toFixed(0)} s for ${expected.size} windows to close`);
    const got = await awaitWindows({ url: () => proc.endpoint(), series, specs, expected, deadlineMs });
    await c.idle();
    await c.sample();
    const report = compare(expected, got.rows, specs, {
      inDoubtUnacked: ledger.inDoubtUnacked(), acknowledged: ledger.acked.length, lateEvents: c.totals().late,
    });
    say(`\n${formatReport(report)}`);
    let rules: RulesReport | null = null;
    let view: ViewReport | null = null;
    if (rig !== null) {
      // Transitions before the last base window's end: the silence after the traffic is judged later, on both sides alike.
      let baseEnd = 0;
      for (const w of expected.values()) if (w.window === specs[0].label) baseEnd = Math.max(baseEnd, w.end);
      const want = expectedTransitions(expected.values(), o.specsText, specs[0].label, baseEnd);
      const due = want.filter((t) => t.state === "firing" || t.state === "resolved").length;
      // Actions go once their transitions are committed: a checkpoint interval or so after the windows are readable.
      await waitFor(async () => (await checkRules(await proc.endpoint(), want, rig.receiver, baseEnd)).deliveredExpected >= due, 15_000, "the expected deliveries").catch(() => {});
      rules = await checkRules(await proc.endpoint(), want, rig.receiver, baseEnd);
      say(`rules: ${JSON.stringify({ ...rules, missing: rules.missing.length, unexpected: rules.unexpected.length })}`);
      // The view's windows are merged at each partition's commit: wait until the last closed one is there.
      await waitFor(async () => (await checkView(await proc.endpoint(), ledger.acked, baseEnd)).equal === (await checkView(await proc.endpoint(), ledger.acked, baseEnd)).expected, 15_000, "the view's windows").catch(() => {});
      view = await checkView(await proc.endpoint(), ledger.acked, baseEnd);
      say(`view: ${JSON.stringify({ ...view, missing: view.missing.length, differing: view.differing.slice(0, 3) })}`);
    }
    return {
      name: o.name, report, generators: stats, requestsAcked: ledger.requestsAcked, attemptsUnanswered: ledger.attemptsUnanswered,
      attemptsRefused: ledger.attemptsRefused, kills: c.kills, crashes: c.crashes, termExitCodes: c.termExitCodes,
      recoveryMs: proc.recoveryMs, rssMaxBytes: c.rssMaxBytes, metrics: c.totals(), streamMs,
      windowsWaitedMs: got.waitedMs, windowsComplete: got.complete, rules, view, logTail: proc.logTail(),
    };
  } catch (e) {
    const msg = (e as Error).message;
    const tail = msg.includes("--- weir log") ? "" : `\n--- weir log (last lines) ---\n${proc.logTail()}`; // a WeirProcessError holds one already
    throw new Error(`${o.name}: ${msg}${tail}`); // no cause: it would print the log tail twice
  } finally {
    c.stop();
    await proc.close("scenario over");
    await rig?.stop();
  }
}

function startGenerators(o: ScenarioOptions, ledger: Ledger, proc: WeirProcess) {
  let finished = () => {};
  const done = new Promise<void>((r) => { finished = r; });
  const all = Promise.all(Array.from({ length: o.generators }, (_, g) => runGenerator({
    seed: (o.seed * 7919 + g) >>> 0,
    series: Array.from({ length: o.seriesPerGenerator }, (_, i) => g * o.seriesPerGenerator + i),
    eventsPerRequest: o.eventsPerRequest, eventsPerSec: o.eventsPerSec / o.generators, durationMs: o.durationMs,
    idPrefix: `${o.name}-${o.seed}-g${g}`, ledger, endpoint: () => proc.endpoint(),
  }))).finally(finished);
  return { all, done };
}

/**
 * Everything that stops or starts weir goes through one queue, so a planned
 * kill and a restart after a crash never overlap. Also samples /metrics:
 * every second, and right before each stop (counters die with the process).
 */
class Control {
  kills = 0;
  readonly crashes: ExitRecord[] = [];
  readonly termExitCodes: Array<number | null> = [];
  rssMaxBytes = 0;
  private chain: Promise<void> = Promise.resolve();
  private fatal: Error | null = null;
  private readonly lastByPid = new Map<number, Map<string, number>>();
  private scrapesMissed = 0;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly startedAt = performance.now();

  constructor(private readonly proc: WeirProcess, private readonly say: (line: string) => void) {
    proc.onCrash = (exit) => {
      this.crashes.push(exit);
      say(`crash at ${this.elapsedS()} s: pid ${exit.pid} code ${exit.code} signal ${exit.signal}; restarting without WEIR_CRASH_AT`);
      void this.enqueue(async () => { say(`restarted in ${(await proc.restart()).toFixed(0)} ms`); });
    };
    this.timer = setInterval(() => void this.sample(), sampleEveryMs);
  }

  /** SIGKILL at each moment (ms after t0) until `stop` resolves; each kill is followed by a restart. */
  async killAt(moments: readonly number[], t0: number, stop: Promise<void>): Promise<void> {
    let stopped = false;
    void stop.then(() => { stopped = true; });
    for (const at of [...moments].sort((a, b) => a - b)) {
      const waitMs = t0 + at - performance.now();
      if (waitMs > 0) await Promise.race([Bun.sleep(waitMs), stop]); // the plan's moment, or the traffic's end
      if (stopped) return;
      await this.enqueue(async () => {
        if (!this.proc.alive) return; // down after a crash: the restart is queued already
        await this.sample();
        const pid = this.proc.pid;
        await this.proc.kill9();
        this.kills++;
        this.say(`kill -9 #${this.kills} of pid ${pid} at ${this.elapsedS()} s`);
        this.say(`restarted in ${(await this.proc.restart()).toFixed(0)} ms`);
      });
    }
  }

  async termAndRestart(): Promise<void> {
    await this.enqueue(async () => {
      await this.sample();
      const code = await this.proc.term();
      this.termExitCodes.push(code);
      const ms = await this.proc.restart();
      this.say(`SIGTERM: exit code ${code}; back in ${ms.toFixed(0)} ms`);
    });
  }

  /** Waits for the queued stops and starts; throws the first that failed. */
  async idle(): Promise<void> {
    await this.chain;
    if (this.fatal) throw this.fatal;
  }

  async sample(): Promise<void> {
    const pid = this.proc.pid;
    if (pid === null) return;
    const m = await this.proc.scrape();
    if (m === null) {
      this.scrapesMissed++;
      return;
    }
    this.lastByPid.set(pid, m);
    this.rssMaxBytes = Math.max(this.rssMaxBytes, m.get("process_resident_memory_bytes") ?? 0);
  }

  totals(): ScenarioResult["metrics"] {
    const sum = (name: string) => [...this.lastByPid.values()].reduce((n, m) => n + (m.get(name) ?? 0), 0);
    return {
      ingested: sum("weir_events_ingested_total"), duplicate: sum("weir_events_duplicate_total"),
      late: sum("weir_events_late_total"), scrapesMissed: this.scrapesMissed,
    };
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Seconds since this run's first start, for the progress lines. */
  private elapsedS(): string {
    return ((performance.now() - this.startedAt) / 1000).toFixed(1);
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (this.fatal) return;
      try {
        await step();
      } catch (e) {
        this.fatal = e as Error;
        await this.proc.close(`weir could not be restarted: ${(e as Error).message}`); // generators waiting for it fail now
      }
    });
    return this.chain;
  }
}

/** `count` SIGKILL moments, seeded, spread over the middle of the traffic (15 %–85 %) at least minGapMs apart. */
export function killTimes(seed: number, count: number, durationMs: number, minGapMs = 1_000): number[] {
  const rand = mulberry32(seed);
  const span = durationMs * 0.7;
  assert(count * minGapMs <= span, "the kills fit in the traffic's middle");
  const slack = span - count * minGapMs;
  const cuts = Array.from({ length: count }, () => rand() * slack).sort((a, b) => a - b);
  return cuts.map((cut, i) => Math.round(durationMs * 0.15 + cut + i * minGapMs));
}

/** A SIGKILL every `everyMs` (± 30 %, seeded) from one period in until the traffic ends. */
export function periodicKillTimes(seed: number, everyMs: number, durationMs: number): number[] {
  const rand = mulberry32(seed);
  const out: number[] = [];
  for (let t = everyMs * (0.7 + 0.6 * rand()); t < durationMs - everyMs / 2; t += everyMs * (0.7 + 0.6 * rand())) out.push(Math.round(t));
  return out;
}
