/**
 * The lake's maintenance thread: compaction of the raw log, the raw tail,
 * curated snapshots and retention, off the main thread (and niced, as the
 * partition workers are) so ingest does not wait on it. The main thread
 * (maintenance.ts) asks for a pass; the worker answers when it is done.
 *
 * Messages in:  { op: "pass", id, curated: boolean, nowMs }
 * Messages out: { id, ok: true, result } | { id, ok: false, error }
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { join } from "node:path";
import { limits } from "../runtime/limits.ts";
import { lowerThreadPriority } from "../runtime/thread-priority.ts";
import { openReader } from "../storage/db.ts";
import { Compactor } from "./compactor.ts";
import { writeCurated } from "./curated.ts";
import { lakePaths } from "./tables.ts";

declare const self: Worker;

export interface LakeWorkerData { dataDir: string; retentionMs: number }
export interface PassRequest { op: "pass"; id: number; curated: boolean; nowMs: number }

lowerThreadPriority(limits.backgroundThreadNice);
const { dataDir, retentionMs } = (await import("node:worker_threads")).workerData as LakeWorkerData;
const instance = await DuckDBInstance.create(":memory:", {
  threads: String(limits.lakeDuckdbThreads),
  memory_limit: `${limits.lakeDuckdbMemoryBytes}B`,
  temp_directory: join(lakePaths.staging(dataDir), "duckdb-tmp"),
});
const conn = await instance.connect();
const store = openReader(join(dataDir, "weir.db"));
const series = store.query("SELECT key, name, tags FROM series WHERE partition = ? AND local = ?");
const compactor = new Compactor({
  dataDir, conn, retentionMs,
  lookup: (p, local) => {
    const r = series.get(p, local) as { key: string; name: string; tags: string } | null;
    return r === null ? undefined : { key: r.key, name: r.name, tags: JSON.parse(r.tags) as Record<string, string> };
  },
});

// One pass at a time, in order: requests queue on this promise.
let chain: Promise<unknown> = Promise.resolve();
self.onmessage = (e: MessageEvent<PassRequest>) => {
  const req = e.data;
  chain = chain.then(async () => {
    try {
      const result = { ...(await compactor.pass(req.nowMs)), curated: req.curated ? await writeCurated(dataDir, store, conn) : null };
      postMessage({ id: req.id, ok: true, result });
    } catch (err) {
      postMessage({ id: req.id, ok: false, error: (err as Error).message });
    }
  });
};
postMessage({ id: 0, ok: true, result: "ready" });
