/**
 * The worker side of supervision. A supervised worker calls childContext()
 * once at load, beats from its own loop (so a stuck loop stops beating and
 * is restarted), answers the supervisor's {type:"stop"} with stopped(), and
 * says ready() once it has restored its state and can take work.
 *
 * @example
 *   const ctx = childContext();
 *   const timer = setInterval(() => { doWork(); ctx.heartbeat(); }, limits.workerTickMs);
 *   ctx.onControl((msg) => {
 *     if (isStop(msg)) { clearInterval(timer); flush(); ctx.stopped(); }
 *   });
 *   ctx.ready();
 */
import { strict as assert } from "node:assert";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { HeartbeatBoard } from "./heartbeat.ts";

/** Messages between supervisor and child that the supervisor itself acts on. */
export const readyMessage = { type: "ready" } as const;
export const stoppedMessage = { type: "stopped" } as const;
export const stopMessage = { type: "stop" } as const;

/** What the supervisor adds to every child's workerData. */
export interface SupervisedData {
  heartbeatSab: SharedArrayBuffer;
  heartbeatSlot: number;
}

export interface ChildContext<D extends Record<string, unknown> = Record<string, unknown>> {
  /** The caller's workerData, without the supervisor's heartbeat fields. */
  data: D;
  /** Record a beat now; call it from the work loop, not from a separate timer. */
  heartbeat: () => void;
  /** A control-plane message to the supervisor (rare; never per event). */
  send: (msg: unknown) => void;
  /** Control messages from the supervisor: stop, checkpoint, test faults. */
  onControl: (fn: (msg: unknown) => void) => void;
  /** The worker has restored its state and takes work: it is now "running". */
  ready: () => void;
  /** Answer to {type:"stop"}: state is flushed, the supervisor may end the thread. */
  stopped: () => void;
}

export function isStop(msg: unknown): boolean {
  return typeof msg === "object" && msg !== null && (msg as { type?: unknown }).type === stopMessage.type;
}

export function childContext<D extends Record<string, unknown> = Record<string, unknown>>(): ChildContext<D> {
  assert(!isMainThread && parentPort !== null, "childContext() runs inside a supervised worker thread");
  const port = parentPort;
  const { heartbeatSab, heartbeatSlot, ...data } = workerData as SupervisedData & Record<string, unknown>;
  const board = HeartbeatBoard.attach(heartbeatSab);
  board.beat(heartbeatSlot);
  return {
    data: data as D,
    heartbeat: () => board.beat(heartbeatSlot),
    send: (msg) => port.postMessage(msg),
    onControl: (fn) => {
      port.on("message", fn);
    },
    ready: () => port.postMessage(readyMessage),
    stopped: () => port.postMessage(stoppedMessage),
  };
}
