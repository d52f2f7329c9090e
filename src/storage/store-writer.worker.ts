/**
 * The store writer thread: the only connection that writes the SQLite file
 * once the engine runs. It answers each request of store-writer.ts in order:
 * a commit (StoreWrites.commit: one transaction), a series write, a retention
 * prune, close, and a test's hold. The test-only crash points of a commit
 * (WEIR_CRASH_AT) fire here, between the same steps as before.
 */
import { workerData } from "node:worker_threads";
import { StoreWrites } from "../actors/store.ts";
import { CrashPoints } from "../runtime/crash-points.ts";
import { limits } from "../runtime/limits.ts";
import { lowerThreadPriority } from "../runtime/thread-priority.ts";
import { openStore } from "./db.ts";
import type { WriterReply, WriterRequest } from "./store-writer.ts";

lowerThreadPriority(limits.backgroundThreadNice);
const { path, crashAt } = workerData as { path: string; crashAt: Record<string, number> };
const crash = new CrashPoints(crashAt);
const db = openStore(path);
const writes = new StoreWrites(db, {
  before: () => crash.reach("store.before-commit"),
  mid: () => crash.reach("checkpoint.mid"),
  after: () => crash.reach("store.after-commit"),
});

function handle(r: WriterRequest): unknown {
  switch (r.k) {
    case "commit": return writes.commit(r.job);
    case "series": writes.flushSeries(r.series); return r.series.length;
    case "replica": return writes.replicate(r.rows);
    case "deadletters": return writes.writeDeadletters(r.rows, r.keep);
    case "prune": return writes.prune(r.nowMs, r.byLabel, r.anomaliesMs);
    case "handed": return writes.markHanded(r.rows);
    case "viewRules": {
      const n = writes.commitViewRules(r.c);
      if (n > 0) crash.reach("view-rules.after-alerts"); // written, not yet handed on (a test's kill -9)
      return n;
    }
    case "definition": writes.writeDefinition(r.table, r.name, r.def); return 1;
    case "table": writes.writeTable(r.name, r.key, r.version, r.rows); return 1;
    case "close": db.close(); return 0;
    case "hold": Atomics.wait(new Int32Array(r.flag), 0, 0); return 0; // a test's failpoint: released by StoreWriter.hold()
  }
}

self.onmessage = (m: MessageEvent<WriterRequest>) => {
  let reply: WriterReply;
  try {
    reply = { id: m.data.id, ok: true, value: handle(m.data) };
  } catch (e) {
    reply = { id: m.data.id, ok: false, error: (e as Error).message };
  }
  postMessage(reply);
};
