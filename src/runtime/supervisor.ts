/**
 * The supervisor: runs actors on worker threads, one Worker per child, and
 * restarts a child one-for-one when it crashes (uncaught error), exits
 * without being asked, or stops beating its heartbeat slot (hung: the thread
 * is terminated). Restarts back off exponentially; more than `restartsMax`
 * restarts within `restartWindowMs` and the child is "failed" for good, with
 * a "failed" event so the engine can mark that partition failed.
 *
 * Every failure ends with the worker's "exit" event: only then is the thread
 * known to be gone, so only then is a new one spawned. Bun 1.4.5 emits, for
 *   a throw at top level or in a timer/handler:  "error" (the Error), then "exit" 1
 *   an unhandled rejection:                      "error" (the Error), then "exit" 0
 *   process.exit(n):                             "exit" n, no "error"
 *   terminate():                                 "exit" 1
 * so "exit" without a stop request is always a failure, whatever its code.
 *
 * @example
 *   const sup = new Supervisor({ log: (lvl, msg, f) => log[lvl](msg, f) });
 *   sup.onEvent((e) => { if (e.type === "failed") markPartitionFailed(e.id); });
 *   sup.start({ id: "partition-0", script: new URL("./partition.worker.ts", import.meta.url),
 *               data: () => ({ ring: ringSab, checkpoint: lastCheckpoint() }) });
 *   await sup.stop();
 */
import { strict as assert } from "node:assert";
import { Worker } from "node:worker_threads";
import { HeartbeatBoard } from "./heartbeat.ts";
import { limits } from "./limits.ts";
import { createLog, type LogFields, type LogLevel } from "./log.ts";
import { readyMessage, stopMessage, stoppedMessage, type SupervisedData } from "./worker-child.ts";

export type ChildState = "starting" | "running" | "backoff" | "failed" | "stopped";

export interface ChildSpec {
  /** Unique within the supervisor, e.g. "partition-0". */
  id: string;
  /** The worker module. */
  script: string | URL;
  /**
   * workerData for each (re)spawn: called anew each time so the caller can
   * hand over fresh state, e.g. the same SharedArrayBuffers. The supervisor
   * adds {heartbeatSab, heartbeatSlot} to it.
   */
  data: () => Record<string, unknown>;
  /** Control-plane messages from the worker (rare; not the hot path). */
  onMessage?: (msg: unknown) => void;
}

export interface SupervisorOptions {
  heartbeatTimeoutMs?: number;
  checkIntervalMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  restartsMax?: number;
  restartWindowMs?: number;
  log?: (level: LogLevel, msg: string, fields: LogFields) => void;
  /** Clock for heartbeat ages and the restart window; back-off delays use real timers. */
  now?: () => number;
}

export type SupervisorEventType = "started" | "exited" | "restarting" | "failed" | "hung";

export interface SupervisorEvent {
  type: SupervisorEventType;
  id: string;
  reason?: string;
  /** On "restarting": the back-off before the next spawn. */
  delayMs?: number;
}

export interface ChildStatus {
  id: string;
  state: ChildState;
  restarts: number;
  lastError?: string;
  /** Set while a worker thread is alive for this child. */
  threadId?: number;
}

interface Child {
  readonly spec: ChildSpec;
  readonly slot: number;
  state: ChildState;
  /** The one live worker of this child, or null: never two at once. */
  worker: Worker | null;
  threadId: number | undefined;
  /** Resolved by the current worker's "exit"; replaced at each spawn. */
  gone: Promise<void>;
  markGone: () => void;
  /** Resolved by the current worker's {type:"stopped"}. */
  acked: Promise<void>;
  markAcked: () => void;
  stopAcked: boolean;
  /** Why the current worker is going down (error, hang), known before its "exit". */
  downReason: string | undefined;
  stopRequested: boolean;
  restarts: number;
  /** Times of the restarts inside the window; never more than restartsMax entries. */
  restartTimesMs: number[];
  lastError: string | undefined;
  lastBeatSeenMs: number;
  lastProgressMs: number;
  backoffTimer: ReturnType<typeof setTimeout> | null;
  /** recycle() ended the worker: once it is gone this runs, then the next starts at once (not counted as a failure). */
  recycling: (() => Promise<void>) | null;
}

