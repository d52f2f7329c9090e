/**
 * Test-only failpoints of a partition worker (WEIR_FAILPOINTS=1), loaded by
 * the worker thread only when they are on: throw, hang (no more beats),
 * exit, pause/resume intake (so a test can fill the ring), grow (allocate
 * until the heap bound trips).
 *
 * @example supervisor.post("partition-0", { type: "fault", mode: "throw" });
 */
import type { PartitionLoop } from "./partition-loop.ts";

/** Memory the "grow" failpoint holds: 8 MiB arrays, at most growChunksMax of them. */
const grown: number[][] = [];
const growChunksMax = 512;

export function apply(msg: unknown, loop: PartitionLoop): void {
  const m = msg as { type?: string; mode?: string };
  if (m.type !== "fault") return;
  if (m.mode === "pause" || m.mode === "resume") loop.pause(m.mode === "pause");
  if (m.mode === "throw") setTimeout(() => { throw new Error("failpoint: throw"); }, 0);
  if (m.mode === "hang") for (;;) { /* spin: stops the heartbeat */ }
  if (m.mode === "exit") process.exit(3);
  if (m.mode === "grow") {
    const timer = setInterval(() => {
      if (grown.length >= growChunksMax) clearInterval(timer);
      else grown.push(new Array(2 ** 20).fill(grown.length + 0.5));
    }, 5);
  }
}
