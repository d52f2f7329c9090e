/**
 * Worker churn under load, the suite's small version of bench/churn.ts:
 * twelve partition-worker faults (throws, exits and one hang) injected one at
 * a time while a light HTTP load runs. The process must survive, every
 * partition must be running at the end, no worker thread may outlive its
 * restart, and every acknowledged event must be counted exactly once in the
 * stored 10 s windows. That last one needs a restarted worker to resume from
 * its checkpoint and replay what came after it: without that, the events its
 * open windows held die with it.
 *
 * Four partitions, so twelve faults are three per partition: inside the
 * supervisor's restart budget (5 in 60 s) with no override.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { partitionOf } from "../src/runtime/series.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

const partitions = 4;
const seriesPerPartition = 4;
/** Cycle i faults partition i mod 4, so each sees a mix; the hang costs a heartbeat timeout (5 s), so there is one. */
const modes = ["throw", "exit", "throw", "exit", "exit", "throw", "hang", "throw", "throw", "exit", "exit", "throw"] as const;
const loadTickMs = 20; // one request of 16 events per tick: ~800 events/s
const crashBackMs = 10_000; // a throw or exit to running again: back-off (≤ 400 ms here) and a spawn
const hangBackMs = 20_000; // a hang: the heartbeat timeout (5 s), then the same
const threadsGoneMs = 10_000;
/** Worker threads weir runs besides the partitions': the store writer and the lake's maintenance. */
const otherWorkers = 2;
const windowsStoredMs = 30_000; // a 10 s window plus lateness (2 s), closed by the quiet rule, then stored

/** `n` series names whose keys land in `partition`. */
function seriesIn(partition: number, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (partitionOf(`churn.p${partition}.${i}`, partitions) === partition) out.push(`churn.p${partition}.${i}`);
  return out;
}

/**
 * Threads of this process by name (/proc/self/task/<tid>/comm: JSC keeps a
 * name's last 15 bytes). Bun names a Worker's thread "Worker". Each JS VM
 * starts its own "Heap Collector Thread" at its first collection and ends it
 * with the VM, so that count follows the live workers' GC, not leaks: it is
 * left out here and bounded on its own.
 */
const collectorThread = "ollector Thread";
function threadCounts(): Record<string, number> {
  const out: Record<string, number> = { Worker: 0 };
  for (const tid of readdirSync("/proc/self/task")) {
    let name: string;
    try {
      name = readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim();
    } catch {
      continue; // ended while listed
    }
    if (name !== collectorThread) out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}
const collectorThreads = () => readdirSync("/proc/self/task").filter((t) => {
  try {
    return readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim() === collectorThread;
  } catch {
    return false;
  }
}).length;

/** Every loadTickMs, one request with an event for each series (never two in flight), counting what each 202 acknowledged. */
class HttpLoad {
  readonly acked = new Map<string, number>();
  readonly lastTs = new Map<string, number>();
  refused = 0;
  readonly unexpected: string[] = [];
  private inFlight: Promise<number> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly url: string, readonly series: string[]) {
    for (const s of series) this.acked.set(s, 0);
  }

  get ackedTotal(): number {
    let n = 0;
    for (const v of this.acked.values()) n += v;
    return n;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.inFlight ??= this.post().finally(() => (this.inFlight = null));
    }, loadTickMs);
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
  }

  /** One request; its status (0: no answer, which is unexpected too). */
  async post(): Promise<number> {
    const ts = Date.now();
    let res: Awaited<ReturnType<typeof postEvents>>;
    try {
      res = await postEvents(this.url, JSON.stringify(this.series.map((name, i) => ({ name, value: i, ts }))));
    } catch (e) {
      this.unexpected.push(`no answer: ${(e as Error).message}`);
      return 0;
    }
    if (res.status === 202 && res.body.accepted === this.series.length && res.body.rejected === 0) {
      for (const s of this.series) {
        this.acked.set(s, this.acked.get(s)! + 1);
        this.lastTs.set(s, ts);
      }
    } else if (res.status === 503) this.refused += this.series.length;
    else this.unexpected.push(`${res.status} ${JSON.stringify(res.body)}`);
    return res.status;
  }
}