const defaultLog = createLog("warn", { component: "supervisor" });

export class Supervisor {
  private readonly heartbeatTimeoutMs: number;
  private readonly checkIntervalMs: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly restartsMax: number;
  private readonly restartWindowMs: number;
  private readonly log: (level: LogLevel, msg: string, fields: LogFields) => void;
  private readonly now: () => number;
  private readonly board = HeartbeatBoard.create(limits.supervisedChildrenMax);
  private readonly children = new Map<string, Child>();
  private readonly listeners: Array<(e: SupervisorEvent) => void> = [];
  private checkTimer: ReturnType<typeof setInterval> | null = null;
  private stopping: Promise<void> | null = null;

  constructor(opts: SupervisorOptions = {}) {
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? limits.heartbeatTimeoutMs;
    this.checkIntervalMs = opts.checkIntervalMs ?? limits.heartbeatIntervalMs;
    this.backoffBaseMs = opts.backoffBaseMs ?? limits.restartBackoffBaseMs;
    this.backoffMaxMs = opts.backoffMaxMs ?? limits.restartBackoffMaxMs;
    this.restartsMax = opts.restartsMax ?? limits.restartsMax;
    this.restartWindowMs = opts.restartWindowMs ?? limits.restartWindowMs;
    this.log = opts.log ?? ((level, msg, fields) => defaultLog[level](msg, fields));
    this.now = opts.now ?? Date.now;
    assert(this.checkIntervalMs > 0 && this.checkIntervalMs < this.heartbeatTimeoutMs, "check more often than the heartbeat timeout");
    assert(this.backoffBaseMs > 0 && this.backoffBaseMs <= this.backoffMaxMs, "back-off base within (0, max]");
    assert(Number.isInteger(this.restartsMax) && this.restartsMax >= 0, "restartsMax is a count");
    assert(this.restartWindowMs > 0, "restart window is positive");
  }

  /** Spawn a child; it is "running" once its worker posts {type:"ready"}. */
  start(spec: ChildSpec): void {
    assert(this.stopping === null, "supervisor is stopped");
    assert(!this.children.has(spec.id), `child ${spec.id} already started`);
    assert(this.children.size < this.board.slotCount, `more than ${this.board.slotCount} children`);
    const child: Child = {
      spec,
      slot: this.children.size,
      state: "starting",
      worker: null,
      threadId: undefined,
      gone: Promise.resolve(),
      markGone: () => {},
      acked: Promise.resolve(),
      markAcked: () => {},
      stopAcked: false,
      downReason: undefined,
      stopRequested: false,
      restarts: 0,
      restartTimesMs: [],
      lastError: undefined,
      lastBeatSeenMs: 0,
      lastProgressMs: 0,
      backoffTimer: null,
      recycling: null,
    };
    this.children.set(spec.id, child);
    if (this.checkTimer === null) {
      this.checkTimer = setInterval(() => this.checkHeartbeats(), this.checkIntervalMs);
      // The workers keep the process alive; a watch over them must not.
      this.checkTimer.unref();
    }
    this.spawn(child);
  }

  /** A control message to a child; false when it has no live worker right now (backoff, failed, stopped). */
  post(id: string, msg: unknown): boolean {
    const child = this.child(id);
    if (child.worker === null) return false;
    child.worker.postMessage(msg);
    return true;
  }

  /**
   * A planned restart: ends the child's worker and starts a new one at once
   * (its spec's data() read again), not counted against the restart budget.
   * `between` runs once the old worker is gone and before the new one
   * starts. Resolves once the new one is spawned.
   */
  recycle(id: string, between: () => Promise<void> = async () => {}): Promise<void> {
    const child = this.child(id);
    assert(this.stopping === null, "no recycle after stop");
    assert(child.recycling === null, `child ${id} is recycling already`);
    return new Promise<void>((resolve, reject) => {
      // A child is never left without a worker: a failed `between` still starts the next one, then rejects.
      const next = () => between().then(() => {
        if (this.stopping === null) this.spawn(child);
        resolve();
      }, (e: unknown) => {
        if (this.stopping === null) this.spawn(child);
        reject(e);
      });
      if (child.worker === null) {
        if (child.backoffTimer !== null) clearTimeout(child.backoffTimer);
        child.backoffTimer = null;
        void next();
        return;
      }
      child.recycling = next;
      void child.worker.terminate();
    });
  }

