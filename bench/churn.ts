/**
 * (e) Worker churn: `cycles` partition-worker faults (throw, exit and, for
 * every 10th fault of a partition, a hang) injected one at a time into an
 * engine with 2 partitions under a steady in-process ingest load; each waits
 * for its partition to be running again before the next. The engine runs in
 * a child process, so a Bun crash is seen and counted as an abort instead of
 * ending the bench.
 *
 * Figures: cycles done, aborts, restarts, threads / file descriptors / memory
 * mappings of the engine process before and after, RSS every 50 cycles, time
 * per restart (fault to running, and spawn to ready alone), events accepted
 * and refused, and — once the load has stopped and every window has closed —
 * per series, events counted in the stored 10 s windows against events
 * acknowledged: lost or counted twice. Baseline in the same run: the same
 * load with no faults (its series are checked the same way, as a control).
 *
 * Run: `bun bench/churn.ts [cycles]` (default 200; prints a JSON line last).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine, OverloadedError } from "../src/engine/engine.ts";
import { loadConfig } from "../src/config.ts";
import { limits } from "../src/runtime/limits.ts";
import { createLog } from "../src/runtime/log.ts";
import { seriesKey } from "../src/runtime/series.ts";
import type { SupervisorEvent } from "../src/runtime/supervisor.ts";
import { openReader } from "../src/storage/db.ts";

type FaultMode = "throw" | "exit" | "hang";

const partitions = 2;
const cyclesDefault = 200;
const seriesPerLoad = 200;
const loadTickMs = 10;
const loadEventsPerTick = 40; // 4,000 events/s offered, over seriesPerLoad series
const loadEventsMax = 10_000_000; // a hard stop for a producer nobody stopped
const baselineSeconds = 10;
const hangEvery = 10; // a partition's every 10th fault is a hang: each costs a heartbeat timeout (5 s)
const cycleTimeoutMs = 20_000; // fault to running again; a hang needs heartbeatTimeoutMs + back-off + spawn
const churnSecondsMax = 900;
const settleTimeoutMs = 30_000; // a 10 s window plus lateness, closed by the quiet rule and stored
const threadsSettleMs = 10_000; // old workers' threads gone after the last restart
const marksEvery = 50; // cycles between RSS / thread samples
const pollMs = 2;
const windowLabel = "10s";

export interface ChurnMark { cycles: number; rssMiB: number; threads: number; workerThreads: number; fds: number; maps: number; threadNames: Record<string, number> }
export interface Exactness { series: number; acked: number; counted: number; lost: number; duplicated: number; seriesWrong: number }

/** What the engine process reports: everything but the aborts, which only its parent can see. */
export interface ChurnFigures {
  cycles: number;
  cyclesDone: number;
  stuck: string | null;
  restarts: number;
  modes: Record<FaultMode, number>;
  start: ChurnMark;
  marks: ChurnMark[];
  end: ChurnMark;
  rssGrowthMiB: number;
  /** "Worker" threads beyond one per live worker; threads of other names added since the start, per-VM collectors and the signal sender aside. */
  threadsLeaked: { worker: number; other: number };
  restartMs: { crashP50: number; crashP99: number; hangP50: number; hangP99: number; spawnToReadyP50: number; spawnToReadyP99: number; backoffMax: number };
  baseline: { accepted: number; refused: number; seconds: number; eventsPerSec: number; exact: Exactness };
  churn: { accepted: number; refused: number; seconds: number; eventsPerSec: number; exact: Exactness };
  ratio: number;
  lateEvents: number;
  loadError: string | null;
}

export interface ChurnResult extends ChurnFigures { name: string; aborts: 0; exit: string }

