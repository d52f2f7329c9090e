/**
 * Lowers the scheduling priority of the calling thread (Linux: nice is per
 * thread, and a thread may always raise its own). Weir's partition workers
 * and store writer call it at start, so on a machine whose cores are busy
 * the main thread — ingest, reads, live pushes — is the one that runs: in
 * the 100,000-series mass close the main thread got 0.35–0.46 of a core
 * against three busy background threads on two cores, and its answers
 * waited up to ~0.9 s. A background thread that falls behind is
 * backpressure (its ring fills, ingest answers 503), never a loss.
 *
 * @example lowerThreadPriority(limits.backgroundThreadNice); // in a worker's entry file
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/** Adds `increment` to this thread's nice value; false where threads cannot be told apart (not Linux). */
export function lowerThreadPriority(increment: number): boolean {
  let tid: number;
  try {
    tid = Number(readlinkSync("/proc/thread-self").split("/").pop()); // "<pid>/task/<tid>"
  } catch {
    return false;
  }
  if (!Number.isInteger(tid) || tid <= 0) return false;
  setPriority(tid, Math.min(19, getPriority(tid) + increment));
  return true;
}

/**
 * Raises to at least `nice` the nice value of every thread of this process
 * whose name starts with `prefix` (idempotent: a thread already that nice
 * is left as it is). Native work queued from JavaScript (an addon's async
 * calls: DuckDB's queries and COPYs) runs on Bun's pool threads ("Bun
 * Pool N"), not on the thread that asked, so a worker that lowered its own
 * priority has not lowered that work's. Returns how many it changed.
 *
 * @example lowerThreadsNamed("Bun Pool", limits.backgroundThreadNice); // after the pool has started
 */
export function lowerThreadsNamed(prefix: string, nice: number): number {
  let tasks: string[];
  try {
    tasks = readdirSync("/proc/self/task");
  } catch {
    return 0; // not Linux
  }
  let changed = 0;
  for (const t of tasks) {
    const tid = Number(t);
    try {
      if (!readFileSync(`/proc/self/task/${t}/comm`, "utf8").startsWith(prefix) || getPriority(tid) >= nice) continue;
      setPriority(tid, Math.min(19, nice));
      changed++;
    } catch {
      // the thread ended between the listing and now
    }
  }
  return changed;
}
