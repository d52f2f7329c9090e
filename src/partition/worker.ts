/**
 * A partition's worker thread: the PartitionLoop (src/partition/partition-loop.ts)
 * on the rings, clock and raw log the engine hands it, at a lower priority
 * than the main thread, answering the supervisor's stop. The test-only
 * failpoints are loaded only when WEIR_FAILPOINTS is on.
 */
import { heapSize } from "bun:jsc";
import { IngestClock } from "../runtime/ingest-clock.ts";
import { limits } from "../runtime/limits.ts";
import { Ring } from "../runtime/ring.ts";
import { lowerThreadPriority } from "../runtime/thread-priority.ts";
import { childContext, isStop } from "../runtime/worker-child.ts";
import { readRawLog } from "../storage/rawlog.ts";
import { isRulesMessage, isTableMessage, isUpdatesMessage, isViewsMessage, PartitionLoop, type PartitionData } from "./partition-loop.ts";

export type { PartitionData };

lowerThreadPriority(limits.backgroundThreadNice);
const ctx = childContext<PartitionData>();
const d = ctx.data;
const loop = new PartitionLoop({
  data: d,
  inRing: Ring.attach(d.inSab),
  outRing: Ring.attach(d.outSab),
  stats: new BigInt64Array(d.statsSab),
  clock: IngestClock.attach(d.clockSab),
  readLog: (from, to) => readRawLog(d.rawDir, from, to),
  beat: () => ctx.heartbeat(),
  heapBytes: heapSize,
});
let failpoints: typeof import("./failpoints.ts") | null = null;
ctx.onControl((msg) => {
  if (isStop(msg)) loop.stop();
  else if (isRulesMessage(msg)) loop.setRules(msg.rules);
  else if (isViewsMessage(msg)) loop.setViews(msg.views);
  else if (isTableMessage(msg)) loop.setTable(msg.table);
  else if (isUpdatesMessage(msg)) loop.setUpdates(msg.subs);
  else failpoints?.apply(msg, loop);
});
if (d.faults) failpoints = await import("./failpoints.ts"); // before ready: a test's fault comes after it

await loop.recover();
ctx.ready();
await loop.run();
ctx.stopped();