/** Cycle i faults partition i mod 2; a partition's k-th fault is a hang when k mod 10 = 9, else throw and exit in turn. */
export function faultOf(cycle: number): { partition: number; mode: FaultMode } {
  const k = Math.floor(cycle / partitions);
  const mode: FaultMode = k % hangEvery === hangEvery - 1 ? "hang" : k % 2 === 0 ? "throw" : "exit";
  return { partition: cycle % partitions, mode };
}

/** Threads of this process: a Worker that is not gone keeps its thread. */
function threads(): number {
  return readdirSync("/proc/self/task").length;
}

/** Threads by name (/proc/self/task/<tid>/comm, cut to 15 bytes by Linux): Bun names a Worker's thread "Worker". */
function threadNames(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync("/proc/self/task")) {
    let name: string;
    try {
      name = readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim();
    } catch {
      continue; // the thread ended while listed
    }
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}

/** RSS after a full collection, threads, open file descriptors and memory mappings of this process, from /proc. */
function sample(cycles: number): ChurnMark {
  Bun.gc(true); // what is retained, not what awaits collection
  const names = threadNames();
  const maps = readFileSync("/proc/self/maps", "utf8").split("\n").length - 1;
  return {
    cycles, rssMiB: process.memoryUsage.rss() / 2 ** 20, threads: threads(), workerThreads: names.Worker ?? 0,
    fds: readdirSync("/proc/self/fd").length, maps, threadNames: names,
  };
}

/**
 * Threads started since `start` other than Workers and those the runtime
 * starts by itself: each JS VM (main, each worker) starts a "Heap Collector
 * Thread" at its first collection and ends it with the VM, and JSC starts one
 * "VMTraps Signal Sender" at the first terminate(). Linux keeps the last 15
 * bytes of a name here.
 */
const runtimeThreadNames = new Set(["Worker", "ollector Thread", "s Signal Sender"]);
function otherThreadsAdded(start: ChurnMark, end: ChurnMark): number {
  let added = 0;
  for (const [name, n] of Object.entries(end.threadNames)) if (!runtimeThreadNames.has(name)) added += Math.max(0, n - (start.threadNames[name] ?? 0));
  return added;
}

/** Worker threads that should be alive: the partitions' that run, and the store writer. */
const liveWorkers = (engine: Engine) => engine.supervisor.status().filter((c) => c.threadId !== undefined).length + 1;

/** Polls `cond` until it holds or `timeoutMs` passes; whether it held. */
async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() >= deadline) return false;
    await Bun.sleep(pollMs);
  }
  return true;
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/**
 * A paced in-process producer: every loadTickMs, loadEventsPerTick events
 * over `seriesCount` series in turn, stamped with the wall clock, through
 * engine.ingestEvents (validation, raw log, rings: HTTP without HTTP). A
 * refusal (503: a ring full, a partition failed) is counted, not retried.
 */
class Load {
  readonly acked: Float64Array;
  readonly lastTs: Float64Array;
  accepted = 0;
  refused = 0;
  error: string | null = null;
  private cursor = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private startedMs = 0;
  private stoppedMs = 0;

  constructor(private readonly engine: Engine, readonly name: string, readonly seriesCount: number) {
    this.acked = new Float64Array(seriesCount);
    this.lastTs = new Float64Array(seriesCount);
  }

  key(s: number): string {
    return seriesKey(this.name, { s: String(s) });
  }