  status(): ChildStatus[] {
    return [...this.children.values()].map((c) => ({
      id: c.spec.id,
      state: c.state,
      restarts: c.restarts,
      ...(c.lastError === undefined ? {} : { lastError: c.lastError }),
      ...(c.threadId === undefined ? {} : { threadId: c.threadId }),
    }));
  }

  /** Restarts of one child, or of all children, since start. */
  restartsTotal(id?: string): number {
    if (id !== undefined) return this.child(id).restarts;
    let total = 0;
    for (const c of this.children.values()) total += c.restarts;
    return total;
  }

  /** Subscribe to lifecycle events; returns the unsubscribe function. */
  onEvent(fn: (e: SupervisorEvent) => void): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Graceful: post {type:"stop"} to each, wait for {type:"stopped"} (or exit) up to timeoutMs, then terminate. */
  stop(timeoutMs: number = limits.supervisorStopTimeoutMs): Promise<void> {
    this.stopping ??= this.stopAll(timeoutMs);
    return this.stopping;
  }

  private async stopAll(timeoutMs: number): Promise<void> {
    if (this.checkTimer !== null) clearInterval(this.checkTimer);
    this.checkTimer = null;
    const live: Child[] = [];
    for (const child of this.children.values()) {
      child.stopRequested = true;
      if (child.backoffTimer !== null) clearTimeout(child.backoffTimer);
      child.backoffTimer = null;
      if (child.worker !== null) {
        live.push(child);
        child.worker.postMessage(stopMessage);
      } else if (child.state !== "failed") {
        child.state = "stopped";
      }
    }
    const answered = await settlesWithin(Promise.all(live.map((c) => Promise.race([c.gone, c.acked]))), timeoutMs);
    if (!answered) this.log("warn", "children did not stop in time, terminating", { ids: unanswered(live) });
    // Even a child that answered may keep timers alive: end every thread.
    for (const child of live) void child.worker?.terminate();
    const ended = await settlesWithin(Promise.all(live.map((c) => c.gone)), timeoutMs);
    if (!ended) this.log("error", "worker threads did not exit after terminate()", { ids: stillAlive(live) });
  }

  private spawn(child: Child): void {
    assert(child.worker === null, `child ${child.spec.id} still has a worker`);
    assert(this.stopping === null, "no spawn after stop");
    child.backoffTimer = null;
    this.board.reset(child.slot);
    child.state = "starting";
    child.downReason = undefined;
    child.stopAcked = false;
    child.lastBeatSeenMs = 0;
    child.lastProgressMs = this.now();
    let worker: Worker;
    try {
      const supervised: SupervisedData = { heartbeatSab: this.board.sab, heartbeatSlot: child.slot };
      worker = new Worker(child.spec.script, { workerData: { ...child.spec.data(), ...supervised } });
    } catch (err) {
      // data() threw or the thread could not be created: a failed start, restarted like a crash.
      this.restartOrFail(child, `spawn failed: ${errorText(err)}`);
      return;
    }
    child.worker = worker;
    child.threadId = worker.threadId;
    child.gone = new Promise((resolve) => (child.markGone = resolve));
    child.acked = new Promise((resolve) => (child.markAcked = resolve));
    worker.on("message", (msg: unknown) => this.onChildMessage(child, worker, msg));
    worker.on("error", (err: unknown) => this.onChildError(child, worker, err));
    worker.on("exit", (code: number) => this.onChildExit(child, worker, code));
    this.log("debug", "child spawned", { id: child.spec.id, threadId: worker.threadId, restarts: child.restarts });
  }

  private onChildMessage(child: Child, worker: Worker, msg: unknown): void {
    if (child.worker !== worker) return;
    if (hasType(msg, readyMessage.type)) {
      if (child.state !== "starting") return;
      child.state = "running";
      this.emit({ type: "started", id: child.spec.id });
      return;
    }
    if (hasType(msg, stoppedMessage.type)) {
      if (!child.stopRequested) return;
      child.stopAcked = true;
      child.markAcked();
      return;
    }
    child.spec.onMessage?.(msg);
  }