describe("worker churn - partition workers crashed and hung over and over under load", () => {
  let w: TestWeir;
  let load: HttpLoad;
  let threadsAtStart: Record<string, number> = {};
  /** Why the churn stopped early, or null. */
  let churnError: string | null = null;
  const stateOf = (id: string) => w.engine.supervisor.status().find((c) => c.id === id)?.state;

  /** One fault, then its partition running again (one more restart); a failure is thrown with the cycle named. */
  async function cycle(i: number): Promise<void> {
    const id = `partition-${i % partitions}`;
    const sup = w.engine.supervisor;
    const before = sup.restartsTotal(id);
    if (!sup.post(id, { type: "fault", mode: modes[i] })) throw new Error(`cycle ${i}: ${id} has no worker (${stateOf(id)})`);
    const what = `cycle ${i}: ${id} running again after "${modes[i]}"`;
    await waitFor(() => stateOf(id) === "failed" || (sup.restartsTotal(id) > before && stateOf(id) === "running"), modes[i] === "hang" ? hangBackMs : crashBackMs, what);
    if (stateOf(id) === "failed") throw new Error(`${what}: failed (${sup.status().find((c) => c.id === id)?.lastError})`);
  }

  beforeAll(async () => {
    w = await startTestWeir({ WEIR_FAILPOINTS: "1", WEIR_PARTITIONS: String(partitions) });
    load = new HttpLoad(w.url, Array.from({ length: partitions }, (_, p) => seriesIn(p, seriesPerPartition)).flat());
    load.start();
    try {
      await waitFor(() => load.ackedTotal > 0, 10_000, "the load's first acknowledged request");
      // The first fault also starts what the runtime starts once per process (JSC's signal
      // sender, used by terminate()): the thread count is taken after it, like with like.
      await cycle(0);
      await waitFor(() => (threadCounts().Worker ?? 0) === partitions + otherWorkers, threadsGoneMs, "the first faulted worker's thread gone");
      threadsAtStart = threadCounts();
      for (let i = 1; i < modes.length; i++) await cycle(i);
    } catch (e) {
      churnError = (e as Error).message;
    }
    await load.stop();
    // One request after the last restart: every series' newest window is then held by a worker that lives on.
    await waitFor(async () => (await load.post()) === 202, 10_000, "the tail request accepted").catch((e: Error) => (churnError ??= e.message));
  }, 120_000);

  afterAll(async () => {
    await load?.stop();
    await w?.stop();
  });

  test("worker churn - the process survives 12 faults; each is restarted and every partition ends running", () => {
    expect(churnError).toBeNull();
    expect(w.engine.supervisor.restartsTotal()).toBe(modes.length);
    expect(w.engine.supervisor.status().map((c) => c.state)).toEqual(Array(partitions).fill("running"));
    expect(load.unexpected).toEqual([]);
    expect(load.ackedTotal).toBeGreaterThan(0);
  });

  test("worker churn - no worker thread outlives its restart", async () => {
    // What the start had, with one "Worker" per partition that has a worker now (a failed one has none), and the store writer.
    const expected = () => ({ ...threadsAtStart, Worker: w.engine.supervisor.status().filter((c) => c.threadId !== undefined).length + otherWorkers });
    // Equal for a whole second (a thread starting or ending right then is not a leak); a leaked one never is.
    let seen = threadCounts();
    let equalSince = 0;
    await waitFor(() => {
      seen = threadCounts();
      if (!Bun.deepEquals(seen, expected())) return (equalSince = 0), false;
      equalSince ||= performance.now();
      return performance.now() - equalSince >= 1000;
    }, threadsGoneMs, "the threads back to their start").catch(() => {}); // the diff below says more
    expect(seen).toEqual(expected());
    expect(threadsAtStart.Worker).toBe(partitions + otherWorkers);
    expect(collectorThreads()).toBeLessThanOrEqual(partitions + otherWorkers + 1); // at most one per live VM: the workers' and the main one
  }, 20_000);

  test("worker churn - every acknowledged event is counted exactly once in the stored 10 s windows", async () => {
    const windowsOf = async (series: string, from = 0) => {
      const res = await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(series)}&window=10s&from=${from}&limit=10000`);
      expect(res.status).toBe(200);
      return (await res.json()).windows as Array<{ start: number; count: number }>;
    };
    // Windows of a series are stored in order of end, so once its newest is there, all are.
    const newestStored = async () => {
      for (const s of load.series) {
        const newest = Math.floor(load.lastTs.get(s)! / 10_000) * 10_000;
        if ((await windowsOf(s, newest)).length === 0) return false;
      }
      return true;
    };
    await waitFor(newestStored, windowsStoredMs, "every series' newest 10 s window stored").catch(() => {}); // the diff below says more
    const counted: Record<string, number> = {};
    for (const s of load.series) counted[s] = (await windowsOf(s)).reduce((n, r) => n + r.count, 0);
    expect(counted).toEqual(Object.fromEntries(load.acked));
  }, 60_000);
});