  start(): void {
    this.startedMs = performance.now();
    this.timer = setInterval(() => this.send(loadEventsPerTick), loadTickMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.stoppedMs = performance.now();
  }

  get seconds(): number {
    return ((this.timer === null ? this.stoppedMs : performance.now()) - this.startedMs) / 1000;
  }

  /** One request of `n` events; whether it was accepted. */
  send(n: number): boolean {
    if (this.accepted + this.refused >= loadEventsMax || this.error !== null) {
      this.stop();
      return false;
    }
    const now = Date.now();
    const first = this.cursor;
    // A fresh array of event objects per request: the ingest API takes objects, as an HTTP body would give.
    const events = Array.from({ length: n }, (_, i) => ({ name: this.name, tags: { s: String((first + i) % this.seriesCount) }, value: i, ts: now }));
    try {
      const out = this.engine.ingestEvents(events);
      if (out.accepted !== n || out.duplicates !== 0) throw new Error(`accepted ${out.accepted} of ${n}: ${JSON.stringify(out.errors)}`);
    } catch (e) {
      if (e instanceof OverloadedError) {
        this.refused += n;
        return false;
      }
      this.error = (e as Error).message; // a bench bug: stop loading, report it
      return false;
    }
    for (let i = 0; i < n; i++) {
      const s = (first + i) % this.seriesCount;
      this.acked[s]++;
      this.lastTs[s] = now;
    }
    this.cursor = (first + n) % this.seriesCount;
    this.accepted += n;
    return true;
  }
}

/** Per series: the newest stored 10 s window's start, and the total count over its 10 s windows. */
function storedWindows(dbPath: string): Map<string, { lastStart: number; count: number }> {
  const db = openReader(dbPath);
  try {
    const rows = db.query(`SELECT series, MAX(start) AS lastStart, SUM(count) AS count FROM windows WHERE window = ? GROUP BY series`)
      .all(windowLabel) as Array<{ series: string; lastStart: number; count: number }>;
    return new Map(rows.map((r) => [r.series, { lastStart: r.lastStart, count: r.count }]));
  } finally {
    db.close();
  }
}

/** Whether every series of `load` has the 10 s window of its last acknowledged event stored (so all before it are). */
function settled(load: Load, dbPath: string): boolean {
  const stored = storedWindows(dbPath);
  for (let s = 0; s < load.seriesCount; s++) {
    if (load.acked[s] === 0) continue;
    const want = Math.floor(load.lastTs[s] / 10_000) * 10_000;
    if ((stored.get(load.key(s))?.lastStart ?? -1) < want) return false;
  }
  return true;
}

function exactness(load: Load, dbPath: string): Exactness {
  const stored = storedWindows(dbPath);
  const out: Exactness = { series: load.seriesCount, acked: 0, counted: 0, lost: 0, duplicated: 0, seriesWrong: 0 };
  for (let s = 0; s < load.seriesCount; s++) {
    const acked = load.acked[s];
    const counted = stored.get(load.key(s))?.count ?? 0;
    out.acked += acked;
    out.counted += counted;
    out.lost += Math.max(0, acked - counted);
    out.duplicated += Math.max(0, counted - acked);
    if (acked !== counted) out.seriesWrong++;
  }
  return out;
}

/** Times of each child's latest lifecycle events, from the supervisor's event stream. */
class RestartClock {
  private readonly last = new Map<string, { exitedMs: number; restartingMs: number; delayMs: number; startedMs: number }>();

  on(e: SupervisorEvent): void {
    const t = this.last.get(e.id) ?? { exitedMs: NaN, restartingMs: NaN, delayMs: NaN, startedMs: NaN };
    const now = performance.now();
    if (e.type === "exited") t.exitedMs = now;
    if (e.type === "restarting") {
      t.restartingMs = now;
      t.delayMs = e.delayMs ?? NaN;
    }
    if (e.type === "started") t.startedMs = now;
    this.last.set(e.id, t);
  }