  private onChildError(child: Child, worker: Worker, err: unknown): void {
    if (child.worker !== worker) return;
    child.downReason ??= `error: ${errorText(err)}`;
    this.log("warn", "child threw", { id: child.spec.id, error: child.downReason });
    // Bun follows an uncaught error with "exit"; terminate() makes sure of it.
    void worker.terminate();
  }

  private onChildExit(child: Child, worker: Worker, code: number): void {
    // Listeners stay attached: each checks identity, so a late event from a
    // dead worker is ignored, and an "error" never lands on an emitter without one.
    if (child.worker !== worker) return;
    child.worker = null;
    child.threadId = undefined;
    child.markGone();
    if (child.stopRequested) {
      child.state = "stopped";
      this.emit({ type: "exited", id: child.spec.id, reason: "stopped" });
      return;
    }
    if (child.recycling !== null) {
      const next = child.recycling;
      child.recycling = null;
      this.emit({ type: "exited", id: child.spec.id, reason: "recycled" });
      void next();
      return;
    }
    const reason = child.downReason ?? `exited with code ${code}`;
    this.emit({ type: "exited", id: child.spec.id, reason });
    this.restartOrFail(child, reason);
  }

  /** One-for-one restart with back-off, unless the child used up its restart budget. */
  private restartOrFail(child: Child, why: string): void {
    const reason = why.slice(0, limits.childErrorCharsMax);
    child.lastError = reason;
    const nowMs = this.now();
    const times = child.restartTimesMs;
    while (times.length > 0 && times[0] <= nowMs - this.restartWindowMs) times.shift();
    if (times.length >= this.restartsMax) {
      child.state = "failed";
      this.log("error", "child failed: restart budget used up", { id: child.spec.id, restarts: child.restarts, reason });
      this.emit({ type: "failed", id: child.spec.id, reason });
      return;
    }
    const delayMs = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** times.length);
    times.push(nowMs);
    child.restarts += 1;
    child.state = "backoff";
    child.backoffTimer = setTimeout(() => this.spawn(child), delayMs);
    this.log("warn", "child restarting", { id: child.spec.id, reason, delayMs, restarts: child.restarts });
    this.emit({ type: "restarting", id: child.spec.id, reason, delayMs });
  }

  /** A child whose slot has not changed for heartbeatTimeoutMs is hung: end its thread. */
  private checkHeartbeats(): void {
    const nowMs = this.now();
    for (const child of this.children.values()) {
      if (child.worker === null || child.downReason !== undefined || child.stopRequested) continue;
      // Progress is judged on the supervisor's clock, so an injected clock and a
      // worker's Date.now() never need to agree.
      const beatMs = this.board.lastBeatMs(child.slot);
      if (beatMs !== child.lastBeatSeenMs) {
        child.lastBeatSeenMs = beatMs;
        child.lastProgressMs = nowMs;
        continue;
      }
      const silentMs = nowMs - child.lastProgressMs;
      if (silentMs < this.heartbeatTimeoutMs) continue;
      child.downReason = `hung: no heartbeat for ${silentMs} ms`;
      this.log("warn", "child hung, terminating", { id: child.spec.id, silentMs });
      void child.worker.terminate();
      this.emit({ type: "hung", id: child.spec.id, reason: child.downReason });
    }
  }

  private child(id: string): Child {
    const child = this.children.get(id);
    assert(child !== undefined, `no child ${id}`);
    return child;
  }

  private emit(e: SupervisorEvent): void {
    for (const fn of this.listeners) fn(e);
  }
}

function hasType(msg: unknown, type: string): boolean {
  return typeof msg === "object" && msg !== null && (msg as { type?: unknown }).type === type;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function stillAlive(children: Child[]): string[] {
  return children.filter((c) => c.worker !== null).map((c) => c.spec.id);
}

function unanswered(children: Child[]): string[] {
  return children.filter((c) => c.worker !== null && !c.stopAcked).map((c) => c.spec.id);
}

/** Whether `p` settles within `ms`; the timer is cleared either way. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
