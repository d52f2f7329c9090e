/**
 * The main thread's side of the lake's maintenance: starts lake.worker.ts,
 * asks it for a pass every WEIR_LAKE_INTERVAL (with the curated snapshot
 * every WEIR_LAKE_CURATED_INTERVAL), and lets a caller wait for a pass
 * (flush: tests, export of fresh data, shutdown). Passes never overlap: a
 * tick that finds one running is skipped.
 *
 * @example
 *   const m = await LakeMaintenance.start({ dataDir, intervalMs: 10_000, curatedIntervalMs: 60_000, retentionMs, log });
 *   await m.flush(); // compaction, tail and curated snapshot, now
 *   await m.stop();
 */
import type { Log } from "../runtime/log.ts";
import type { PassResult } from "./compactor.ts";
import { LakeError } from "./errors.ts";
import type { LakeWorkerData, PassRequest } from "./lake.worker.ts";

export interface MaintenanceOptions extends LakeWorkerData { intervalMs: number; curatedIntervalMs: number; log: Log }

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/**
 * What the passes did so far (lake.ts shows it in /metrics). `freshAsOfMs`:
 * the start of the last pass that finished (the raw log was read to its
 * end then, so SQL sees every event acknowledged before it); the start of
 * the maintenance before the first.
 */
export interface MaintenanceStats { passesOk: number; passesFailed: number; lastPassMs: number; freshAsOfMs: number; tailEvents: number; compacted: number; pending: number }

export class LakeMaintenance {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private running: Promise<unknown> | null = null;
  private lastCuratedMs = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  readonly stats: MaintenanceStats = { passesOk: 0, passesFailed: 0, lastPassMs: 0, freshAsOfMs: Date.now(), tailEvents: 0, compacted: 0, pending: 0 };

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
    return m;
  }

  /** Runs a full pass (compaction, tail, curated snapshot) after any running one; resolves with its result. */
  async flush(): Promise<unknown> {
    if (this.running !== null) await this.running.catch(() => {});
    return this.pass(true);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.running !== null) await this.running.catch(() => {});
    this.worker.terminate();
  }

  private async tick(): Promise<void> {
    if (this.running !== null) return;
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