  /** For a fault posted at `faultMs`: fault to running, back-off, and spawn to ready. */
  timing(id: string, faultMs: number): { totalMs: number; backoffMs: number; spawnToReadyMs: number } {
    const t = this.last.get(id)!;
    return { totalMs: t.startedMs - faultMs, backoffMs: t.delayMs, spawnToReadyMs: t.startedMs - t.restartingMs - t.delayMs };
  }
}

/**
 * Stopgap until Engine.start takes SupervisorOptions: the engine builds its
 * Supervisor from `limits`, whose budget (5 restarts in 60 s) would fail a
 * partition at its 6th fault. For that construction only, the budget is
 * raised past the bench's faults and its window cut to 1 s, so back-off
 * stays near its base (100 ms, doubled per restart inside the window)
 * instead of climbing to restartBackoffMaxMs (5 s) for every fault.
 */
async function startEngine(dir: string, cycles: number): Promise<Engine> {
  const budget = limits as unknown as { restartsMax: number; restartWindowMs: number };
  const saved = { ...budget };
  budget.restartsMax = cycles + 1;
  budget.restartWindowMs = 1_000;
  try {
    // The engine's own log on stderr, errors only unless WEIR_LOG_LEVEL says otherwise (warn shows every restart).
    const cfg = loadConfig({ WEIR_LOG_LEVEL: "error", ...process.env, WEIR_DATA_DIR: dir, WEIR_PARTITIONS: String(partitions), WEIR_FAILPOINTS: "1" });
    return await Engine.start(cfg, createLog(cfg.logLevel, { component: "engine" }));
  } finally {
    Object.assign(budget, saved);
  }
}

interface ChurnLoop { cyclesDone: number; stuck: string | null; marks: ChurnMark[]; crash: number[]; hang: number[]; spawn: number[]; backoff: number[]; modes: Record<FaultMode, number> }

/** Injects the faults one at a time, each waited for until its partition runs again. */
async function injectFaults(engine: Engine, cycles: number, clock: RestartClock): Promise<ChurnLoop> {
  const sup = engine.supervisor;
  const stateOf = (id: string) => sup.status().find((c) => c.id === id)?.state;
  const r: ChurnLoop = { cyclesDone: 0, stuck: null, marks: [], crash: [], hang: [], spawn: [], backoff: [], modes: { throw: 0, exit: 0, hang: 0 } };
  const deadline = performance.now() + churnSecondsMax * 1000;
  for (let i = 0; i < cycles; i++) {
    if (performance.now() > deadline) {
      r.stuck = `wall-time bound of ${churnSecondsMax} s reached`;
      break;
    }
    const { partition, mode } = faultOf(i);
    const id = `partition-${partition}`;
    const before = sup.restartsTotal(id);
    const faultMs = performance.now();
    if (!sup.post(id, { type: "fault", mode })) {
      r.stuck = `cycle ${i}: ${id} has no worker (${stateOf(id)})`;
      break;
    }
    const back = await until(() => stateOf(id) === "failed" || (sup.restartsTotal(id) > before && stateOf(id) === "running"), cycleTimeoutMs);
    if (!back || stateOf(id) === "failed") {
      r.stuck = `cycle ${i} (${mode} on ${id}): ${back ? "failed" : `not running after ${cycleTimeoutMs} ms`} (${stateOf(id)})`;
      break;
    }
    const t = clock.timing(id, faultMs);
    (mode === "hang" ? r.hang : r.crash).push(t.totalMs);
    r.spawn.push(t.spawnToReadyMs);
    r.backoff.push(t.backoffMs);
    r.modes[mode]++;
    r.cyclesDone++;
    if (r.cyclesDone % 10 === 0) console.error(`churn: ${r.cyclesDone}/${cycles} cycles, ${engine.supervisor.restartsTotal()} restarts`);
    if (r.cyclesDone % marksEvery === 0) {
      r.marks.push(sample(r.cyclesDone));
      console.log(JSON.stringify({ progress: r.marks.at(-1) }));
    }
  }
  return r;
}

/** The engine process: baseline load, then churn under load, then the checks. */
async function runEngineSide(cycles: number): Promise<ChurnFigures> {
  const dir = mkdtempSync(join(tmpdir(), "weir-bench-churn-"));
  const dbPath = join(dir, "weir.db");
  const engine = await startEngine(dir, cycles);
  try {
    const clock = new RestartClock();
    engine.supervisor.onEvent((e) => clock.on(e));
    const base = new Load(engine, "churn.base", seriesPerLoad);
    base.start();
    await Bun.sleep(baselineSeconds * 1000); // the baseline's length, not a wait on a condition
    base.stop();
    // Its windows must be stored before the faults begin, so the baseline is a clean control.
    const baseSettled = await until(() => settled(base, dbPath), settleTimeoutMs);
    const start = sample(0);
    const lateBefore = engine.metrics.late.get();

    const load = new Load(engine, "churn.load", seriesPerLoad);
    load.start();
    const loop = await injectFaults(engine, cycles, clock);
    load.stop();
    // One request over every series after the last restart: each series' newest window is held by a worker that lives.
    const tail = await until(() => load.send(seriesPerLoad), 5_000);
    const loadSettled = tail && await until(() => settled(load, dbPath), settleTimeoutMs);
    await until(() => (threadNames().Worker ?? 0) <= liveWorkers(engine), threadsSettleMs);
    const end = sample(loop.cyclesDone);
    const stuck = loop.stuck ?? (!baseSettled ? "baseline windows not stored in time" : !loadSettled ? "churn windows not stored in time" : null);
    return figures({ cycles, engine, loop, start, end, base, load, dbPath, stuck, lateEvents: engine.metrics.late.get() - lateBefore });
  } finally {
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface RunEnd {
  cycles: number; engine: Engine; loop: ChurnLoop; start: ChurnMark; end: ChurnMark; base: Load; load: Load;
  dbPath: string; stuck: string | null; lateEvents: number;
}

function figures({ cycles, engine, loop, start, end, base, load, dbPath, stuck, lateEvents }: RunEnd): ChurnFigures {
  const rate = (l: Load) => ({ accepted: l.accepted, refused: l.refused, seconds: l.seconds, eventsPerSec: l.accepted / l.seconds, exact: exactness(l, dbPath) });
  const baseline = rate(base);
  const churn = rate(load);
  return {
    cycles, cyclesDone: loop.cyclesDone, stuck, restarts: engine.supervisor.restartsTotal(), modes: loop.modes,
    start, marks: loop.marks, end, rssGrowthMiB: end.rssMiB - start.rssMiB,
    threadsLeaked: { worker: end.workerThreads - liveWorkers(engine), other: otherThreadsAdded(start, end) },
    restartMs: {
      crashP50: quantile(loop.crash, 0.5), crashP99: quantile(loop.crash, 0.99),
      hangP50: quantile(loop.hang, 0.5), hangP99: quantile(loop.hang, 0.99),
      spawnToReadyP50: quantile(loop.spawn, 0.5), spawnToReadyP99: quantile(loop.spawn, 0.99),
      backoffMax: Math.max(0, ...loop.backoff),
    },
    baseline, churn, ratio: churn.eventsPerSec / baseline.eventsPerSec, lateEvents,
    loadError: base.error ?? load.error,
  };
}

/** An engine process that died without reporting: how far it got. */
export interface ChurnAbort { name: string; aborts: 1; exit: string; cycles: number; cyclesDone: number; lastMark: ChurnMark | null }

/**
 * Runs the engine side in a child process and reads its figures; a child
 * that dies without printing them (a signal, a Bun abort) is an abort, and
 * its last progress line says how far it got.
 */
export async function benchChurn(opts: { cycles?: number } = {}): Promise<ChurnResult | ChurnAbort> {
  const cycles = opts.cycles ?? cyclesDefault;
  const child = Bun.spawn(["bun", import.meta.path, "--engine", String(cycles)], { stdout: "pipe", stderr: "inherit" });
  const lines = (await new Response(child.stdout).text()).trim().split("\n").filter((l) => l.startsWith("{"));
  const code = await child.exited;
  const exit = child.signalCode !== null ? `signal ${child.signalCode}` : `code ${code}`;
  const parsed = lines.map((l) => JSON.parse(l) as { progress?: ChurnMark; figures?: ChurnFigures });
  const done = parsed.find((p) => p.figures !== undefined)?.figures;
  const name = `(e) worker churn: ${cycles} throw/exit/hang faults under a ${loadEventsPerTick * (1000 / loadTickMs)} events/s load, ${partitions} partitions`;
  if (done !== undefined && code === 0) return { name, aborts: 0, exit, ...done };
  const lastMark = parsed.filter((p) => p.progress !== undefined).at(-1)?.progress ?? null;
  return { name, aborts: 1, exit, cycles, cyclesDone: lastMark?.cycles ?? 0, lastMark };
}

function report(r: ChurnResult | ChurnAbort): void {
  if (r.aborts === 1) {
    console.log(`${r.name}\n  ABORT: the engine process ended with ${r.exit}; at least ${r.cyclesDone} of ${r.cycles} cycles done (see its stderr above)`);
    console.log(JSON.stringify(r));
    return;
  }
  const f = (n: number | null, d = 1) => (n === null || !Number.isFinite(n) ? "n/a" : n.toFixed(d)); // NaN comes back from JSON as null
  const mark = (m: ChurnMark) => `${f(m.rssMiB)} MiB, ${m.threads} threads (${m.workerThreads} "Worker"), ${m.fds} fds, ${m.maps} maps`;
  console.log(r.name);
  console.log(`  cycles ${r.cyclesDone}/${r.cycles} (${r.modes.throw} throw, ${r.modes.exit} exit, ${r.modes.hang} hang)   aborts ${r.aborts} (${r.exit})   restarts ${r.restarts}${r.stuck ? `   STUCK: ${r.stuck}` : ""}`);
  console.log(`  start: ${mark(r.start)}`);
  for (const m of r.marks) console.log(`  after ${m.cycles}: ${mark(m)}`);
  console.log(`  end:   ${mark(r.end)}   RSS growth ${f(r.rssGrowthMiB)} MiB   leaked: ${r.threadsLeaked.worker} "Worker" threads, ${r.threadsLeaked.other} others`);
  console.log(`  threads by name, start ${JSON.stringify(r.start.threadNames)}\n                   end   ${JSON.stringify(r.end.threadNames)}`);
  const m = r.restartMs;
  console.log(`  fault → running: throw/exit p50 ${f(m.crashP50)} ms, p99 ${f(m.crashP99)} ms; hang p50 ${f(m.hangP50)} ms, p99 ${f(m.hangP99)} ms; spawn → ready p50 ${f(m.spawnToReadyP50)} ms, p99 ${f(m.spawnToReadyP99)} ms; back-off ≤ ${m.backoffMax} ms`);
  for (const [label, p] of [["baseline (no faults)", r.baseline], ["under churn", r.churn]] as const) {
    const e = p.exact;
    console.log(`  ${label}: ${p.accepted} accepted, ${p.refused} refused in ${f(p.seconds)} s = ${f(p.eventsPerSec, 0)} events/s; counted ${e.counted} of ${e.acked} acknowledged: lost ${e.lost}, duplicated ${e.duplicated} (${e.seriesWrong}/${e.series} series wrong)`);
  }
  console.log(`  ratio churn/baseline ${f(r.ratio, 3)}   late events during churn ${r.lateEvents}${r.loadError ? `   load error: ${r.loadError}` : ""}`);
  console.log(JSON.stringify(r));
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  if (args[0] === "--engine") {
    console.log(JSON.stringify({ figures: await runEngineSide(Number(args[1])) }));
  } else {
    const cycles = args[0] === undefined ? cyclesDefault : Number(args[0]);
    if (!Number.isInteger(cycles) || cycles < 1) throw new Error(`cycles: a positive whole number, got "${args[0]}"`);
    const r = await benchChurn({ cycles });
    report(r);
    if (r.aborts !== 0) process.exitCode = 1;
  }
}
