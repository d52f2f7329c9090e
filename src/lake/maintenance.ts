/**
 * The main thread's side of the lake's maintenance: starts lake.worker.ts,
 * asks it for a pass every WEIR_LAKE_INTERVAL (with the curated snapshot
 * every WEIR_LAKE_CURATED_INTERVAL), and lets a caller wait for a pass
 * (flush: tests, export of fresh data, shutdown). Passes never overlap: a
 * tick that finds one running is skipped. While the host's cores are busy
 * (idle less than limits.lakeDeferIdleShareMin of the second or two before
 * a tick) a tick waits too, unless the lake is WEIR_LAKE_DEFER behind: on 2
 * cores the raw tail's ~0.5 µs an event comes out of ingest's share when
 * ingest has no core to spare, so a burst of up to WEIR_LAKE_DEFER costs
 * ingest nothing and the lake catches up after it (counted in
 * `deferred`; a flush never waits).
 *
 * @example
 *   const m = await LakeMaintenance.start({ dataDir, intervalMs: 10_000, curatedIntervalMs: 60_000, deferMs: 60_000, retentionMs, log });
 *   await m.flush(); // compaction, tail and curated snapshot, now
 *   await m.stop();
 */
import { cpus } from "node:os";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import type { PassResult } from "./compactor.ts";
import { LakeError } from "./errors.ts";
import type { LakeWorkerData, PassRequest } from "./lake.worker.ts";

export interface MaintenanceOptions extends LakeWorkerData { intervalMs: number; curatedIntervalMs: number; deferMs: number; log: Log }

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/**
 * What the passes did so far (lake.ts shows it in /metrics). `freshAsOfMs`:
 * the start of the last pass that finished (the raw log was read to its
 * end then, so SQL sees every event acknowledged before it); the start of
 * the maintenance before the first.
 */
export interface MaintenanceStats { passesOk: number; passesFailed: number; deferred: number; lastPassMs: number; freshAsOfMs: number; tailEvents: number; compacted: number; pending: number }

export interface CpuMs { idle: number; all: number }

/** The host's CPU time so far, all cores: idle and in all (ms). */
function hostCpuMs(): CpuMs {
  let idle = 0;
  let all = 0;
  for (const c of cpus()) {
    idle += c.times.idle;
    all += c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq;
  }
  return { idle, all };
}

/**
 * Whether a tick's pass waits: the host's cores were idle less than
 * limits.lakeDeferIdleShareMin of the time between the two readings, and
 * the lake is less than `deferMs` behind (0: never waits).
 * @example passWaits({ idle: 0, all: 0 }, { idle: 500, all: 2000 }, 5_000, 60_000) // true: 25 % idle
 */
export function passWaits(before: CpuMs, now: CpuMs, behindMs: number, deferMs: number): boolean {
  const idleShare = now.all > before.all ? (now.idle - before.idle) / (now.all - before.all) : 1;
  return idleShare < limits.lakeDeferIdleShareMin && behindMs < deferMs;
}

export class LakeMaintenance {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private running: Promise<unknown> | null = null;
  private lastCuratedMs = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  readonly stats: MaintenanceStats = { passesOk: 0, passesFailed: 0, deferred: 0, lastPassMs: 0, freshAsOfMs: Date.now(), tailEvents: 0, compacted: 0, pending: 0 };
  /**
   * The host's CPU time at the last two samples (every limits.lakeDeferSampleMs): a
   * tick looks at how idle its cores were since the older, the last 1–2 samples' time.
   */
  private cpuAt = [hostCpuMs(), hostCpuMs()];
  private sampler: ReturnType<typeof setInterval> | undefined;

  private constructor(private readonly worker: Worker, private readonly o: MaintenanceOptions) {}

  static async start(o: MaintenanceOptions): Promise<LakeMaintenance> {
    const worker = new Worker(new URL("./lake.worker.ts", import.meta.url).href, { workerData: { dataDir: o.dataDir, retentionMs: o.retentionMs } } as WorkerOptions);
    const m = new LakeMaintenance(worker, o);
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<Reply>) => (e.data.id === 0 ? resolve() : m.settle(e.data));
      worker.onerror = (e) => reject(new LakeError(`lake: maintenance thread failed: ${e.message}`));
    });
    worker.onerror = (e) => o.log.error("lake: maintenance thread error", { error: e.message });
    m.timer = setInterval(() => void m.tick(), o.intervalMs);
    if (o.deferMs > 0) {
      m.sampler = setInterval(() => {
        m.cpuAt = [m.cpuAt[1], hostCpuMs()];
      }, limits.lakeDeferSampleMs);
    }
    return m;
  }

  /** Runs a full pass (compaction, tail, curated snapshot) after any running one; resolves with its result. */
  async flush(): Promise<unknown> {
    if (this.running !== null) await this.running.catch(() => {});
    return this.pass(true);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.sampler);
    if (this.running !== null) await this.running.catch(() => {});
    this.worker.terminate();
  }

  private async tick(): Promise<void> {
    if (this.running !== null) return;
    if (passWaits(this.cpuAt[0], hostCpuMs(), Date.now() - this.stats.freshAsOfMs, this.o.deferMs)) {
      this.stats.deferred++;
      return;
    }
    const curated = Date.now() - this.lastCuratedMs >= this.o.curatedIntervalMs;
    await this.pass(curated).catch((e: Error) => this.o.log.warn("lake: maintenance pass failed", { error: e.message }));
  }

  private pass(curated: boolean): Promise<unknown> {
    const id = this.nextId++;
    const req: PassRequest = { op: "pass", id, curated, nowMs: Date.now() };
    const p = new Promise<unknown>((resolve, reject) => this.waiting.set(id, { resolve, reject })).then((result) => {
      this.count(req.nowMs, result as PassResult);
      return result;
    }, (e: Error) => {
      this.stats.passesFailed++;
      throw e;
    });
    this.running = p.finally(() => {
      if (this.running === tracked) this.running = null;
    });
    const tracked = this.running;
    if (curated) this.lastCuratedMs = req.nowMs;
    this.worker.postMessage(req);
    return p;
  }

  private count(startMs: number, r: PassResult): void {
    const s = this.stats;
    s.passesOk++;
    s.lastPassMs = Date.now() - startMs;
    s.freshAsOfMs = startMs;
    s.tailEvents += r.tailEvents;
    s.compacted += r.compacted;
    s.pending = r.pending;
  }

  private settle(r: Reply): void {
    const w = this.waiting.get(r.id);
    if (w === undefined) return;
    this.waiting.delete(r.id);
    if (r.ok) w.resolve(r.result);
    else w.reject(new LakeError(`lake: maintenance pass failed: ${r.error}`));
  }
}
